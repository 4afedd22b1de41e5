"""Briefing packs, tested as a Panel member sees them: opened in headless Chromium, offline.

One demo-like cycle is generated, ingested and built once for the module
(the synthetic 2027-28 cycle on 23 November 2026, with 2026-27 before it).
For every stage the pack is written (HTML and PDF) and the HTML is opened in
headless Chromium driven over the DevTools protocol (tests/support/browser.py: on a pipe, no extra
package), with every host name unresolvable and a proxy that goes nowhere.
The tests assert on what is on the screen: the title, the timetable first,
charts that are really drawn, every figure's (on, as_of), suppressed cells
with no number, no console error and no request leaving the machine. Full-page
screenshots are saved under each test's tmp dir.

Chromium is required: without it these tests fail (never skip), saying how to
install it (`apt-get install -y chromium`).
"""

from __future__ import annotations

import html as html_lib
import json
import re
import time
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from events.home import PlanningHome
from events.storage.store import EventStore
from events.contract.vocabulary import BOROUGH_NAMES, BOROUGHS, STAGES
from pipelines.orchestration.runs import build
from pipelines.cli.main import main
from pipelines.demo.generator import generate_demo_lines
from pipelines.ingest.files import ingest_files
from projections.packs import content, document, render_pack, write_pack
from projections.packs.labels import CITY_TILE, TILE_POSITIONS
from tests.support.browser import Chromium, Page, start_chromium
from tests.support.events import write_jsonl
from tests.support.home import use_home

CYCLE = "2027-28"
ON = "2026-11-23"
# Knowledge time is pinned: the events are recorded at KNOWN and read at AS_OF, whatever the day the tests run.
KNOWN = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)
AS_OF = "2026-11-23T12:00:00Z"

# What each stage's pack must show (section titles) and the least number of charts it draws.
EXPECTED: dict[str, tuple[list[str], int]] = {
    "brief": (["Last cycle's priorities (2026-27)", "What we fed back last cycle (2026-27)"], 1),
    "programme_approval": (["Targets by borough"], 2),
    "fieldwork": (["Coverage against target", "Coverage by channel", "Inclusion: who we are not hearing from",
                   "Consultative groups and ward panels"], 5),
    "analysis": (["Public Attitude Survey indicators", "CDRP audits: status and priorities", "Themes ranked by source"], 5),
    "feedback_1": (["Feedback, round 1: what was fed back where"], 2),
    "priorities": (["Adopted priorities and their evidence", "Themes ranked by source"], 3),
    "feedback_2": (["Feedback, round 2: what was fed back where"], 2),
    "publication": (["Traceability: from evidence to plan", "Feedback, round 2: what was fed back where"], 2),
}


# --- a demo-like build, once ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlanningHome]:
    root = tmp_path_factory.mktemp("packs") / "planning-home"
    with pytest.MonkeyPatch.context() as patch:
        home = use_home(patch, root)
        lines = [l for l in generate_demo_lines(date(2026, 11, 23), not_after=KNOWN) if l.strip()]
        with EventStore(home.store, writer=True) as store:
            ingest_files(store, [str(write_jsonl(root.parent / "demo.jsonl", lines))], recorded_at=KNOWN, progress=None)
        build(home, on=ON, as_of=AS_OF)
        yield home


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    browser = start_chromium(why="these tests open the briefing packs in headless Chromium")
    yield browser
    browser.close()


# What the page shows, measured in the browser: text, sections, charts and their drawn shapes, provenance.
INSPECT = r"""JSON.stringify((() => {
  const visible = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const charts = [...document.querySelectorAll('svg')].map(svg => {
    const shapes = [...svg.querySelectorAll('rect, path, circle')].filter(s => { const b = s.getBBox(); return b.width > 0 && b.height > 0; });
    const box = svg.getBoundingClientRect();
    return {title: svg.querySelector('title') ? svg.querySelector('title').textContent : '', width: box.width, height: box.height,
            shapes: shapes.length, texts: svg.querySelectorAll('text').length};
  });
  const figures = [...document.querySelectorAll('figure')].map(f => ({on: f.dataset.on, asOf: f.dataset.asOf,
      caption: f.querySelector('figcaption').innerText, visible: visible(f)}));
  const tables = [...document.querySelectorAll('table')].map(t => ({on: t.dataset.on, asOf: t.dataset.asOf,
      caption: t.querySelector('caption').innerText, rows: t.tBodies[0].rows.length}));
  const suppressed = [...document.querySelectorAll('.suppressed')].map(e => e.textContent);
  return {title: document.title, h1: document.querySelector('h1').innerText,
          sections: [...document.querySelectorAll('main section')].map(s => ({id: s.id, title: s.querySelector('h2').innerText})),
          firstFigure: document.querySelector('main section figure svg title').textContent,
          charts, figures, tables, suppressed, text: document.body.innerText,
          height: document.documentElement.scrollHeight, width: document.documentElement.scrollWidth,
          fonts: [...document.fonts].length, links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))};
})())"""

