"""Charts as inline SVG, written by hand: no library, no script, no font or file from anywhere.

Every chart is a string of SVG with a ``viewBox`` (it scales to the page), a
``<title>`` and ``<desc>`` for screen readers, and only rect, line, circle,
path and text elements. A suppressed value is drawn as the words "suppressed",
never as a bar, a dot or a number.

A row's label is never cut short: a name wider than the label column is wrapped
at its spaces onto several lines (``tspan``), and the row grows to hold them.
Labels that sit beside a bar are placed past both the bar's end and its target
tick, so the two never overlap. Row labels carry ``class="row-label"``, values
``class="value"`` and target ticks ``class="target"``, so tests can measure them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape

from projections.packs.labels import (
    BOROUGH_ABBREVIATIONS, CITY_TILE, TILE_POSITIONS, borough_name,
)

INK = "#1d2733"
MUTED = "#5f6b7a"
GRID = "#d5dae1"
NAVY = "#1f3a5f"
GREEN = "#2e7d4f"
AMBER = "#c77700"
RED = "#b3261e"
GREY = "#9aa3ad"
BLUE = "#3f6fb5"
LIGHT = "#eef1f5"
SERIES = ("#1f3a5f", "#3f8fb5", "#c77700", "#7a5aa6")  # consultation, survey, CDRP, combined / waves
STATUS_COLOURS = {"signed_off": GREEN, "open": BLUE, "overdue": RED, "upcoming": GREY}

FONT = 12
LINE = 1.2  # line height of a wrapped label, in ems


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _text_width(text: str, size: float = FONT) -> float:
    """A conservative estimate of rendered width (Liberation Sans / Arial metrics average ~0.55 em)."""
    return len(text) * size * 0.56


class Canvas:
    def __init__(self, width: float, height: float, title: str, desc: str = "") -> None:
        self.width, self.height, self.title, self.desc = width, height, title, desc
        self.parts: list[str] = []

    def rect(self, x: float, y: float, w: float, h: float, fill: str, *, stroke: str | None = None,
             title: str | None = None, rx: float = 0, cls: str = "", dash: str | None = None) -> None:
        attributes = f'x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" fill="{fill}"'
        if rx:
            attributes += f' rx="{rx}"'
        if stroke:
            attributes += f' stroke="{stroke}" stroke-width="1"'
        if dash:
            attributes += f' stroke-dasharray="{dash}"'
        if cls:
            attributes += f' class="{cls}"'
        if title:
            self.parts.append(f"<rect {attributes}><title>{_e(title)}</title></rect>")
        else:
            self.parts.append(f"<rect {attributes}/>")

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = GRID, width: float = 1, dash: str | None = None,
             cls: str = "") -> None:
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        extra += f' class="{cls}"' if cls else ""
        self.parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" stroke-width="{width}"{extra}/>')

    def circle(self, x: float, y: float, r: float, fill: str, title: str | None = None) -> None:
        inner = f"<title>{_e(title)}</title>" if title else ""
        self.parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{fill}">{inner}</circle>')

    def path(self, d: str, fill: str, title: str | None = None) -> None:
        inner = f"<title>{_e(title)}</title>" if title else ""
        self.parts.append(f'<path d="{d}" fill="{fill}">{inner}</path>')

    def text(self, x: float, y: float, content: str, *, size: float = FONT, anchor: str = "start", fill: str = INK,
             weight: str = "normal", italic: bool = False, cls: str = "") -> None:
        style = ' font-style="italic"' if italic else ""
        klass = f' class="{cls}"' if cls else ""
        self.parts.append(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" '
            f'font-weight="{weight}"{style}{klass}>{_e(content)}</text>'
        )

    def lines(self, x: float, middle: float, lines: list[str], *, size: float = FONT, anchor: str = "end", fill: str = INK,
              weight: str = "normal", cls: str = "row-label") -> None:
        """One label on one or more lines (from :func:`_wrap`), centred vertically on ``middle``."""
        step = size * LINE
        first = middle + size * 0.35 - step * (len(lines) - 1) / 2
        if len(lines) == 1:
            self.text(x, first, lines[0], size=size, anchor=anchor, fill=fill, weight=weight, cls=cls)
            return
        spans = "".join(f'<tspan x="{x:.1f}" y="{first + i * step:.1f}">{_e(line)}</tspan>' for i, line in enumerate(lines))
        self.parts.append(
            f'<text x="{x:.1f}" y="{first:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" '
            f'font-weight="{weight}" class="{cls}">{spans}</text>'
        )

    def legend(self, x: float, y: float, items: list[tuple[str, str]], *, dash_first: bool = False) -> float:
        """A row of swatches; returns the y below it."""
        cursor = x
        for colour, label in items:
            self.rect(cursor, y - 9, 12, 12, colour, rx=2, stroke=GRID if colour in (LIGHT, "#ffffff") else None)
            self.text(cursor + 17, y + 1, label, size=FONT - 1, fill=MUTED)
            cursor += 17 + _text_width(label, FONT - 1) + 18
        return y + 14

    def render(self) -> str:
        return (
            f'<svg viewBox="0 0 {self.width:.0f} {self.height:.0f}" width="100%" role="img" '
            f'preserveAspectRatio="xMinYMin meet" class="chart">'
            f"<title>{_e(self.title)}</title><desc>{_e(self.desc or self.title)}</desc>"
            + "".join(self.parts) + "</svg>"
        )


def _nice_scale(value: float, most: int = 6) -> tuple[float, list[float]]:
    """A round maximum at or above ``value`` and its ticks: steps of 1, 2, 2.5 or 5 times a power of ten."""
    if value <= 0:
        value = 1.0
    power = 10 ** math.floor(math.log10(value / most))
    for base in (1, 2, 2.5, 5, 10, 20, 25, 50):
        step = base * power
        if value / step <= most:
            break
    top = math.ceil(value / step - 1e-9) * step
    return top, [round(i * step, 10) for i in range(int(round(top / step)) + 1)]


def _wrap(text: str, width: float, size: float = FONT) -> list[str]:
    """``text`` broken at its spaces into lines that fit ``width`` (estimated); no word is cut, nothing is dropped.

    A name in brackets at the end ("1. Robbery (Hammersmith and Fulham)") starts a line of its own.
    """
    head, bracket, tail = text.rpartition(" (")
    if bracket and tail.endswith(")") and _text_width(text, size) > width:
        return _wrap(head, width, size) + _wrap(f"({tail}", width, size)
    lines: list[str] = []
    for word in text.split():
        if lines and _text_width(f"{lines[-1]} {word}", size) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines or [""]


def _label_height(lines: list[str], size: float, padding: float = 4) -> float:
    """The height a row needs to hold a wrapped label."""
    return len(lines) * size * LINE + padding


# --- the timetable as a Gantt chart --------------------------------------------------------


@dataclass(frozen=True)
class GanttRow:
    label: str
    opens: date
    due: date
    status: str
    signed_off: date | None
    blocked: bool


def gantt(rows: list[GanttRow], on: date, title: str) -> str:
    left, right, top, row_h = 140, 14, 48, 26
    width = 700
    start = min(r.opens for r in rows).replace(day=1)
    last = max([r.due for r in rows] + [on])
    end = (last.replace(day=28) + timedelta(days=4)).replace(day=1)  # first day of the month after
    span = (end - start).days or 1
    plot = width - left - right

    def x(d: date) -> float:
        return left + plot * (min(max(d, start), end) - start).days / span

    labels = [_wrap(r.label, left - 12) for r in rows]
    heights = [max(row_h, _label_height(lines, FONT)) for lines in labels]
    bottom = top + sum(heights)
    height = bottom + 34
    c = Canvas(width, height, title, "Each stage's window as a bar, coloured by its status; the dashed line is the date the pack was built at.")
    c.legend(left, 14, [(STATUS_COLOURS["signed_off"], "signed off"), (STATUS_COLOURS["open"], "open"),
                        (STATUS_COLOURS["overdue"], "overdue"), (STATUS_COLOURS["upcoming"], "upcoming")])
    c.text(width - right, 14 + 1, "! gate not met", size=FONT - 1, anchor="end", fill=MUTED)
    c.text(width - right - _text_width("! gate not met", FONT - 1) - 14, 14 + 1, "◆ date signed off", size=FONT - 1, anchor="end", fill=MUTED)
    month = start
    while month < end:
        nxt = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
        xm = x(month)
        c.line(xm, top - 6, xm, bottom, GRID)
        if (nxt - month).days and x(nxt) - xm > 18:
            label = f"{month:%b}" if month.month != 1 and month != start else f"{month:%b %Y}"
            c.text((xm + x(nxt)) / 2, top - 10, label, size=FONT - 2, anchor="middle", fill=MUTED)
        month = nxt
    y = top
    for i, (r, lines, h) in enumerate(zip(rows, labels, heights)):
        if i % 2 == 0:
            c.rect(0, y, width, h, LIGHT)
        c.lines(left - 8, y + h / 2, lines, weight="bold" if r.status in ("open", "overdue") else "normal")
        x0, x1 = x(r.opens), x(r.due + timedelta(days=1))
        c.rect(x0, y + h / 2 - 7, max(x1 - x0, 3), 14, STATUS_COLOURS.get(r.status, GREY), rx=2,
               title=f"{r.label}: {r.opens.isoformat()} to {r.due.isoformat()}, {r.status.replace('_', ' ')}")
        reach = max(x1, x0 + 3)
        if r.signed_off:
            sx, sy = x(r.signed_off), y + h / 2
            c.path(f"M{sx:.1f},{sy - 6:.1f} L{sx + 6:.1f},{sy:.1f} L{sx:.1f},{sy + 6:.1f} L{sx - 6:.1f},{sy:.1f} Z", INK,
                   title=f"signed off {r.signed_off.isoformat()}")
            reach = max(reach, sx + 6)
        if r.blocked and r.status != "upcoming":  # past the bar and the sign-off mark, never on them
            c.text(reach + 4, y + h / 2 + 4, "!", weight="bold", fill=RED, cls="value")
        y += h
    xo = x(on)
    c.line(xo, top - 4, xo, bottom + 4, INK, 1.5, dash="4 3")
    c.text(xo, bottom + 18, f"on {on.day} {on:%b %Y}", size=FONT - 1, anchor="middle", weight="bold")
    return c.render()


# --- bars against a target -------------------------------------------------------------------


@dataclass(frozen=True)
class TargetBar:
    label: str
    value: int
    target: int | None


def _target_note(r: TargetBar) -> str:
    return f"{r.value:,}" + (f" / {r.target:,} ({100 * r.value / r.target:.0f}%)" if r.target else "")


def target_bars(rows: list[TargetBar], title: str, unit: str = "responses") -> str:
    """One bar per row against its target tick; the value sits past both the bar's end and the tick."""
    left, top, row_h, size = 165, 36, 18, FONT - 1
    gap = 6  # between the end of the bar or the tick, whichever is further right, and the value
    width = 700
    right = max([_text_width(_target_note(r), FONT - 2) for r in rows] + [60]) + gap + 8
    maximum, ticks = _nice_scale(max([r.value for r in rows] + [r.target or 0 for r in rows] + [1]))
    plot = width - left - right
    labels = [_wrap(r.label, left - 12, size) for r in rows]
    heights = [max(row_h, _label_height(lines, size)) for lines in labels]
    bottom = top + sum(heights)
    height = bottom + 30
    c = Canvas(width, height, title, f"One bar per borough: {unit} received; the black tick is the borough's target.")
    c.legend(left, 14, [(GREEN, "at or above target"), (AMBER, "below target"), (GREY, "no target yet")])
    c.text(width - 10, 15, "┃ target", size=FONT - 1, anchor="end", fill=MUTED)
    for tick in ticks:
        xt = left + plot * tick / maximum
        c.line(xt, top - 4, xt, bottom, GRID)
        c.text(xt, bottom + 14, f"{tick:,.0f}", size=FONT - 2, anchor="middle", fill=MUTED)
    y = top
    for r, lines, h in zip(rows, labels, heights):
        below = r.target is not None and r.value < r.target
        colour = GREY if r.target is None else AMBER if below else GREEN
        c.lines(left - 8, y + h / 2, lines, size=size, weight="bold" if below else "normal")
        w = max(plot * r.value / maximum, 1.5)
        c.rect(left, y + h / 2 - 6, w, 12, colour,
               title=f"{r.label}: {r.value:,} {unit}" + (f" of a target of {r.target:,}" if r.target is not None else ""))
        end = left + w
        if r.target is not None:
            xt = left + plot * r.target / maximum
            c.line(xt, y + h / 2 - 8, xt, y + h / 2 + 8, INK, 2, cls="target")
            end = max(end, xt + 1)  # the tick is 2 wide, centred on xt
        c.text(end + gap, y + h / 2 + 3.5, _target_note(r), size=FONT - 2, fill=MUTED, cls="value")
        y += h
    return c.render()


