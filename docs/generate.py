"""Write the generated sections of ``docs/`` from the code they describe.

``python -m docs.generate`` rewrites every block between a pair of markers::

    <!-- generated: NAME -->
    ...
    <!-- end generated: NAME -->

and leaves the prose around them alone. ``tests/test_docs.py`` fails when a
committed page differs from what this module renders, so a field, a
vocabulary, a topic, a table's column or a command option cannot change
without its page.

What is generated, and from where:

- ``events.md``: the envelope and every payload, from the JSON Schemas the
  models export (``events.contract.json_schema``); the vocabularies
  (``events.contract.vocabulary``); the topics (``events.routing``, with retention
  from the topic design in ``pipelines``); the limits (constants of
  ``events.contract.models`` and ``events.contract.validation``).
- ``cli.md``: every subcommand and option, from the ``planning`` parser.
- ``tables.md``: the default timetable (``projections.building.timetable``); for each
  table, what one row is, its columns with their types and meanings, and its
  checks, from the table's schema file ``projections/sql/<table>.yml`` (read
  by ``projections.tables``), the same file that gives Dagster its column
  schema and the exports and packs their notes. A column's meaning is
  written there, once; ``tables.md`` keeps only the prose that explains a
  formula or rule at more length.

The product never imports this module.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from events.contract import forms
from events.contract import vocabulary as v
from events.contract.json_schema import schema_for
from events.contract.models import CURRENT_SCHEMA_VERSION, EVENT_TYPES, FUTURE_TOLERANCE
from events.routing import DEAD_LETTER_FAMILY, DEFAULT_PREFIX, FAMILIES, collector_topic, dead_letter_topic, sender_topic
from events.contract.validation import MAX_EVENT_BYTES, MAX_REASONS
from projections.tables import ALL_TABLES, PANEL_TABLES, PanelTable

DOCS_DIR = Path(__file__).parent
MARKER = re.compile(
    r"(?P<open><!-- generated: (?P<name>[\w.:/-]+) -->\n)(?P<body>.*?)(?P<close><!-- end generated: (?P=name) -->)",
    re.DOTALL,
)

Renderer = Callable[[], str]


# --- events.md ----------------------------------------------------------------

# A closed list found in a schema is named after its vocabulary, not spelled out.
_DEMOGRAPHIC_GROUPS = tuple(dict.fromkeys(g for groups in v.DEMOGRAPHIC_DIMENSIONS.values() for g in groups))
VOCABULARIES: dict[str, tuple[str, ...]] = {
    "borough": v.BOROUGHS,
    "scope": (v.LONDON, *v.BOROUGHS),
    "theme": v.THEMES,
    "channel": v.CHANNELS,
    "age_band": v.AGE_BANDS,
    "gender": v.GENDERS,
    "ethnic_group": v.ETHNIC_GROUPS,
    "disability": v.DISABILITY,
    "demographic group": _DEMOGRAPHIC_GROUPS,
    "stage": v.STAGES,
    "body": v.BODIES,
    "indicator": v.INDICATORS,
}
_VOCABULARY_OF: dict[tuple[Any, ...], str] = {values: name for name, values in VOCABULARIES.items()}


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _without_null(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The schema with its ``null`` alternative removed, and whether there was one."""
    options = schema.get("anyOf")
    if options and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        return (rest[0] if len(rest) == 1 else {"anyOf": rest}), True
    return schema, False


def _range(low: Any, high: Any, unit: str) -> str:
    if low is not None and high is not None:
        return f"{_number(low)} {unit}" if low == high else f"{_number(low)}–{_number(high)} {unit}"
    if high is not None:
        return f"at most {_number(high)} {unit}"
    return f"at least {_number(low)} {unit}" if low is not None else ""