RESOURCE_REFERENCE = re.compile(r"""(?:src|href|xlink:href|action|poster|data)\s*=\s*["']?\s*(?!#)[a-z]+:|url\(|@import|<link|<script|<iframe|<object|<embed""", re.I)


def inspect(page: Page) -> dict[str, Any]:
    return json.loads(page.evaluate(INSPECT))


# --- the tests ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_the_pack_of_each_stage_as_a_reader_sees_it(stage: str, demo: PlanningHome, chromium: Chromium, tmp_path: Path) -> None:
    written = write_pack(demo.projections, CYCLE, stage, tmp_path)
    assert written.pdf_error is None, written.pdf_error
    assert written.html == tmp_path / f"{stage}.html" and written.pdf == tmp_path / f"{stage}.pdf"
    pdf = written.pdf.read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.count(b"/Type /Page") >= 2  # several A4 pages, at least
    assert tails(written.pdf) == []  # printed, no page holds only a table's tail

    html = written.html.read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html  # no absolute address at all, not even as text
    assert not RESOURCE_REFERENCE.search(html), RESOURCE_REFERENCE.search(html)

    page = chromium.open(written.html.as_uri())
    try:
        seen = inspect(page)
        page.screenshot(tmp_path / f"{stage}.png")
        page.screenshot(tmp_path / f"{stage}-first-screen.png", full=False)
        requests = page.requests()
        errors = page.console_errors()
    finally:
        page.close()

    # nothing left the machine: the only request is the file itself; no console error
    assert requests and all(url.startswith("file://") for url in requests), requests
    assert [u for u in requests if u != written.html.as_uri()] == []
    assert errors == []
    assert all(link.startswith("#") for link in seen["links"])

    # the title and the stage
    titles, least_charts = EXPECTED[stage]
    assert seen["title"] == seen["h1"] == f"Policing Plan 2027/28: {content.stage_label(stage)}"
    assert "Synthetic data." in seen["text"]
    # every pack opens with the timetable, borough names readable, every stage listed
    assert seen["sections"][0] == {"id": "timetable", "title": "1. The timetable"}
    assert seen["firstFigure"] == f"Timetable of the {CYCLE} cycle"
    assert "below target: Barnet and Brent" in seen["text"] and "CDRP audit missing: Enfield and Harrow" in seen["text"]
    assert "E09000003" not in seen["text"]  # names, not codes
    for label in ("Brief", "Programme approval", "Fieldwork", "Analysis", "Feedback, stage 1", "Priorities", "Feedback, stage 2", "Publication"):
        assert label in seen["text"]
    # the stage's own sections, then the notes
    section_titles = [re.sub(r"^\d+\.\s*", "", s["title"]) for s in seen["sections"]]
    for title in titles:
        assert title in section_titles, (title, section_titles)
    assert section_titles[-1] == "Notes on the data"
    # the notes say what one row of each source table is, in the words of its schema file
    sources = {name for item in seen["figures"] + seen["tables"]
               for name in re.search(r"Source: (.+?), cycle ", item["caption"]).group(1).split(", ")}
    for source in sources:
        assert content.table_note(source) in seen["text"], source

    # charts really drawn: each has a size and shapes with a size
    assert len(seen["charts"]) >= least_charts, [c["title"] for c in seen["charts"]]
    for chart in seen["charts"]:
        assert chart["width"] > 300 and chart["height"] > 100, chart
        assert chart["shapes"] >= 3 and chart["texts"] >= 3, chart

    # every figure and table carries the (on, as_of) of its build, and says synthetic
    assert seen["figures"] and seen["tables"]
    for item in seen["figures"] + seen["tables"]:
        assert item["on"] == ON and item["asOf"].startswith(ON), item
        text = item["caption"]
        assert "on = 23 November 2026" in text and "as_of = 23 Nov 2026" in text and "Synthetic data." in text, text
    assert all(f["visible"] for f in seen["figures"])

    # suppressed cells show the word and no number
    for cell in seen["suppressed"]:
        assert re.fullmatch(r"suppressed(?: \((?:<10|n<30)\))?", cell.strip()), cell

    # it rendered fully, on an A4-like width without sideways scrolling
    assert seen["height"] > 1500
    assert seen["width"] <= 900
    assert (tmp_path / f"{stage}.png").stat().st_size > 50_000


