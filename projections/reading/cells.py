"""Text from events, made safe to show in a terminal or open in a spreadsheet.

Event text is written by senders we do not control. Two things in it can
attack the person reading an output, not the pipeline:

* **Control characters.** An ANSI escape (``ESC [ …``) printed to a terminal
  can recolour, hide or rewrite what is on screen; a C0 character makes an
  xlsx file unwritable (XML 1.0 cannot hold it). :func:`visible` writes every
  control character except TAB, LF and CR (C0, DEL and C1) as its escape,
  ``\\x1b``, so the reader sees that it was there and which it was.
* **Formulas.** A spreadsheet runs a cell that starts with ``=``, ``+``,
  ``-``, ``@``, TAB or CR (or their full-width forms) as a formula: a
  ``group_id`` of ``=HYPERLINK(…)`` would become a live link. Following the
  OWASP rules for CSV injection, :func:`spreadsheet_text` puts an apostrophe
  before such a text cell. Only text is touched: a number stays a number, so
  a genuine ``-3`` is still ``-3``.

Data formats (Parquet, JSON) carry values intact; docs/decisions.md
("What an output shows") says which output does what.
"""

from __future__ import annotations

import re

# C0 controls but TAB, LF and CR; DEL; the C1 controls (CSI 0x9b starts an escape on some terminals too).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Every control character, TAB, LF and CR included: for one-line terminal cells.
_ANY_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def visible(text: str) -> str:
    """``text`` with every control character but TAB, LF and CR written as its ``\\xNN`` escape."""
    return _CONTROL.sub(_escape, text)


def one_line(text: str) -> str:
    """``text`` for one line of a terminal: line breaks become spaces, every other control character its escape."""
    return _ANY_CONTROL.sub(_escape, text.replace("\r\n", " ").replace("\n", " "))


def is_formula_like(text: str) -> bool:
    """Whether a spreadsheet would read this text as a formula."""
    return text.startswith(FORMULA_STARTS)


def spreadsheet_text(text: str) -> str:
    """A text cell for a CSV file: control characters escaped, and an apostrophe before a formula-like start."""
    text = visible(text)
    return "'" + text if is_formula_like(text) else text
