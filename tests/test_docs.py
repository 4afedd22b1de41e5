"""The docs in `docs/` tell the truth about the code, and stay inside the repository.

- the generated blocks equal what ``python -m docs.generate`` writes now;
- every example event in ``docs/events.md`` passes the contract;
- every relative link of the README and of ``docs/`` leads to a file or a
  heading in the repository, and nothing points at documents outside it.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from docs.generate import DOCS_DIR, PAGES, MissingMarkers, fill, rendered
from events.contract.models import EVENT_TYPES
from events.contract.validation import Accepted, verdict

ROOT = DOCS_DIR.parent
PAGES_WITH_LINKS = [ROOT / "README.md", *sorted(DOCS_DIR.glob("*.md"))]
# The examples are dated 2026; judge "not in the future" against a fixed clock after them.
RECEIVED_AT = datetime(2027, 1, 1, tzinfo=timezone.utc)

_FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*)$", re.MULTILINE)


def test_generated_sections_match_the_code() -> None:
    drifted = [path.name for path, text in rendered().items() if path.read_text() != text]
    assert not drifted, f"docs drifted from the code: {drifted}; run `python -m docs.generate` and commit"


def test_every_page_with_generated_sections_exists() -> None:
    assert {path.name for path in rendered()} == set(PAGES)


def test_fill_rewrites_a_stale_block_and_keeps_the_prose() -> None:
    text = "prose before\n<!-- generated: x -->\nstale\n<!-- end generated: x -->\nprose after\n"
    assert fill(text, {"x": lambda: "fresh\n"}) == (
        "prose before\n<!-- generated: x -->\nfresh\n<!-- end generated: x -->\nprose after\n"
    )


@pytest.mark.parametrize(
    "text",
    [
        "no markers at all\n",
        "<!-- generated: x -->\n<!-- end generated: x -->\n<!-- generated: x -->\n<!-- end generated: x -->\n",
        "<!-- generated: x -->\n<!-- end generated: x -->\n<!-- generated: y -->\n<!-- end generated: y -->\n",
    ],
    ids=["missing", "repeated", "unknown"],
)
def test_fill_refuses_a_page_whose_markers_do_not_match_its_sections(text: str) -> None:
    with pytest.raises(MissingMarkers):
        fill(text, {"x": lambda: ""})


def _example_events() -> list[str]:
    return [block.removeprefix("```json\n").removesuffix("```") for block in _FENCE.findall(
        (DOCS_DIR / "events.md").read_text()) if block.startswith("```json\n")]


def test_every_example_event_passes_the_contract() -> None:
    verdicts = {example: verdict(example.encode(), received_at=RECEIVED_AT) for example in _example_events()}
    broken = {example: judged.reasons for example, judged in verdicts.items() if not isinstance(judged, Accepted)}
    assert not broken, broken


def test_every_event_type_has_an_example() -> None:
    shown = {json.loads(example)["event_type"] for example in _example_events()}
    assert shown == set(EVENT_TYPES)


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _links(page: Path) -> list[str]:
    return _LINK.findall(_FENCE.sub("", page.read_text()))


def _broken(page: Path, target: str) -> str | None:
    if re.match(r"^[a-z]+:", target):  # https:, mailto: …
        return None
    path_part, _, anchor = target.partition("#")
    destination = (page.parent / path_part).resolve() if path_part else page
    if not destination.is_relative_to(ROOT.resolve()):
        return "outside the repository"
    if not destination.exists():
        return "no such file"
    if anchor and destination.suffix == ".md":
        if anchor not in {_slug(h) for h in _HEADING.findall(_FENCE.sub("", destination.read_text()))}:
            return f"no heading #{anchor}"
    return None


@pytest.mark.parametrize("page", PAGES_WITH_LINKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_lead_to_files_in_the_repository(page: Path) -> None:
    links = _links(page)
    assert links, f"{page.name} has no links to check"
    broken = {target: why for target in links if (why := _broken(page, target))}
    assert not broken, broken


@pytest.mark.parametrize("page", PAGES_WITH_LINKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_points_at_the_spec_outside_the_repository(page: Path) -> None:
    text = page.read_text()
    assert "../shared" not in text and "shared/spec" not in text


def test_the_code_cites_only_documents_in_the_repository() -> None:
    citing = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in [*(p for folder in ("events", "projections", "pipelines", "tests", "docs", "dagster_home")
                       for p in sorted((ROOT / folder).rglob("*"))), ROOT / "pyproject.toml", ROOT / "docker-compose.yml"]
        if path.suffix in {".py", ".sql", ".yaml", ".yml", ".toml", ".xml"} and path != Path(__file__)
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"\bspec/\w+\.md|shared/|field.notes|design card|house.style", line, re.IGNORECASE)
    ]
    assert not citing, citing


def test_ci_runs_the_readmes_test_command_and_nothing_else() -> None:
    root = DOCS_DIR.parent
    readme = (root / "README.md").read_text(encoding="utf-8").splitlines()
    setup = [line for line in readme[:12] if line.endswith(".venv/bin/pytest")]
    assert len(setup) == 1, "the README opens with one command that sets up and runs every test"
    steps = [line for line in (root / ".ci" / "run").read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert steps == setup
