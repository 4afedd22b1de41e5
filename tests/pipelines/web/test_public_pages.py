"""The public's pages, over HTTP: what each borough's page shows, and the disclosure test.

The disclosure test reads every borough's page of every published cycle of the demo and checks each
number on it against the Panel tables: a number may appear only if it is an unsuppressed figure of
that borough (or a date of its timetable, a rank, a feedback round). A suppressed survey estimate must
read "not shown".
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from events.contract.vocabulary import BOROUGH_NAMES, BOROUGHS
from events.home import PlanningHome
from pipelines.web.pages import public
from pipelines.web.pages.public import slug
from projections.packs.labels import theme_label
from projections.reading.snapshots import open_reader
from tests.pipelines.web.conftest import CYCLE, WHAT_IF, signed_in, site_of
from tests.support.web import Site

HACKNEY = "E09000012"
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def main_text(html: str) -> str:
    """The page's main content as a reader sees it, without its <time> elements' machine-readable attributes."""
    main = html[html.index('<main'):html.index('</main>')]
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", main)))


def table_rows(home: PlanningHome, sql: str, *parameters: Any) -> list[dict[str, Any]]:
    db = open_reader(home.projections)
    try:
        cursor = db.execute(sql, list(parameters))
        return [dict(zip([d[0] for d in cursor.description], row)) for row in cursor.fetchall()]
    finally:
        db.close()


def test_the_start_page_and_the_index_link_every_borough(demo_site: Site) -> None:
    web = signed_in(demo_site)
    start = web.get("/")
    assert start.status == 200 and 'href="/boroughs"' in start.text
    index = web.get("/boroughs")
    assert index.status == 200
    links = re.findall(r'href="/boroughs/([a-z-]+)"', index.text)
    assert sorted(links) == sorted(slug(BOROUGH_NAMES[code]) for code in BOROUGHS) and len(links) == 32
    for page in (start, index):
        assert "SYNTHETIC DATA" in page.text


def test_a_borough_page_shows_what_was_raised_fed_back_adopted_and_where_the_cycle_stands(demo_home: PlanningHome, demo_site: Site) -> None:
    page = signed_in(demo_site).get("/boroughs/hackney")
    assert page.status == 200
    text = main_text(page.text)
    assert "SYNTHETIC DATA" in text and f"Policing plan cycle {CYCLE}" in text
    (coverage,) = table_rows(demo_home, "SELECT responses, respondents FROM consultation_coverage "
                             "WHERE cycle = ? AND borough = ? AND channel = 'all'", CYCLE, HACKNEY)
    assert f"{coverage['responses']} consultation responses were received from {coverage['respondents']} people" in text
    top = table_rows(demo_home, "SELECT theme FROM theme_ranking WHERE cycle = ? AND scope = ? ORDER BY rank LIMIT 5",
                     CYCLE, HACKNEY)
    positions = [text.index(theme_label(row["theme"])) for row in top]
    assert positions == sorted(positions), "the top themes in their rank order"
    assert "Rank, all evidence combined" in text and "Consultation responses naming it" in text
    assert "The percentage is of the consultation responses from Hackney alone" in text
    london = table_rows(demo_home, "SELECT theme FROM priority_traceability WHERE cycle = ? AND scope = 'LONDON' ORDER BY rank",
                        CYCLE)
    assert london and " ".join(theme_label(r["theme"]) for r in london) in text
    (round_1,) = table_rows(demo_home, "SELECT first_published_at FROM feedback_log WHERE cycle = ? AND borough = ? AND round = 1",
                            CYCLE, HACKNEY)
    assert f"Fed back on {round_1['first_published_at'].day} {round_1['first_published_at']:%B %Y}" in text
    assert "The plan is at the priorities stage" in text
    sources = re.findall(r"Source: (\w+) , cycle (\S+); built at on = 23 November 2026 , as_of = 23 Nov 2026 12:00 UTC", text)
    assert {s for s, _ in sources} == {"consultation_coverage", "theme_ranking", "survey_indicators", "feedback_log",
                                       "priority_traceability", "stage_status"}
    assert "evidence" not in page.text.lower() or "event_id" not in page.text  # no evidence trail in public


def test_an_unknown_borough_or_cycle_is_404_and_says_what_exists(demo_site: Site) -> None:
    web = signed_in(demo_site)
    nowhere = web.get("/boroughs/atlantis")
    assert nowhere.status == 404 and "the index at /boroughs lists all 32" in unescape(nowhere.text)
    old = web.get("/boroughs/hackney/1999-00")
    assert old.status == 404 and "(published: 2026-27, 2027-28)" in old.text
    assert web.get("/boroughs/hackney/2026-27").status == 200


def test_the_public_pages_read_the_current_snapshot_whatever_the_query_says(demo_site: Site) -> None:
    web = signed_in(demo_site)
    assert web.get(f"/boroughs/hackney?snapshot={WHAT_IF}").text == web.get("/boroughs/hackney").text
    assert web.get("/boroughs/hackney?snapshot=no-such-thing").status == 200


def test_a_cycle_still_in_fieldwork_says_so_and_shows_no_half_counted_results(fieldwork_home: PlanningHome) -> None:
    with site_of(fieldwork_home) as site:
        page = signed_in(site).get("/boroughs/hackney")
    assert page.status == 200
    text = main_text(page.text)
    assert "still in fieldwork" in text and "no results are shown yet" in text
    assert table_rows(fieldwork_home, "SELECT responses FROM consultation_coverage WHERE borough = ? AND channel = 'all'",
                      HACKNEY) == [{"responses": 12}]
    assert "consultation responses were received" not in text
    assert not re.search(r"(?<![\d:])12(?![\d:])", text), "the 12 responses counted so far are not shown as a result"
    assert "Consultation responses naming it" not in text and "Public Attitude Survey found" not in text
    assert "Fieldwork" in text and "SYNTHETIC" not in page.text  # real events: no synthetic label


# --- the disclosure test ------------------------------------------------------------------------------------


def _pct(value: float) -> str:
    return f"{value:.0f}"


def allowed_numbers(home: PlanningHome, cycle: str, borough: str) -> set[str]:
    """Every number the borough's page may show: its unsuppressed figures, ranks, rounds and timetable dates."""
    allowed = {"1", "2"}  # feedback rounds
    for row in table_rows(home, "SELECT responses, respondents FROM consultation_coverage "
                          "WHERE cycle = ? AND borough = ? AND channel = 'all'", cycle, borough):
        allowed |= {str(row["responses"]), str(row["respondents"])}
    for row in table_rows(home, "SELECT rank, consultation_share FROM theme_ranking WHERE cycle = ? AND scope = ? AND rank <= 5",
                          cycle, borough):
        allowed.add(str(row["rank"]))
        if row["consultation_share"] is not None:
            allowed.add(_pct(100 * row["consultation_share"]))
    for row in table_rows(home, "SELECT wave, weighted_pct, ci_low, ci_high FROM survey_indicators "
                          "WHERE cycle = ? AND scope = ? AND NOT suppressed", cycle, borough):
        allowed |= {_pct(row["weighted_pct"]), _pct(row["ci_low"]), _pct(row["ci_high"])}
        allowed |= set(NUMBER.findall(row["wave"]))
    for row in table_rows(home, "SELECT opens_on, due_on FROM stage_status WHERE cycle = ?", cycle):
        allowed |= {str(d.day) for d in (row["opens_on"], row["due_on"])} | {str(d.year) for d in (row["opens_on"], row["due_on"])}
    for row in table_rows(home, "SELECT first_published_at FROM feedback_log WHERE cycle = ? AND borough = ? AND published",
                          cycle, borough):
        allowed |= {str(row["first_published_at"].day), str(row["first_published_at"].year)}
    for row in table_rows(home, "SELECT on_date, as_of FROM build_info"):
        allowed |= {str(row["on_date"].day), str(row["on_date"].year), f"{row['as_of']:%H:%M}", str(row["as_of"].day)}
    return allowed