def _type_of(schema: dict[str, Any], root: dict[str, Any]) -> str:
    """A short, readable type: ``theme``, ``string (1–200 characters)``, ``list of theme (at most 3 items)``."""
    schema = _resolve(schema, root)
    if "oneOf" in schema or "anyOf" in schema:
        return " or ".join(_type_of(option, root) for option in schema.get("oneOf") or schema["anyOf"])
    if "const" in schema:
        return f"`{_json(schema['const'])}`"
    if "enum" in schema:
        name = _VOCABULARY_OF.get(tuple(schema["enum"]))
        return f"one {name}" if name else "one of " + ", ".join(f"`{_json(e)}`" for e in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        items = _resolve(schema["items"], root)
        vocabulary = _VOCABULARY_OF.get(tuple(items.get("enum", ())))
        if items.get("type") == "object" and "properties" in items:
            inner = "objects"
        else:
            inner = f"{vocabulary}s" if vocabulary else _type_of(items, root)
        count = _range(schema.get("minItems"), schema.get("maxItems"), "items")
        count = count.replace("least 1 items", "least 1 item")
        return f"list of {inner}" + (f" ({count})" if count else "")
    if kind == "object" and "propertyNames" in schema:
        keys = _type_of(schema["propertyNames"], root).removeprefix("one ")
        return f"object: {keys} → {_type_of(schema['additionalProperties'], root)}"
    if kind == "object":
        return "object"
    if kind == "string":
        written = {"uuid": "UUID (8-4-4-4-12)", "date": "date (YYYY-MM-DD, see [limits](#limits))",
                 "date-time": "RFC 3339 date-time with offset (see [limits](#limits))"}
        text = written.get(schema.get("format", ""), "string")
        details = [_range(schema.get("minLength"), schema.get("maxLength"), "characters")]
        if "pattern" in schema and text == "string":  # a format's pattern is its written form, told in the limits
            details.append(f"matching `{schema['pattern']}`")
        details = [d for d in details if d]
        return text + (f" ({', '.join(details)})" if details else "")
    if kind in ("integer", "number"):
        details = []
        if "minimum" in schema and schema.get("maximum") == schema["minimum"]:
            return f"{kind} ({_number(schema['minimum'])})"
        if "exclusiveMinimum" in schema:
            details.append(f"> {_number(schema['exclusiveMinimum'])}")
        if "minimum" in schema:
            details.append(f"≥ {_number(schema['minimum'])}")
        if "maximum" in schema:
            details.append(f"≤ {_number(schema['maximum'])}")
        return kind + (f" ({', '.join(details)})" if details else "")
    return str(kind)


def _json(value: Any) -> str:
    return json.dumps(value)


def _field_rows(schema: dict[str, Any], root: dict[str, Any], prefix: str = "") -> list[tuple[str, str, str]]:
    """(path, type, required) for every field of an object, nested fields after their parent."""
    rows: list[tuple[str, str, str]] = []
    schema = _resolve(schema, root)
    required = set(schema.get("required", ()))
    for name, field in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        inner, nullable = _without_null(field)
        kind = _type_of(inner, root) + (", or null" if nullable else "")
        if name in required:
            presence = "required"
        elif "default" in field and field["default"] not in (None, [], {}):
            presence = f"optional (default `{_json(field['default'])}`)"
        else:
            presence = "optional"
        rows.append((path, kind, presence))
        target = _resolve(inner, root)
        if target.get("type") == "object" and "properties" in target:
            rows.extend(_field_rows(target, root, f"{path}."))
        elif target.get("type") == "array":
            items = _resolve(target["items"], root)
            if items.get("type") == "object" and "properties" in items:
                rows.extend(_field_rows(items, root, f"{path}[]."))
    return rows


def _cell(text: str) -> str:
    """Table cell text: pipes escaped, and <placeholders> outside code shown rather than taken for HTML."""
    parts = text.replace("|", "\\|").split("`")
    return "`".join(part if i % 2 else part.replace("<", "&lt;").replace(">", "&gt;") for i, part in enumerate(parts))


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def envelope_fields() -> str:
    schema = schema_for(EVENT_TYPES[0])
    rows = []
    for path, kind, presence in _field_rows(schema, schema):
        if path.startswith("payload."):
            continue
        if path == "event_type":
            kind = "one event type (below)"
        elif path == "payload":
            kind = "object, per event type (below)"
        rows.append((f"`{path}`", kind, presence))
    return _table(("field", "type", "presence"), rows)


def payload_fields(event_type: str) -> str:
    schema = schema_for(event_type)
    rows = [(f"`{p}`", k, r) for p, k, r in _field_rows(schema["properties"]["payload"], schema)]
    if not rows:
        return "The payload is an empty object or has no fields of its own.\n"
    return _table(("payload field", "type", "presence"), rows)


def vocabularies() -> str:
    lines = []
    for name, values in VOCABULARIES.items():
        if name == "borough":
            lines.append(
                f"- **borough**: the ONS codes `{v.BOROUGHS[0]}` to `{v.BOROUGHS[-1]}` of the 32 London boroughs "
                f"(`{v.CITY_OF_LONDON}`, the City of London, is rejected: it has its own police force)"
            )
            lines.extend(f"  - `{code}` {v.BOROUGH_NAMES[code]}" for code in v.BOROUGHS)
        elif name == "scope":
            lines.append(f"- **scope**: `{v.LONDON}` (the whole of London) or a borough code")
        elif name == "demographic group":
            lines.append("- **demographic group**: any value of age_band, gender, ethnic_group or disability")
        else:
            lines.append(f"- **{name}**: " + ", ".join(f"`{value}`" for value in values))
    return "\n".join(lines) + "\n"


def topics() -> str:
    # The retention of each topic is the streaming design's decision, not the contract's;
    # it is read from there so that this page cannot disagree with the broker.
    from pipelines.streaming.topics import FAMILY_POLICY

    rows = []
    for family, types in FAMILIES.items():
        days, personal, _ = FAMILY_POLICY[family]
        topic = f"`{sender_topic('{sender}', types[0], DEFAULT_PREFIX)}`, `{collector_topic(types[0], DEFAULT_PREFIX)}`"
        rows.append((topic, ", ".join(f"`{t}`" for t in types), f"{days} days", "yes" if personal else "no"))
    days, personal, _ = FAMILY_POLICY[DEAD_LETTER_FAMILY]
    rows.append((f"`{dead_letter_topic(DEFAULT_PREFIX)}`", "rejected messages with their reasons (written by the pipeline)",
                 f"{days} days", "yes" if personal else "no"))
    return _table(("topic", "event types", "kept on the broker", "personal data"), rows)


def limits() -> str:
    minutes = int(FUTURE_TOLERANCE.total_seconds() // 60)
    first, last = forms.FIRST_PLAN_YEAR, forms.LAST_PLAN_YEAR
    return "\n".join([
        f"- one event (one line, one message) is at most {MAX_EVENT_BYTES:,} bytes ({MAX_EVENT_BYTES // 1024 // 1024} MiB)",
        f"- `schema_version` is at most {CURRENT_SCHEMA_VERSION}: a newer version is rejected, never guessed at",
        f"- `occurred_at` may be at most {minutes} minutes ahead of the receiving clock",
        f"- a date-time (`occurred_at`) is RFC 3339 exactly: `{forms.DATE_TIME_EXAMPLE}` or `2027-01-15T10:00:00.25+01:00`;"
        " upper-case `T` and `Z`, seconds always written, at most 6 fractional digits, an offset always;"
        " no Unix seconds, bare date, space, `24:00` or leap second",
        f"- a date (`period_start`, `opens_on`…) is written `YYYY-MM-DD`; dates and date-times lie in the years"
        f" {forms.FIRST_YEAR} to {forms.LAST_YEAR} as written",
        f"- a cycle is `{first}-{(first + 1) % 100:02d}` to `{last}-{(last + 1) % 100:02d}`, in ASCII digits",
        "- an id (`event_id`, `target_event_id`) is a UUID written 8-4-4-4-12 with hyphens, in either case;"
        " not in braces, not `urn:uuid:`, not 32 bare digits",
        f"- a count (responses, crimes, people, attendance) is at most {forms.MAX_COUNT:,}; a survey weight at most"
        f" {forms.MAX_WEIGHT:,}; a meeting's cost at most £{forms.MAX_COST_GBP:,}; numbers are finite (no NaN or Infinity)",
        f"- a rejection gives at most {MAX_REASONS} reasons (then how many more), each repeating at most"
        f" {forms.MAX_ECHO} characters of a value sent",
    ]) + "\n"


EVENT_SECTIONS: dict[str, Renderer] = {
    "envelope": envelope_fields,
    "vocabularies": vocabularies,
    "limits": limits,
    "topics": topics,
    **{f"payload:{t}": (lambda t=t: payload_fields(t)) for t in EVENT_TYPES},
}


# --- tables.md ----------------------------------------------------------------

_EXAMPLE_CYCLE = "2027-28"


def timetable() -> str:
    """The default windows, written in P (the plan year) and Y (the year before), with one cycle as example."""
    from projections.building.timetable import default_windows

    year_before = int(_EXAMPLE_CYCLE[:4]) - 1

    def relative(day: date) -> str:
        return ("Y" if day.year == year_before else "P") + f"-{day:%m-%d}"

    rows = []
    for stage, _, opens_on, due_on in default_windows(_EXAMPLE_CYCLE):
        rows.append((f"`{stage}`", relative(opens_on), relative(due_on),
                     f"{opens_on.day} {opens_on:%b %Y} – {due_on.day} {due_on:%b %Y}"))
    return _table(("stage", "opens", "due", f"in cycle {_EXAMPLE_CYCLE}"), rows)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def table_section(table: PanelTable) -> str:
    """What one row of a table is, its columns and its checks, from its schema file."""
    text = _one_line(table.description) + "\n\n"
    text += _table(("column", "type", "meaning"),
                   [(f"`{c.name}`", c.type, _one_line(c.description)) for c in table.columns])
    if table.checks:
        text += "\nChecked before each publication:\n\n" + _table(
            ("check", "rule"), [(f"`{c.name}`", _one_line(c.description)) for c in table.checks])
    return text


def build_checks() -> str:
    """Each Panel table's checks by name, linked to the table's section, where they are explained."""
    return "\n".join(
        f"- [`{name}`](#{name}): " + ", ".join(f"`{c.name}`" for c in table.checks)
        for name, table in PANEL_TABLES.items()
    ) + "\n"


TABLE_SECTIONS: dict[str, Renderer] = {
    "timetable": timetable,
    **{f"table:{name}": (lambda t=table: table_section(t)) for name, table in ALL_TABLES.items()},
    "checks": build_checks,
}


# --- cli.md -----------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each subcommand, in the order they were added."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            found += [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return found


def _argument(action: argparse.Action) -> tuple[str, str]:
    if action.option_strings:
        name = ", ".join(action.option_strings)
        if action.nargs != 0:
            name += " " + (action.metavar or action.dest.upper())
    else:
        name = action.metavar or action.dest
        if action.nargs in ("+", "*"):
            name += "…"
    details = []
    if not action.option_strings and not action.help:
        details.append("required, one or more" if action.nargs == "+" else "required")
    if action.help:
        details.append(action.help % {"default": action.default, "prog": ""})
    if action.choices:
        details.append("one of " + ", ".join(f"`{c}`" for c in action.choices))
    if action.required and action.option_strings:
        details.append("required")
    if action.default not in (None, False, argparse.SUPPRESS) and action.nargs != 0 and action.option_strings:
        if "default" not in (action.help or ""):
            details.append(f"default `{action.default}`")
    return f"`{name}`", "; ".join(details)


def _command_lines(path: str, summary: str, parser: argparse.ArgumentParser, level: int) -> str:
    lines = [f"{'#' * level} `{path}`", ""]
    description = parser.description or summary
    if description:
        sentence = description[0].upper() + description[1:]
        lines += [sentence if sentence.endswith(".") else sentence + ".", ""]
    arguments = [
        _argument(a) for a in parser._actions
        if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
    ]
    if arguments:
        lines += [_table(("argument", "meaning"), arguments)]
    return "\n".join(lines).rstrip("\n") + "\n"


def _command_renderers(
    path: str, parser: argparse.ArgumentParser, level: int
) -> dict[str, Renderer]:
    """One section per command and sub-command, named ``command:ingest``, ``command:broker/start``."""
    sections: dict[str, Renderer] = {}
    for name, help_text, sub in _subcommands(parser):
        sub_path = f"{path} {name}"
        key = "command:" + sub_path.removeprefix("planning ").replace(" ", "/")
        sections[key] = lambda p=sub_path, h=help_text, s=sub, l=level: _command_lines(p, h, s, l)
        sections.update(_command_renderers(sub_path, sub, level + 1))
    return sections


def cli_sections() -> dict[str, Renderer]:
    from pipelines.cli.main import _parser

    return _command_renderers("planning", _parser(), 3)


# --- writing ------------------------------------------------------------------

PAGES: dict[str, Callable[[], dict[str, Renderer]]] = {
    "events.md": lambda: EVENT_SECTIONS,
    "tables.md": lambda: TABLE_SECTIONS,
    "cli.md": cli_sections,
}


class MissingMarkers(ValueError):
    pass


def fill(text: str, sections: dict[str, Renderer]) -> str:
    """``text`` with every generated block rewritten; each section must have its markers, once."""
    found = [m.group("name") for m in MARKER.finditer(text)]
    missing = sorted(set(sections) - set(found))
    unknown = sorted(set(found) - set(sections))
    repeated = sorted({name for name in found if found.count(name) > 1})
    if missing or unknown or repeated:
        raise MissingMarkers(f"markers missing {missing}, unknown {unknown}, repeated {repeated}")
    return MARKER.sub(lambda m: m.group("open") + sections[m.group("name")]() + m.group("close"), text)


def rendered(directory: Path = DOCS_DIR) -> dict[Path, str]:
    """page path -> the page as it should be committed."""
    return {directory / page: fill((directory / page).read_text(), sections()) for page, sections in PAGES.items()}


def write(directory: Path = DOCS_DIR) -> list[Path]:
    changed = []
    for path, text in rendered(directory).items():
        if path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    return changed


if __name__ == "__main__":
    for path in write():
        print(f"rewrote {path}")
    sys.exit(0)