def test_fieldwork_shows_who_we_are_not_hearing_from_without_numbers_for_small_cells(demo: PlanningHome, chromium: Chromium, tmp_path: Path) -> None:
    written = write_pack(demo.projections, CYCLE, "fieldwork", tmp_path, pdf=False)
    page = chromium.open(written.html.as_uri())
    try:
        rows = json.loads(page.evaluate(r"""JSON.stringify([...[...document.querySelectorAll('table')]
            .filter(t => t.caption.innerText.includes('London: respondents by group'))[0]
            .tBodies[0].rows].map(r => [...r.cells].map(c => c.innerText)))"""))
        tiles = json.loads(page.evaluate(r"""JSON.stringify([...document.querySelectorAll('svg')]
            .filter(s => s.querySelector('title').textContent.startsWith('Representation of'))
            .flatMap(s => [...s.querySelectorAll('rect > title')].map(t => t.textContent)))"""))
    finally:
        page.close()
    assert len(rows) == 16  # every group of every dimension, London
    assert any(t.endswith(": suppressed") for t in tiles)  # the borough tile map has suppressed boroughs
    for tooltip in tiles:
        name, _, value = tooltip.partition(": ")
        assert name in BOROUGH_NAMES.values()
        assert value == "suppressed" or re.fullmatch(r"\d\.\d\d|no baseline", value), tooltip


def poisoned(rows: list[dict[str, Any]], seed: int, force_survey: bool) -> list[dict[str, Any]]:
    """Suppressed rows of inclusion and survey_indicators, with numbers put back that the pack must never show.

    With ``force_survey`` the first borough's survey rows are made suppressed too (the demo has none).
    """
    out = []
    for row in rows:
        row = dict(row)
        if force_survey and "indicator" in row and row.get("scope") == BOROUGHS[0]:
            row.update(suppressed=True, weighted_pct=None, ci_low=None, ci_high=None)
        if row.get("suppressed") and seed:
            if "indicator" in row:
                row.update(weighted_pct=11.0 + seed, ci_low=1.0 + seed, ci_high=21.0 + seed, unweighted_n=seed, effective_n=seed + 0.5)
            if "representation_ratio" in row:
                row.update(respondents=seed, share=seed / 1000, representation_ratio=seed / 7)
        out.append(row)
    return out


@pytest.mark.parametrize("stage", STAGES)
def test_no_number_is_ever_drawn_from_a_suppressed_cell(stage: str, demo: PlanningHome, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put numbers back into the suppressed cells: the pack must not change by a byte, whatever they are."""
    original = content.Reader.rows
    renders = []
    for seed in (0, 7, 9):
        monkeypatch.setattr(content.Reader, "rows", lambda self, sql, *p, _seed=seed: poisoned(original(self, sql, *p), _seed, True))
        renders.append(render_pack(demo.projections, CYCLE, stage)[0])
    assert renders[0] == renders[1] == renders[2]
    if stage == "analysis":
        assert "suppressed (n&lt;30)" in renders[0]  # the forced survey suppression shows as words


def test_the_tile_map_places_every_borough_once(demo: PlanningHome) -> None:
    assert sorted(TILE_POSITIONS) == sorted(BOROUGHS)
    places = list(TILE_POSITIONS.values()) + [CITY_TILE]
    assert len(set(places)) == len(places) == 33
    assert all(0 <= col < 8 and 0 <= row < 7 for col, row in places)


def test_the_harness_would_see_a_request_and_a_console_error(chromium: Chromium, tmp_path: Path) -> None:
    """The checks above are only worth something if they catch a page that does reach out, or breaks."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><title>bad</title><img src="http://example.invalid/pixel.png">'
                   '<script>console.error("broken")</script><p>hello</p>')
    page = chromium.open(bad.as_uri())
    try:
        time.sleep(0.5)
        assert any(url.startswith("http://example.invalid/") for url in page.requests())
        assert page.console_errors()
        assert page.evaluate("document.body.innerText").strip() == "hello"  # the page still renders, offline
    finally:
        page.close()


