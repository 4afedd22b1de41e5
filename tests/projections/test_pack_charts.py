"""The packs' charts, measured on their SVG coordinates: no label is cut, none overlaps a target tick.

A chart is read back as XML. A row label's lines (its ``tspan``s, or its one
line) must together say the whole name, with no ellipsis, and each line must
fit the label column; a value beside a bar must keep clear of every target
tick. Text extents use the charts' own width estimate (Liberation Sans'
average glyph, rounded up), the same one the charts lay themselves out with.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date

import pytest

from projections.packs import svg

NS = "{http://www.w3.org/2000/svg}"
LONG_NAMES = [
    "1. Anti-social behaviour (Hammersmith and Fulham)",
    "2. Robbery (Kensington and Chelsea)",
    "3. Police deal with what matters locally, in every ward of Richmond upon Thames",
]


@dataclass(frozen=True)
class Box:
    left: float
    top: float
    right: float
    bottom: float

    def overlaps(self, other: Box) -> bool:
        return self.left < other.right and other.left < self.right and self.top < other.bottom and other.top < self.bottom


def parse(chart: str) -> ET.Element:
    return ET.fromstring(chart.replace("<svg ", f'<svg xmlns="{NS[1:-1]}" ', 1))


def width_of(root: ET.Element) -> float:
    return float(root.get("viewBox").split()[2])


def lines_of(text: ET.Element) -> list[tuple[float, float, str]]:
    """(x, baseline y, words) of each line of a text element."""
    spans = text.findall(f"{NS}tspan")
    if not spans:
        return [(float(text.get("x")), float(text.get("y")), text.text or "")]
    return [(float(s.get("x")), float(s.get("y")), s.text or "") for s in spans]


def boxes(text: ET.Element) -> list[Box]:
    """Each line's extent, from its anchor, the estimated width and the font size (ascent 0.8 em, descent 0.2 em)."""
    size = float(text.get("font-size"))
    anchor = text.get("text-anchor", "start")
    out = []
    for x, y, words in lines_of(text):
        w = svg._text_width(words, size)
        left = x - w if anchor == "end" else x - w / 2 if anchor == "middle" else x
        out.append(Box(left, y - 0.8 * size, left + w, y + 0.2 * size))
    return out