# --- the London tile map -----------------------------------------------------------------------


@dataclass(frozen=True)
class Tile:
    fill: str
    value: str  # the short text under the abbreviation: "94%", "received", "suppressed"
    title: str = ""  # the tooltip: full name and value


def _ink_for(fill: str) -> str:
    red, green, blue = (int(fill[i:i + 2], 16) for i in (1, 3, 5))
    return INK if (0.299 * red + 0.587 * green + 0.114 * blue) > 150 else "#ffffff"


def tile_map(tiles: dict[str, Tile], legend: list[tuple[str, str]], title: str) -> str:
    size_w, size_h, gap, left, top = 82, 58, 4, 10, 34
    width = left * 2 + 8 * (size_w + gap)
    height = top + 7 * (size_h + gap) + 6
    c = Canvas(width, height, title, "London's 32 boroughs as tiles, each in a fixed place roughly where the borough lies.")
    c.legend(left, 14, legend)
    cx, cy = CITY_TILE
    c.rect(left + cx * (size_w + gap), top + cy * (size_h + gap), size_w, size_h, "#ffffff", stroke=GRID, dash="3 3", rx=4)
    c.text(left + cx * (size_w + gap) + size_w / 2, top + cy * (size_h + gap) + size_h / 2 + 4, "City", size=FONT - 2, anchor="middle", fill=GREY, italic=True)
    for code, (col, row) in TILE_POSITIONS.items():
        tile = tiles.get(code, Tile(LIGHT, "no data"))
        x, y = left + col * (size_w + gap), top + row * (size_h + gap)
        ink = _ink_for(tile.fill)
        c.rect(x, y, size_w, size_h, tile.fill, rx=4, title=tile.title or f"{borough_name(code)}: {tile.value}",
               stroke=GRID if tile.fill == LIGHT else None)
        c.text(x + size_w / 2, y + 22, BOROUGH_ABBREVIATIONS[code], size=FONT + 2, anchor="middle", fill=ink, weight="bold")
        c.text(x + size_w / 2, y + 41, tile.value, size=FONT - 1.5, anchor="middle", fill=ink)
    return c.render()


