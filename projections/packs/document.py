"""The pack as a committee paper: sections with a summary, numbered figures and tables, print CSS.

One HTML file, self-contained: the CSS is inline, the charts are inline SVG,
the only fonts are the reader's own (sans-serif), there is no script and no
address outside the file (links are to the file's own sections). Every figure
and table carries the (on, as_of) of the build its numbers come from. A pack of
synthetic data says so on every printed page (the page's margin boxes: top
right and the footer), in a mark that stays in view on screen, on the cover and
under every figure and table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from html import escape

from projections.packs.labels import day, instant

# A table with more body rows than this may run over a page: it breaks between rows and repeats its
# header row on each page. A shorter one (every borough table: 32 or 33 rows) is kept whole with its
# caption, so no page holds only a table's tail.
LONG_TABLE_ROWS = 34


def e(text: object) -> str:
    return escape(str(text), quote=True)


@dataclass(frozen=True)
class Provenance:
    """Where a figure's numbers come from: the snapshot's build of one cycle."""

    cycle: str
    on: date
    as_of: datetime
    synthetic: bool

    def text(self, source: str) -> str:
        words = f"Source: {source}, cycle {self.cycle}; built at on = {day(self.on)}, as_of = {instant(self.as_of)}."
        return words + (" Synthetic data." if self.synthetic else "")


@dataclass
class Cell:
    text: str
    cls: str = ""  # "num", "suppressed", "bad", "good", "muted"
    style: str = ""


@dataclass
class Table:
    caption: str
    columns: list[tuple[str, str]]  # (heading, "num" | "")
    rows: list[list[Cell | str]]
    provenance: Provenance
    source: str
    note: str = ""
    compact: bool = False


@dataclass
class Figure:
    caption: str
    svg: str
    provenance: Provenance
    source: str
    note: str = ""
    wide: bool = False


@dataclass
class Section:
    key: str
    title: str
    summary: list[str]
    blocks: list[Table | Figure | str] = field(default_factory=list)  # str: a paragraph of plain text


@dataclass
class Pack:
    title: str
    subtitle: str
    cycle: str
    stage: str
    on: date
    as_of: datetime
    synthetic: bool
    sections: list[Section]
    footer: str


def render(pack: Pack) -> str:
    figures = tables = 0
    body: list[str] = []
    for number, section in enumerate(pack.sections, start=1):
        parts = [f'<section class="section" id="{e(section.key)}" data-section="{e(section.key)}">',
                 f"<h2><span class=\"number\">{number}.</span> {e(section.title)}</h2>"]
        parts += [f'<p class="summary">{e(p)}</p>' for p in section.summary]
        for block in section.blocks:
            if isinstance(block, Figure):
                figures += 1
                parts.append(_figure(block, figures))
            elif isinstance(block, Table):
                tables += 1
                parts.append(_table(block, tables))
            else:
                parts.append(f"<p>{e(block)}</p>")
        parts.append("</section>")
        body.append("\n".join(parts))
    contents = "".join(
        f'<li><a href="#{e(s.key)}">{e(s.title)}</a></li>' for s in pack.sections
    )
    synthetic = (
        '<p class="synthetic-banner" role="note"><strong>Synthetic data.</strong> Every figure in this pack is built from '
        "generated events for demonstration and testing. It describes no real consultation, survey, audit or person.</p>"
        if pack.synthetic else ""
    )
    # on screen, a mark that stays in view however far one scrolls; in print, the page's margin boxes (_css)
    mark = '<div class="synthetic-mark" role="note">SYNTHETIC DATA</div>' if pack.synthetic else ""
    return f"""<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="cycle" content="{e(pack.cycle)}">