def test_planning_pack_command_defaults_to_the_current_stage(demo: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    assert main(["pack", "--cycle", CYCLE]) == 0
    out = capsys.readouterr().out
    html = demo.root / "packs" / CYCLE / "priorities.html"
    assert f"stage priorities (on {ON}" in out and str(html) in out
    assert html.exists() and html.with_suffix(".pdf").exists()
    assert main(["pack", "--cycle", "2030-31"]) == 3
    assert "cycle 2030-31 is not in the published snapshot (published: 2026-27, 2027-28)" in capsys.readouterr().err


def test_without_chromium_the_html_is_written_and_the_pdf_failure_is_clear(demo: PlanningHome, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("CHROMIUM", str(tmp_path / "no-chromium-here"))
    capsys.readouterr()
    assert main(["pack", "--cycle", CYCLE, "--stage", "brief", "--to", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert "the PDF was not written" in err and "apt-get install -y chromium" in err
    assert (tmp_path / "brief.html").exists() and not (tmp_path / "brief.pdf").exists()


def test_briefing_pack_asset_writes_the_current_stage_with_its_instants(demo: PlanningHome) -> None:
    from pipelines.orchestration.runs import write_current_pack

    metadata = write_current_pack(demo, CYCLE)
    assert metadata["stage"] == "priorities"
    assert metadata["on"] == ON and metadata["as_of"].startswith(ON)
    assert metadata["html"] == str(demo.root / "packs" / CYCLE / "priorities.html")
    assert metadata["pdf"] == str(demo.root / "packs" / CYCLE / "priorities.pdf")
    assert Path(metadata["pdf"]).read_bytes().startswith(b"%PDF-")
    assert '<meta name="synthetic" content="true">' in Path(metadata["html"]).read_text()

    import dagster as dg

    from pipelines.orchestration.definitions import defs

    spec = defs.resolve_assets_def("briefing_pack")
    key = dg.AssetKey("briefing_pack")
    assert spec.group_names_by_key[key] == "publication"
    assert spec.partitions_def.name == "cycle"
    assert {d.to_user_string() for d in spec.asset_deps[key]} >= {"panel_snapshot", "stage_status", "priority_traceability"}


def test_the_traceability_table_counts_each_priority_s_evidence_and_says_how_to_list_it(demo: PlanningHome) -> None:
    import duckdb

    html = render_pack(demo.projections, CYCLE, "publication")[0]
    table = re.search(r"<caption><strong>Table \d+\.</strong> Each adopted priority traced to its evidence\..*?</table>", html, re.S).group(0)
    rows = [cells for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
            if (cells := [_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)])]
    from projections.reading.snapshots import published

    snapshot = published(demo.projections)["cycles"][CYCLE]["file"]
    with duckdb.connect(snapshot, read_only=True) as db:
        listed = db.execute("SELECT t.scope, t.rank, count(e.event_id) FROM priority_traceability AS t "
                            "LEFT JOIN priority_evidence AS e USING (cycle, scope, rank) "
                            "GROUP BY t.scope, t.rank ORDER BY t.scope = 'LONDON' DESC, t.scope, t.rank").fetchall()
        distinct = db.execute("SELECT count(DISTINCT event_id) FROM priority_evidence").fetchone()[0]
        some_ids = [i for (i,) in db.execute("SELECT event_id FROM priority_evidence USING SAMPLE 20 ROWS").fetchall()]
    assert len(rows) == len(listed) > 1 and some_ids
    assert [int(r[5].replace(",", "")) for r in rows] == [n for _, _, n in listed]  # the counts are the rows listed
    assert len(rows[0]) == 6  # counts only: no ids, no codes
    scope, rank, _ = listed[0]
    assert f"planning query priority_evidence --cycle {CYCLE} --scope {scope} --rank {rank} prints" in _text(html)
    assert f"traced to {distinct:,} distinct evidence events" in _text(html)
    assert not [i for i in some_ids if i in html]  # the ids stay in the table, out of the pack


# --- printing well: whole labels, no repeated names, tables kept with their captions ------------------------------


def _text(fragment: str) -> str:
    """The words of an HTML or SVG fragment as read: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def repeated_names(text: str) -> list[str]:
    """Each '(X)' that says again the words just before it: 'Feedback, stage 2 (Feedback stage 2)'."""
    found = []
    for match in re.finditer(r"\(([^()]+)\)", text):
        inner, before = _words(match.group(1)), _words(text[:match.start()])
        if inner and before[-len(inner):] == inner:
            found.append(text[max(0, match.start() - 60):match.end()])
    return found


def test_repeated_names_are_caught() -> None:
    assert repeated_names("Cycle 2027-28 · stage 7 of 8: Feedback, stage 2 (Feedback stage 2) · window")
    assert not repeated_names("Feedback, stage 2 (Second feedback to boroughs)")
    assert not repeated_names("1. Robbery (Hammersmith and Fulham)")


def chart_labels(html: str) -> dict[str, list[str]]:
    """Each chart's row labels, by chart title, each label's lines joined as the reader reads them."""
    charts = {}
    for chart in re.findall(r"<svg .*?</svg>", html, re.S):
        title = html_lib.unescape(re.search(r"<title>(.*?)</title>", chart).group(1))
        charts[title] = [_text(label) for label in re.findall(r'<text [^>]*class="row-label"[^>]*>(.*?)</text>', chart)]
    return charts


@pytest.mark.parametrize("stage", STAGES)
def test_no_label_is_cut_and_no_name_is_said_twice(stage: str, demo: PlanningHome) -> None:
    html = render_pack(demo.projections, CYCLE, stage)[0]
    svg_text = " ".join(_text(t) for t in re.findall(r"<text[^>]*>.*?</text>", html))
    assert "…" not in svg_text and "..." not in svg_text
    labels = chart_labels(html)
    assert labels["Timetable of the 2027-28 cycle"] == [content.stage_label(s) for s in STAGES]
    if stage == "fieldwork":
        assert sorted(labels["Responses against target by borough"]) == sorted(BOROUGH_NAMES[b] for b in BOROUGHS)
    if stage == "priorities":  # each adopted priority's chart label says its rank, theme and whole borough name
        table = re.search(r"<caption><strong>Table \d+\.</strong> Adopted priorities with the evidence behind each\..*?</table>", html, re.S).group(0)
        rows = [cells[:3] for row in re.findall(r"<tr>(.*?)</tr>", table)
                if (cells := [_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)])]
        expected = [f"{rank}. {theme}" + ("" if scope == "London" else f" ({scope})") for rank, theme, scope in rows]
        assert any(scope != "London" for _, _, scope in rows)  # the demo adopts borough priorities too
        assert labels["Evidence behind each adopted priority"] == expected
    # headings, captions, the subtitle and the summaries never say a name twice, nor does the timetable's row
    prose = [_text(m.group(2)) for m in re.finditer(r"<(h1|h2|caption|figcaption)\b[^>]*>(.*?)</\1>", html, re.S)]
    prose += [_text(p) for p in re.findall(r'<p class="(?:subtitle|summary)">(.*?)</p>', html, re.S)]
    assert any(f"{content.stage_label(stage)} (" in p for p in prose)  # the subtitle names the stage and what happens in it
    assert [r for p in prose for r in repeated_names(p)] == []
    timetable = re.search(r"<caption><strong>Table 1\.</strong> Stages of the .*?</table>", html, re.S).group(0)
    stages = [[_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)][:2] for row in re.findall(r"<tr>(.*?)</tr>", timetable)][1:]
    assert [name for name, _ in stages] == [content.stage_label(s) for s in STAGES]
    for name, what in stages:  # "What happens" says what happens, not the stage's name again
        assert _words(what) != _words(name), (name, what)


@pytest.mark.parametrize("stage", STAGES)
def test_the_print_css_keeps_tables_and_figures_with_their_captions(stage: str, demo: PlanningHome) -> None:
    html = render_pack(demo.projections, CYCLE, stage)[0]
    style = re.sub(r"\s+", " ", re.search(r"<style>(.*?)</style>", html, re.S).group(1))
    for rule in ("thead { display: table-header-group; }", "figure { margin: 4mm 0 5mm; break-inside: avoid;",
                 ".table-wrap { break-inside: avoid;", ".table-wrap.long { break-inside: auto;",
                 "h1, h2, h3, table.data caption { break-after: avoid;", "tr { break-inside: avoid;"):
        assert rule in style, rule
    wraps = re.findall(r'<div class="(table-wrap(?: long)?)"><table .*?<tbody>(.*?)</tbody>', html, re.S)
    assert wraps
    for wrap, body in wraps:  # only a table too long for a page may break, and it repeats its header row
        assert (wrap == "table-wrap long") == (body.count("<tr>") > document.LONG_TABLE_ROWS), (wrap, body.count("<tr>"))
    # every table has its caption and header row inside it, and every figure its caption
    assert html.count("<table ") == html.count("<caption>") == html.count("<thead>")
    assert html.count("<figure ") == html.count("<figcaption>")


# What a printed page holds: the text on it, read back from the PDF with PDFium, inside the page's margins.
MM = 72 / 25.4  # PDF points per millimetre
LEAST_FILL = 0.4  # a page under this full, before the last, must at least begin a figure or a table
CAPTION = re.compile(r"^(?:Figure|Table) \d+\.(?: |$)")


def printed_pages(pdf: Path) -> list[tuple[float, list[str]]]:
    """Each page's fill (how far down its content reaches, as a share of A4 less the @page margins) and its lines.

    Lines printed on every page alike (a running banner) are left out, so the measure is of the pack's own content.
    """
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf)
    pages = []
    try:
        for page in document:
            _, height = page.get_size()
            top, bottom = height - 16 * MM, 18 * MM  # the @page margins of the pack's CSS
            text = page.get_textpage()
            lines = []
            for i in range(text.count_rects()):
                left, low, right, high = text.get_rect(i)
                if low >= bottom - 1 and high <= top + 1:
                    lines.append((low, " ".join(text.get_text_bounded(left, low, right, high).split())))
            pages.append((top, bottom, lines))
    finally:
        document.close()
    everywhere = set.intersection(*[{words for _, words in lines} for _, _, lines in pages]) if len(pages) > 1 else set()
    out = []
    for top, bottom, lines in pages:
        own = [(low, words) for low, words in lines if words not in everywhere]
        out.append(((top - min([low for low, _ in own], default=top)) / (top - bottom), [words for _, words in own]))
    return out


def test_a_page_holding_only_a_tables_tail_is_caught(tmp_path: Path) -> None:
    """The measure itself: a table that runs a few rows onto a page of its own is seen, a whole one is not."""
    from projections.packs.pdf import print_pdf

    rows = "".join(f"<tr><td>row {i}</td></tr>" for i in range(50))
    page = tmp_path / "tail.html"
    page.write_text(f"<!DOCTYPE html><style>@page {{ size: A4; margin: 16mm 14mm 18mm; }} td {{ font: 12pt sans-serif; }}</style>"
                    f"<p>Figure 1. A caption</p><table><caption>Table 1. Rows</caption>{rows}</table>")
    pages = printed_pages(print_pdf(page, tmp_path / "tail.pdf"))
    assert len(pages) == 2 and pages[0][0] > 0.9 and pages[1][0] < LEAST_FILL
    assert not any(CAPTION.match(line) for line in pages[1][1]) and any(CAPTION.match(line) for line in pages[0][1])


def tails(pdf: Path) -> list[tuple[int, float, list[str]]]:
    """Pages before the last that are under LEAST_FILL full and begin no figure or table: a table's tail left alone."""
    pages = printed_pages(pdf)
    assert len(pages) >= 2 and pages[-1][0] > 0  # several pages, and the last holds something
    return [(number, round(fill, 2), lines[:3]) for number, (fill, lines) in enumerate(pages[:-1], start=1)
            if fill < LEAST_FILL and not any(CAPTION.match(line) for line in lines)]