# --- representation ratios ------------------------------------------------------------------------


@dataclass(frozen=True)
class RatioRow:
    label: str
    ratio: float | None
    suppressed: bool
    baseline: bool = True  # False: the profile lacks the dimension, so there is no ratio


def ratio_chart(groups: list[tuple[str, list[RatioRow]]], title: str) -> str:
    left, right, top, row_h, head, size = 130, 60, 40, 19, 21, FONT - 1
    width = 700
    labels = [[_wrap(r.label, left - 12, size) for r in members] for _, members in groups]
    heights = [[max(row_h, _label_height(lines, size)) for lines in group] for group in labels]
    bottom = top + sum(sum(group) for group in heights) + len(groups) * head
    height = bottom + 30
    maximum = max([2.0] + [min(r.ratio, 3.0) for _, g in groups for r in g if r.ratio is not None])
    plot = width - left - right

    def x(v: float) -> float:
        return left + plot * min(v, maximum) / maximum

    c = Canvas(width, height, title, "Each group's share of respondents divided by its share of the population; 1 means heard in proportion.")
    c.legend(left, 14, [(AMBER, "under-represented (below 0.8)"), (GREY, "within 0.8–1.25"), (BLUE, "over-represented (above 1.25)")])
    y = top
    for tick in [0, 0.5, 1, 1.5, 2, 2.5, 3]:
        if tick <= maximum:
            c.line(x(tick), top, x(tick), bottom, INK if tick == 1 else GRID, 1.5 if tick == 1 else 1)
            c.text(x(tick), bottom + 14, f"{tick:g}", size=FONT - 2, anchor="middle", fill=MUTED)
    c.text(x(1), bottom + 26, "heard in proportion", size=FONT - 2, anchor="middle", fill=MUTED)
    for (dimension, members), group_labels, group_heights in zip(groups, labels, heights):
        c.text(8, y + 14, dimension, weight="bold")
        y += head
        for r, lines, h in zip(members, group_labels, group_heights):
            middle = y + h / 2
            c.lines(left - 8, middle, lines, size=size)
            if r.suppressed:
                c.text(x(1) + 6, middle + 4, "suppressed (<10)", size=FONT - 2, fill=MUTED, italic=True, cls="suppressed")
            elif not r.baseline or r.ratio is None:
                c.text(x(1) + 6, middle + 4, "no population baseline", size=FONT - 2, fill=MUTED, italic=True)
            else:
                colour = AMBER if r.ratio < 0.8 else BLUE if r.ratio > 1.25 else GREY
                x0, x1 = sorted((x(1), x(r.ratio)))
                c.rect(x0, middle - 5.5, max(x1 - x0, 2), 11, colour, title=f"{r.label}: {r.ratio:.2f}")
                c.circle(x(r.ratio), middle, 3.5, INK)
                c.text(max(x(r.ratio), x(1)) + 8, middle + 4, f"{r.ratio:.2f}", size=FONT - 2, fill=MUTED, cls="value")
            y += h
    return c.render()