<meta name="stage" content="{e(pack.stage)}">
<meta name="on" content="{e(pack.on.isoformat())}">
<meta name="as_of" content="{e(pack.as_of.isoformat())}">
<meta name="synthetic" content="{'true' if pack.synthetic else 'false'}">
<title>{e(pack.title)}</title>
<style>{_css(pack)}</style>
</head>
<body>
{mark}
<header class="cover">
<p class="org">Police Authority · Planning Panel · Briefing pack</p>
<h1>{e(pack.title)}</h1>
<p class="subtitle">{e(pack.subtitle)}</p>
{synthetic}
<p class="provenance">Built from the published snapshot of the evidence pipeline at <strong>on = {e(day(pack.on))}</strong>
(the date the timetable is read at) and <strong>as_of = {e(instant(pack.as_of))}</strong> (what was known then).
Small cells stay suppressed throughout: a suppressed cell shows the word, never a number.</p>
<nav class="contents"><h2>Contents</h2><ol>{contents}</ol></nav>
</header>
<main>
{chr(10).join(body)}
</main>
</body>
</html>
"""


def _figure(figure: Figure, number: int) -> str:
    note = f'<span class="note">{e(figure.note)}</span> ' if figure.note else ""
    return (
        f'<figure class="figure{" wide" if figure.wide else ""}" data-on="{e(figure.provenance.on.isoformat())}" '
        f'data-as-of="{e(figure.provenance.as_of.isoformat())}">'
        f"{figure.svg}"
        f'<figcaption><strong>Figure {number}.</strong> {e(figure.caption)} {note}'
        f'<span class="provenance">{e(figure.provenance.text(figure.source))}</span></figcaption></figure>'
    )


def _cell(cell: Cell | str, tag: str = "td") -> str:
    if isinstance(cell, str):
        return f"<{tag}>{e(cell)}</{tag}>"
    klass = f' class="{e(cell.cls)}"' if cell.cls else ""
    style = f' style="{e(cell.style)}"' if cell.style else ""
    return f"<{tag}{klass}{style}>{e(cell.text)}</{tag}>"


def _table(table: Table, number: int) -> str:
    numeric = ' class="num"'
    head = "".join(f'<th scope="col"{numeric if kind == "num" else ""}>{e(h)}</th>' for h, kind in table.columns)
    rows = []
    for row in table.rows:
        cells = []
        for (heading, kind), cell in zip(table.columns, row):
            if isinstance(cell, str) and kind == "num":
                cell = Cell(cell, "num")
            cells.append(_cell(cell))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    if not rows:
        rows.append(f'<tr><td colspan="{len(table.columns)}" class="muted">No rows.</td></tr>')
    note = f'<p class="table-note">{e(table.note)}</p>' if table.note else ""
    wrap = "table-wrap long" if len(table.rows) > LONG_TABLE_ROWS else "table-wrap"
    return (
        f'<div class="{wrap}"><table class="data{" compact" if table.compact else ""}" '
        f'data-on="{e(table.provenance.on.isoformat())}" data-as-of="{e(table.provenance.as_of.isoformat())}">'
        f"<caption><strong>Table {number}.</strong> {e(table.caption)}"
        f'<span class="provenance">{e(table.provenance.text(table.source))}</span></caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{note}</div>"
    )


def _css(pack: Pack) -> str:
    footer = pack.footer.replace('"', "'")
    synthetic = '@top-right { content: "SYNTHETIC DATA"; color: #b3261e; font: bold 8pt sans-serif; }' if pack.synthetic else ""
    return f"""
