"""The Panel's pages over HTTP: the dashboard, every table with its filters and downloads, the packs,
the snapshot picker and the SQL page."""

from __future__ import annotations

import csv
import io
import re
from html import unescape
from typing import Any

import pytest
from openpyxl import load_workbook

from events.home import PlanningHome
from projections.reading.snapshots import open_reader
from projections.tables import PANEL_TABLES
from tests.pipelines.web.conftest import CYCLE, WHAT_IF, signed_in
from tests.support.web import Site


def shown_rows(html: str) -> tuple[list[str], list[list[str]]]:
    """The header and body cells of the page's data table, as text."""
    table = html[html.index('<table class="govuk-table app-data-table">'):]
    table = table[:table.index("</table>")]
    cells = lambda row, tag: [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(rf"<{tag}[^>]*>(.*?)</{tag}>", row, re.S)]
    header = cells(table[:table.index("</thead>")], "th")
    body = table[table.index("<tbody"):]
    return header, [cells(row, "td") for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def number(text: Any) -> Any:
    """A shown cell, as a number when it is one (a spreadsheet keeps 1.0 as 1)."""
    try:
        return float(text)
    except ValueError:
        return text


def count(home: PlanningHome, sql: str, *parameters: Any) -> int:
    db = open_reader(home.projections)
    try:
        return db.execute(sql, list(parameters)).fetchone()[0]
    finally:
        db.close()


def test_the_dashboard_shows_the_timetable_chart_and_stage_table_with_their_source(demo_home: PlanningHome, demo_site: Site) -> None:
    page = signed_in(demo_site, "panel").get("/panel")
    assert page.status == 200
    assert "<svg" in page.text and f"Timetable of the {CYCLE} cycle" in page.text
    assert page.text.count('<tr class="govuk-table__row">') == 1 + 8  # the header and the eight stages
    assert "Source: <code>stage_status</code>, cycle 2027-28" in page.text and "SYNTHETIC DATA" in page.text
    assert ' style="' not in page.text and not re.search(r"<script(?![^>]*\bsrc=)", page.text)  # CSP: nothing inline


@pytest.mark.parametrize("name", list(PANEL_TABLES))
def test_every_panel_table_is_shown_whole_for_its_cycle(demo_home: PlanningHome, demo_site: Site, name: str) -> None:
    """Whole up to the page's row bound (only priority_evidence passes it in the demo)."""
    from pipelines.web.pages.tables import PAGE_ROWS
    page = signed_in(demo_site, "panel").get(f"/panel/tables/{name}")
    assert page.status == 200
    header, rows = shown_rows(page.text)
    assert header == [c.name for c in PANEL_TABLES[name].columns]
    assert len(rows) == min(PAGE_ROWS, count(demo_home, f"SELECT count(*) FROM {name} WHERE cycle = ?", CYCLE))
    assert f"Source: <code>{name}</code>, cycle {CYCLE}; built at on = " in page.text


def test_a_filter_narrows_the_table_and_the_downloads_hold_exactly_what_is_shown(demo_home: PlanningHome, demo_site: Site) -> None:
    web = signed_in(demo_site, "panel")
    query = "?cycle=2026-27&scope=E09000012"
    page = web.get(f"/panel/tables/theme_ranking{query}")
    header, rows = shown_rows(page.text)
    assert len(rows) == 21 and {r[0] for r in rows} == {"2026-27"} and {r[1] for r in rows} == {"E09000012"}
    assert 'href="/panel/tables/theme_ranking.csv?cycle=2026-27&amp;scope=E09000012"' in page.text
    csv_file = web.get(f"/panel/tables/theme_ranking.csv{query}")
    assert csv_file.status == 200
    assert csv_file.header("content-disposition") == 'attachment; filename="theme_ranking-2026-27-E09000012.csv"'
    assert list(csv.reader(io.StringIO(csv_file.body.decode("utf-8")))) == [header, *rows]
    xlsx = web.get(f"/panel/tables/theme_ranking.xlsx{query}")
    assert xlsx.header("content-disposition").startswith("attachment; ")
    sheet = load_workbook(io.BytesIO(xlsx.body)).active
    values = [[("" if v is None else v) for v in row] for row in sheet.iter_rows(values_only=True)]
    assert values[0][0].startswith("theme_ranking, cycle 2026-27") and "SYNTHETIC DATA" in values[1][0]
    assert values[2] == header and [[number(v) for v in row] for row in values[3:]] == [[number(v) for v in row] for row in rows]


def test_a_filter_value_the_table_lacks_is_refused_naming_the_field(demo_home: PlanningHome, demo_site: Site) -> None:
    web = signed_in(demo_site, "panel")
    refused = web.get("/panel/tables/survey_indicators?wave=1999Q9")
    assert refused.status == 400 and "wave: '1999Q9' is not in survey_indicators" in unescape(refused.text)
    assert web.get("/panel/tables/survey_indicators.csv?wave=1999Q9").status == 400


def test_unknown_tables_cycles_snapshots_and_formats_are_404(demo_home: PlanningHome, demo_site: Site) -> None:
    web = signed_in(demo_site, "panel")
    assert web.get("/panel/tables/dead_letters").status == 404
    assert web.get("/panel/tables/nonsense.csv").status == 404
    assert web.get("/panel/tables/inclusion.pdf").status == 404
    assert web.get("/panel/tables/inclusion?cycle=1999-00").status == 404
    unknown = web.get("/panel?snapshot=nope")
    assert unknown.status == 404 and WHAT_IF in unknown.text
    assert web.get("/panel/packs/2027-28/nowhere.html").status == 404
    assert web.get("/panel/packs/1999-00/brief.html").status == 404


def test_the_snapshot_picker_offers_the_what_if_and_every_link_carries_it(demo_home: PlanningHome, demo_site: Site) -> None:
    web = signed_in(demo_site, "panel")
    listing = web.get("/panel/snapshots")
    assert listing.status == 200 and f"/panel?snapshot={WHAT_IF}&amp;cycle={CYCLE}" in listing.text
    dashboard = web.get(f"/panel?snapshot={WHAT_IF}")
    assert f'<option value="{WHAT_IF}" selected>' in dashboard.text and "15 October 2026" in dashboard.text
    assert f'href="/panel/tables?snapshot={WHAT_IF}"' in dashboard.text
    table = web.get(f"/panel/tables/stage_status?snapshot={WHAT_IF}")
    assert "built at on = <time datetime=\"2026-10-15\">" in table.text
    assert f'name="snapshot" value="{WHAT_IF}"' in table.text  # the filter form keeps it
    assert f"/panel/tables/stage_status.csv?snapshot={WHAT_IF}" in table.text
    _, current = shown_rows(web.get("/panel/tables/stage_status").text)
    _, what_if = shown_rows(table.text)
    assert current != what_if


def test_each_stages_pack_downloads_as_html_and_pdf(demo_home: PlanningHome, demo_site: Site) -> None:
    web = signed_in(demo_site, "panel")
    listing = web.get("/panel/packs")
    assert listing.status == 200 and listing.text.count(f"/panel/packs/{CYCLE}/") == 16
    html = web.get(f"/panel/packs/{CYCLE}/analysis.html")
    assert html.status == 200
    assert html.header("content-disposition") == f'attachment; filename="{CYCLE}-analysis.html"'
    assert "Policing Plan 2027/28: Analysis" in html.text and "SYNTHETIC DATA" in html.text
    pdf = web.get(f"/panel/packs/{CYCLE}/analysis.pdf")
    assert pdf.status == 200 and pdf.body.startswith(b"%PDF-")
    assert pdf.header("content-disposition") == f'attachment; filename="{CYCLE}-analysis.pdf"'


def test_the_sql_page_runs_a_select_with_the_limits_of_planning_sql(demo_home: PlanningHome, demo_site: Site) -> None:
    web = signed_in(demo_site, "panel")
    form = web.get("/panel/sql")
    assert form.status == 200
    token = form.csrf_token
    ran = web.post("/panel/sql", {"csrf_token": token, "limit": "3",
                                       "query": "SELECT scope, theme, rank FROM theme_ranking WHERE rank = 1 ORDER BY scope"})
    assert ran.status == 200
    header, rows = shown_rows(ran.text)
    assert header == ["scope", "theme", "rank"] and len(rows) == 3 and {r[2] for r in rows} == {"1"}
    assert "showing the first 3 rows only" in ran.text
    for query, said in [("DROP TABLE theme_ranking", "only SELECT queries are allowed here"),
                        ("SELECT * FROM dead_letters", "dead_letters is the data team's table"),
                        ("SELECT * FROM read_csv('/etc/passwd')", "is not available here")]:
        refused = web.post("/panel/sql", {"csrf_token": token, "query": query, "limit": "10"})
        assert refused.status == 400 and said in unescape(refused.text), query
    assert web.post("/panel/sql", {"csrf_token": token, "query": "SELECT 1", "limit": "0"}).status == 400


def test_the_tables_index_shows_the_descriptions_code_as_code_not_backticks(demo_site: Site) -> None:
    page = signed_in(demo_site, "panel").get("/panel/tables")
    assert page.status == 200
    descriptions = re.findall(r'<dd class="govuk-summary-list__value">(.*?)</dd>', page.text, re.S)
    assert len(descriptions) == len(PANEL_TABLES)
    assert not [d for d in descriptions if "`" in d]
    assert "plus an <code>all</code> row" in page.text  # consultation_coverage's description


def test_one_priority_s_evidence_is_chosen_by_scope_and_rank(demo_home: PlanningHome, demo_site: Site) -> None:
    web = signed_in(demo_site, "panel")
    page = web.get(f"/panel/tables/priority_evidence?cycle={CYCLE}&scope=LONDON&rank=1&kind=cdrp_audit")
    assert page.status == 200 and 'id="filter-rank"' in page.text and 'id="filter-kind"' in page.text
    header, rows = shown_rows(page.text)
    expected = count(demo_home, "SELECT count(*) FROM priority_evidence WHERE cycle = ? AND scope = 'LONDON' AND rank = 1"
                                " AND kind = 'cdrp_audit'", CYCLE)
    assert 0 < expected < 1_000 and len(rows) == expected
    assert {(r[header.index("scope")], r[header.index("rank")], r[header.index("kind")]) for r in rows} == {("LONDON", "1", "cdrp_audit")}


def test_a_page_shows_at_most_its_row_bound_and_says_the_download_holds_the_rest(
        demo_home: PlanningHome, demo_site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.web.pages import tables
    monkeypatch.setattr(tables, "PAGE_ROWS", 5)
    web = signed_in(demo_site, "panel")
    query = f"?cycle={CYCLE}&scope=LONDON"  # a query no other test asks, so its page is made under this bound
    total = count(demo_home, "SELECT count(*) FROM priority_evidence WHERE cycle = ? AND scope = 'LONDON'", CYCLE)
    assert total > 5
    page = web.get(f"/panel/tables/priority_evidence{query}")
    _, rows = shown_rows(page.text)
    assert len(rows) == 5
    assert f"{total:,} rows; the first 5 are shown here, and the download holds all {total:,}" in page.text
    downloaded = list(csv.reader(io.StringIO(web.get(f"/panel/tables/priority_evidence.csv{query}").body.decode("utf-8"))))
    assert len(downloaded) == 1 + total