# --- estimates with intervals ---------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    label: str
    value: float | None  # percentage 0–100
    low: float | None
    high: float | None
    suppressed: bool
    series: int = 0


def interval_chart(rows: list[Estimate], title: str, series_labels: list[str] | None = None, group_size: int = 1) -> str:
    """Dots with 95% interval bars on a 0–100% scale; rows of one label share a band when ``group_size`` > 1."""
    left, right, top, row_h, size = 230, 30, 40, 14 if group_size > 1 else 18, FONT - 1
    width = 700
    plot = width - left - right
    bands = [rows[i:i + group_size] for i in range(0, len(rows), group_size)]
    labels = [_wrap(members[0].label, left - 12, size) for members in bands]
    heights = [max(row_h * len(members) + 6, _label_height(lines, size)) for members, lines in zip(bands, labels)]
    bottom = top + sum(heights)
    height = bottom + 28

    def x(v: float) -> float:
        return left + plot * v / 100

    c = Canvas(width, height, title, "Each estimate as a dot with its 95% interval as a bar, on a 0–100% scale.")
    if series_labels and len(series_labels) > 1:
        c.legend(left, 14, [(SERIES[i % len(SERIES)], s) for i, s in enumerate(series_labels)])
    else:
        c.text(left, 15, "● estimate   ━ 95% interval", size=FONT - 1, fill=MUTED)
    for tick in range(0, 101, 10):
        c.line(x(tick), top - 4, x(tick), bottom, GRID)
        c.text(x(tick), bottom + 14, f"{tick}%", size=FONT - 2, anchor="middle", fill=MUTED)
    y = top
    for band, (members, lines, h) in enumerate(zip(bands, labels, heights)):
        if band % 2 == 0:
            c.rect(0, y, width, h, LIGHT)
        c.lines(left - 8, y + h / 2, lines, size=size)
        first = y + (h - row_h * len(members)) / 2
        for j, r in enumerate(members):
            yy = first + j * row_h + row_h / 2
            colour = SERIES[r.series % len(SERIES)]
            if r.suppressed or r.value is None:
                c.text(x(50), yy + 4, "suppressed (n<30)", size=FONT - 2, anchor="middle", fill=MUTED, italic=True, cls="suppressed")
                continue
            c.rect(x(r.low), yy - 1.5, max(x(r.high) - x(r.low), 1), 3, colour,
                   title=f"{r.label}: {r.value:.1f}% (95% interval {r.low:.1f}–{r.high:.1f}%)")
            c.circle(x(r.value), yy, 4, colour, title=f"{r.label}: {r.value:.1f}%")
            c.text(x(r.high) + 6, yy + 4, f"{r.value:.0f}%", size=FONT - 2.5, fill=MUTED, cls="value")
        y += h
    return c.render()


