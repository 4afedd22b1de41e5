"""No output built from synthetic data lacks the label, and none built from real data has it.

The same small cycle is built twice, from a store of synthetic events and from
a store of real ones (tests/support/synthetic.py). The label comes from the
data: the snapshot's ``build_info.synthetic``, which the export README (csv,
parquet, xlsx) and the pack read; no caller passes it. The pack is checked as
it is read: each printed PDF page's text (pypdf), and the HTML in headless
Chromium, scrolled from top to bottom.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from events.home import PlanningHome
from projections.packs import write_pack
from projections.reading.exports import export_cycle
from projections.reading.snapshots import open_reader, published
from tests.projections.test_packs import Chromium, chromium  # noqa: F401  (the headless-Chromium fixture)
from tests.support.synthetic import CYCLE, LABEL, built_homes

KINDS = ("synthetic", "real")


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PlanningHome]:
    return built_homes(tmp_path_factory.mktemp("synthetic-label"))


@pytest.mark.parametrize("kind", KINDS)
def test_the_snapshot_says_whether_its_data_is_synthetic(kind: str, homes: dict[str, PlanningHome]) -> None:
    db = open_reader(homes[kind].projections)
    try:
        assert db.execute("SELECT cycle, synthetic FROM build_info").fetchall() == [(CYCLE, kind == "synthetic")]
    finally:
        db.close()
    assert published(homes[kind].projections)["cycles"][CYCLE]["synthetic"] is (kind == "synthetic")


def readme_and_sheet(home: PlanningHome, fmt: str, to: Path) -> str:
    """The export's README, and for xlsx the README sheet's text too."""
    result = export_cycle(home.projections, CYCLE, fmt, to)
    text = result.readme.read_text(encoding="utf-8")
    if fmt == "xlsx":
        sheet = load_workbook(to / f"panel-{CYCLE}.xlsx")["README"]
        text += "\n" + json.dumps([[c for c in row if c is not None] for row in sheet.iter_rows(max_row=3, values_only=True)])
    return text


@pytest.mark.parametrize("fmt", ["csv", "parquet", "xlsx"])
def test_every_export_readme_of_synthetic_data_opens_with_the_label(fmt: str, homes: dict[str, PlanningHome], tmp_path: Path) -> None:
    labelled = readme_and_sheet(homes["synthetic"], fmt, tmp_path / "synthetic")
    first_lines = labelled.splitlines()[:3]
    assert first_lines[0] == f"# Planning Panel tables, cycle {CYCLE} ({LABEL})", first_lines
    assert first_lines[2].startswith(f"**{LABEL}.** These tables are built from synthetic data"), first_lines
    assert "| `synthetic` | true |" in labelled
    if fmt == "xlsx":
        assert f'"Planning Panel tables for cycle {CYCLE} ({LABEL})"' in labelled and f'"{LABEL}: the events' in labelled

    plain = readme_and_sheet(homes["real"], fmt, tmp_path / "real")
    assert LABEL not in plain and "synthetic data" not in plain.lower()
    assert "| `synthetic` | false |" in plain


def page_texts(pdf: Path) -> list[str]:
    return [page.extract_text() or "" for page in PdfReader(pdf).pages]


@pytest.mark.parametrize("stage", ["fieldwork", "priorities"])
def test_every_printed_page_of_a_synthetic_pack_carries_the_label(stage: str, homes: dict[str, PlanningHome], tmp_path: Path) -> None:
    written = write_pack(homes["synthetic"].projections, CYCLE, stage, tmp_path / "synthetic")
    assert written.pdf_error is None, written.pdf_error
    assert written.synthetic
    pages = page_texts(written.pdf)
    assert len(pages) >= 3  # a cover and a page per section, at least
    unlabelled = [number for number, text in enumerate(pages, start=1) if LABEL not in text]
    assert unlabelled == [], f"pages without the label: {unlabelled} of {len(pages)}"

    plain = write_pack(homes["real"].projections, CYCLE, stage, tmp_path / "real")
    assert plain.pdf_error is None and not plain.synthetic
    real_pages = page_texts(plain.pdf)
    assert len(real_pages) >= 3 and all("synthetic" not in text.lower() for text in real_pages)


MARK_IN_VIEW = r"""JSON.stringify((() => {
  const mark = document.querySelector('.synthetic-mark');
  if (!mark) return null;
  const r = mark.getBoundingClientRect();
  return {text: mark.innerText, inView: r.width > 0 && r.height > 0 && r.top >= 0 && r.bottom <= innerHeight,
          onTop: document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2) === mark};
})())"""


def test_the_synthetic_pack_on_screen_shows_the_label_wherever_one_scrolls(homes: dict[str, PlanningHome], chromium: Chromium,
                                                                           tmp_path: Path) -> None:
    written = write_pack(homes["synthetic"].projections, CYCLE, "fieldwork", tmp_path / "synthetic", pdf=False)
    page = chromium.open(written.html.as_uri())
    try:
        height = int(page.evaluate("document.documentElement.scrollHeight"))
        assert height > 3 * 1200  # several screens to scroll through
        seen = []
        for y in range(0, height, 1000):
            page.evaluate(f"window.scrollTo(0, {y})")
            seen.append(json.loads(page.evaluate(MARK_IN_VIEW)))
        text = page.evaluate("document.body.innerText")
    finally:
        page.close()
    assert seen and all(s == {"text": LABEL, "inView": True, "onTop": True} for s in seen), seen
    assert "Synthetic data." in text  # the cover's banner and every figure's and table's provenance

    plain = write_pack(homes["real"].projections, CYCLE, "fieldwork", tmp_path / "real", pdf=False)
    page = chromium.open(plain.html.as_uri())
    try:
        assert json.loads(page.evaluate(MARK_IN_VIEW)) is None
        assert "synthetic" not in page.evaluate("document.body.innerText").lower()
    finally:
        page.close()
    assert '<meta name="synthetic" content="false">' in plain.html.read_text(encoding="utf-8")