def of_class(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{NS}{tag}") if e.get("class") == cls]


def charts_with_labels(labels: list[str]) -> dict[str, str]:
    return {
        "gantt": svg.gantt([svg.GanttRow(label, date(2026, 3, 1), date(2026, 5, 31), "open", None, True) for label in labels],
                           date(2026, 4, 1), "t"),
        "target_bars": svg.target_bars([svg.TargetBar(label, 120 + i, 150) for i, label in enumerate(labels)], "t"),
        "ratio_chart": svg.ratio_chart([("Group", [svg.RatioRow(label, 0.7, False) for label in labels])], "t"),
        "interval_chart": svg.interval_chart([svg.Estimate(label, 60, 55, 65, False) for label in labels], "t"),
        "interval_chart by wave": svg.interval_chart(
            [svg.Estimate(label, 60, 55, 65, False, k) for label in labels for k in (0, 1)], "t", ["w1", "w2"], group_size=2),
        "source_bars": svg.source_bars([svg.SourceRow(label, (0.2, 0.3, 0.4, 0.3)) for label in labels], ["a", "b", "c", "d"], "t"),
    }


@pytest.mark.parametrize("kind", list(charts_with_labels(["x"])))
def test_a_long_label_is_wrapped_whole_never_cut(kind: str) -> None:
    root = parse(charts_with_labels(LONG_NAMES)[kind])
    labels = of_class(root, "text", "row-label")
    assert [" ".join(words for _, _, words in lines_of(t)) for t in labels] == LONG_NAMES
    assert not any("…" in (t.text or "") + "".join(s.text or "" for s in t) for t in root.iter(f"{NS}text"))
    assert any(len(lines_of(t)) > 1 for t in labels)  # the longest names did need more than one line
    every_line = [b for t in labels for b in boxes(t)]
    for box in every_line:
        assert box.left >= 0, box  # inside the chart, not cut at its left edge
    for i, box in enumerate(every_line):  # the lines of neighbouring rows do not run into each other
        assert not any(box.overlaps(other) for other in every_line[i + 1:]), box
    # each row is tall enough for its label: the next label starts below this one
    tops = [min(b.top for b in boxes(t)) for t in labels]
    bottoms = [max(b.bottom for b in boxes(t)) for t in labels]
    assert all(bottom <= top for bottom, top in zip(bottoms, tops[1:]))


def test_short_labels_stay_on_one_line() -> None:
    for kind, chart in charts_with_labels(["Barnet", "Brent"]).items():
        labels = of_class(parse(chart), "text", "row-label")
        assert [lines_of(t)[0][2] for t in labels] == ["Barnet", "Brent"] and all(len(lines_of(t)) == 1 for t in labels), kind


# Values and targets chosen to put the value right at the tick: just below, at, just above, far below, at the scale's end.
TARGET_CASES = [
    (0, 400), (1, 400), (398, 400), (399, 400), (400, 400), (401, 400), (405, 400), (1_150, 1_200), (1_200, 1_200),
    (1_234, 1_500), (2_000, 400), (57, 2_400), (2_400, 2_400), (350, None), (0, None),
]


def test_a_value_never_overlaps_a_target_tick() -> None:
    rows = [svg.TargetBar(f"Borough {i}", value, target) for i, (value, target) in enumerate(TARGET_CASES)]
    root = parse(svg.target_bars(rows, "Responses against target by borough"))
    ticks = [Box(float(l.get("x1")) - float(l.get("stroke-width")) / 2, float(l.get("y1")),
                 float(l.get("x2")) + float(l.get("stroke-width")) / 2, float(l.get("y2")))
             for l in of_class(root, "line", "target")]
    values = [b for t in of_class(root, "text", "value") for b in boxes(t)]
    assert len(ticks) == sum(1 for _, target in TARGET_CASES if target is not None)
    assert len(values) == len(TARGET_CASES)
    for value in values:
        assert not any(value.overlaps(tick) for tick in ticks), value
        assert value.right <= width_of(root), value  # and it is not cut at the right edge
    # the bars themselves do not hide a value either
    bars = [Box(float(r.get("x")), float(r.get("y")), float(r.get("x")) + float(r.get("width")), float(r.get("y")) + float(r.get("height")))
            for r in root.iter(f"{NS}rect") if r.find(f"{NS}title") is not None]
    for value in values:
        assert not any(value.overlaps(bar) for bar in bars), value


def test_the_value_sits_past_the_tick_when_the_bar_falls_short() -> None:
    root = parse(svg.target_bars([svg.TargetBar("Barnet", 100, 400)], "t"))
    (tick,) = of_class(root, "line", "target")
    (value,) = of_class(root, "text", "value")
    assert float(value.get("x")) > float(tick.get("x1")) + 2
    assert value.text == "100 / 400 (25%)"


def test_the_gate_mark_never_overlaps_the_sign_off_mark() -> None:
    """A stage signed off on its due date with its gate not met: the '!' sits past the ◆, not on it."""
    rows = [svg.GanttRow("Fieldwork", date(2026, 6, 1), date(2026, 8, 31), "signed_off", date(2026, 8, 31), True),
            svg.GanttRow("Analysis", date(2026, 9, 1), date(2026, 9, 30), "signed_off", date(2026, 10, 3), True)]
    root = parse(svg.gantt(rows, date(2026, 11, 23), "t"))
    diamonds = []
    for path in root.iter(f"{NS}path"):
        points = [tuple(map(float, p.split(","))) for p in path.get("d").strip("MZ ").replace("L", "").split()]
        diamonds.append(Box(min(x for x, _ in points), min(y for _, y in points), max(x for x, _ in points), max(y for _, y in points)))
    marks = [b for t in of_class(root, "text", "value") for b in boxes(t)]
    assert len(diamonds) == len(marks) == 2
    for mark in marks:
        assert not any(mark.overlaps(diamond) for diamond in diamonds), (mark, diamonds)