# --- evidence by source -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceRow:
    label: str
    values: tuple[float | None, ...]  # 0–1, one per source
    highlight: bool = False


def source_bars(rows: list[SourceRow], sources: list[str], title: str) -> str:
    left, right, top, size = 190, 50, 40, FONT - 1
    width = 700
    bar_h = 7
    plot = width - left - right
    maximum, ticks = _nice_scale(max([v for r in rows for v in r.values if v is not None] + [0.01]), 5)
    labels = [_wrap(r.label, left - 12, size) for r in rows]
    heights = [max(bar_h * len(sources) + 10, _label_height(lines, size)) for lines in labels]
    bottom = top + sum(heights)
    height = bottom + 28
    c = Canvas(width, height, title, "For each theme, one bar per source of evidence on a common 0–1 scale.")
    c.legend(left, 14, [(SERIES[i], s) for i, s in enumerate(sources)])
    for tick in ticks:
        xt = left + plot * tick / maximum
        c.line(xt, top - 4, xt, bottom, GRID)
        c.text(xt, bottom + 14, f"{tick:g}", size=FONT - 2, anchor="middle", fill=MUTED)
    y = top
    for i, (r, lines, h) in enumerate(zip(rows, labels, heights)):
        if i % 2 == 0:
            c.rect(0, y, width, h, LIGHT)
        c.lines(left - 8, y + h / 2, lines, size=size, weight="bold" if r.highlight else "normal")
        first = y + (h - bar_h * len(sources)) / 2
        for j, value in enumerate(r.values):
            if value is None:
                continue
            w = plot * value / maximum
            c.rect(left, first + j * bar_h, max(w, 1), bar_h - 1.5, SERIES[j], title=f"{r.label}, {sources[j]}: {value:.3f}")
        if r.values[-1] is not None:
            c.text(left + plot * max(v or 0 for v in r.values) / maximum + 6, y + h / 2 + 4,
                   f"{r.values[-1]:.2f}", size=FONT - 2, fill=MUTED, cls="value")
        y += h
    return c.render()