:root {{ --ink: #1d2733; --muted: #5f6b7a; --rule: #d5dae1; --navy: #1f3a5f; --light: #eef1f5; }}
* {{ box-sizing: border-box; }}
html {{ -webkit-print-color-adjust: exact; print-color-adjust: exact; }}
body {{ margin: 0 auto; max-width: 200mm; padding: 12mm 10mm 20mm; color: var(--ink); background: #fff;
  font: 10.5pt/1.45 "Liberation Sans", Arial, Helvetica, sans-serif; }}
h1 {{ font-size: 21pt; line-height: 1.2; color: var(--navy); margin: 2mm 0 2mm; }}
h2 {{ font-size: 14pt; color: var(--navy); border-bottom: 2px solid var(--navy); padding-bottom: 1mm; margin: 0 0 3mm; }}
h2 .number {{ color: var(--muted); }}
.org {{ text-transform: uppercase; letter-spacing: .08em; font-size: 8.5pt; color: var(--muted); margin: 0; }}
.subtitle {{ font-size: 12pt; margin: 0 0 3mm; }}
.synthetic-banner {{ border: 2px solid #b3261e; background: #fdf1f0; color: #7a1b15; padding: 2mm 3mm; margin: 3mm 0; }}
.synthetic-mark {{ position: fixed; top: 0; right: 0; z-index: 10; background: #b3261e; color: #fff;
  font: bold 8pt sans-serif; letter-spacing: .06em; padding: 1mm 2.5mm; }}
.provenance {{ color: var(--muted); font-size: 8.5pt; }}
header .provenance {{ font-size: 9.5pt; }}
nav.contents h2 {{ font-size: 11pt; border: 0; margin: 3mm 0 1mm; }}
nav.contents ol {{ margin: 0; padding-left: 6mm; columns: 2; font-size: 9.5pt; }}
nav.contents a {{ color: var(--navy); text-decoration: none; }}
.section {{ margin-top: 9mm; }}
p.summary {{ margin: 0 0 2.5mm; }}
figure {{ margin: 4mm 0 5mm; break-inside: avoid; page-break-inside: avoid; }}
figure svg {{ display: block; max-width: 100%; height: auto; }}
svg text {{ font-family: "Liberation Sans", Arial, Helvetica, sans-serif; }}
figcaption {{ font-size: 9pt; margin-top: 1.5mm; }}
figcaption .provenance {{ display: block; }}
.table-wrap {{ margin: 3mm 0 5mm; }}
table.data {{ border-collapse: collapse; width: 100%; font-size: 8.8pt; }}
table.data.compact {{ font-size: 8pt; }}
table.data caption {{ caption-side: top; text-align: left; font-size: 9pt; padding-bottom: 1.5mm; }}
table.data caption .provenance {{ display: block; font-weight: normal; }}
table.data th {{ text-align: left; border-bottom: 1.5px solid var(--ink); padding: 1mm 1.5mm; vertical-align: bottom; }}
table.data td {{ border-bottom: 1px solid var(--rule); padding: .8mm 1.5mm; vertical-align: top; }}
table.data tbody tr:nth-child(even) td {{ background: #f7f8fa; }}
table.data .num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
table.data th.num {{ white-space: normal; }}
table.data.compact th, table.data.compact td {{ padding: .6mm 1mm; }}
td.suppressed {{ color: var(--muted); font-style: italic; white-space: nowrap; }}
td.suppressed-groups {{ color: var(--muted); font-style: italic; }}
td.muted, .muted {{ color: var(--muted); }}
td.strong {{ font-weight: bold; }}
td.bad {{ color: #b3261e; font-weight: bold; }}
td.good {{ color: #2e7d4f; }}
td.mono {{ font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 7.5pt; word-break: break-all; }}
.table-note {{ font-size: 8.5pt; margin: 1mm 0 0; }}
/* Printing: a figure or a table stays whole with its caption; a long table breaks between rows and
   repeats its header row; a heading or caption is never left at the foot of a page. */
thead {{ display: table-header-group; }}
tr {{ break-inside: avoid; page-break-inside: avoid; }}
.table-wrap {{ break-inside: avoid; page-break-inside: avoid; }}
.table-wrap.long {{ break-inside: auto; page-break-inside: auto; }}
h1, h2, h3, table.data caption {{ break-after: avoid; page-break-after: avoid; }}
table.data caption {{ break-inside: avoid; }}
p {{ orphans: 3; widows: 3; }}
@page {{ size: A4; margin: 16mm 14mm 18mm;
  @bottom-left {{ content: "{footer}"; color: #5f6b7a; font: 8pt sans-serif; }}
  @bottom-right {{ content: "Page " counter(page) " of " counter(pages); color: #5f6b7a; font: 8pt sans-serif; }}
  {synthetic}
}}
@media print {{
  body {{ max-width: none; padding: 0; font-size: 9.5pt; }}
  figure svg {{ max-width: 165mm; }}
  figure.wide svg {{ max-width: 178mm; }}
  h1 {{ font-size: 19pt; }}
  .section {{ margin-top: 8mm; }}
  a {{ color: inherit; text-decoration: none; }}
  .synthetic-mark {{ display: none; }}
}}
"""