def leaked(text: str, allowed: set[str]) -> list[str]:
    """The numbers on a page that no unsuppressed figure accounts for (cycle names aside)."""
    text = re.sub(r"\b\d{4}-\d{2}\b", " ", text)  # cycle names
    text = re.sub(r"\b\d{2}:\d{2}\b", lambda m: " " if m.group() in allowed else m.group().replace(":", " "), text)
    return [n for n in NUMBER.findall(text) if n not in allowed]


def suppressed_rows_shown(text: str, home: PlanningHome, cycle: str, borough: str) -> list[str]:
    from projections.packs.labels import INDICATOR_LABELS

    hidden = table_rows(home, "SELECT indicator FROM survey_indicators WHERE cycle = ? AND scope = ? AND suppressed "
                        "AND wave = (SELECT max(wave) FROM survey_indicators WHERE cycle = ? AND scope = ?)",
                        cycle, borough, cycle, borough)
    return [r["indicator"] for r in hidden if f"{INDICATOR_LABELS[r['indicator']]} not shown" not in text]


@pytest.mark.parametrize("cycle", ["2026-27", CYCLE])
def test_no_public_page_shows_a_number_the_panel_tables_suppress(demo_home: PlanningHome, demo_site: Site,
                                                                 cycle: str) -> None:
    web = signed_in(demo_site)
    for code in BOROUGHS:
        page = web.get(f"/boroughs/{slug(BOROUGH_NAMES[code])}/{cycle}")
        assert page.status == 200
        text = main_text(page.text)
        assert leaked(text, allowed_numbers(demo_home, cycle, code)) == [], BOROUGH_NAMES[code]
        assert suppressed_rows_shown(text, demo_home, cycle, code) == [], BOROUGH_NAMES[code]


def test_the_disclosure_check_catches_a_figure_the_tables_do_not_show(demo_home: PlanningHome, demo_site: Site,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A page that shows a number of its own making (here: respondents counted afresh) is caught."""
    allowed = allowed_numbers(demo_home, CYCLE, HACKNEY)
    made_up = next(n for n in range(9, 10_000) if str(n) not in allowed)
    original = public.raised

    def leaking(*args: Any) -> dict[str, Any]:
        facts = original(*args)
        return facts | {"coverage": {**facts["coverage"], "respondents": made_up}}

    monkeypatch.setattr(public, "raised", leaking)
    with site_of(demo_home) as fresh:  # a site of its own: the shared one keeps the page it rendered before
        text = main_text(signed_in(fresh).get("/boroughs/hackney").text)
    assert leaked(text, allowed) == [str(made_up)]
