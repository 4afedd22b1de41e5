"""Panel-facing subcommands of `planning`: briefing packs and exports.

Both read the published snapshot only (``projections.reading.snapshots.open_reader``):
never the event store, never the dead letters. ``--snapshot NAME`` reads a named (what-if) one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from events.home import PlanningHome
from pipelines.exit_codes import ExitCode

if TYPE_CHECKING:
    from projections.packs import WrittenPack


def add_panel_commands(commands: argparse._SubParsersAction) -> None:
    """Register the Panel subcommands on the `planning` parser."""
    from events.contract.vocabulary import STAGES
    from pipelines.cli.snapshots import add_snapshot_option
    from projections.reading.exports import FORMATS

    pack = commands.add_parser(
        "pack",
        help="write the briefing pack of a stage: one self-contained HTML file and its PDF",
        description="Write the Planning Panel's briefing pack for one stage of a cycle, from the published snapshot: "
        "an HTML file that opens offline (inline CSS and SVG charts) and a PDF of it printed by headless Chromium.",
    )
    pack.add_argument("--cycle", help="the cycle (YYYY-YY); default: the latest published cycle")
    pack.add_argument("--stage", choices=STAGES, help="the stage; default: the stage the cycle is in (the first not signed off)")
    pack.add_argument("--to", metavar="DIR", help="where to write <stage>.html and <stage>.pdf; default: $PLANNING_HOME/packs/<cycle>")
    pack.add_argument("--no-pdf", dest="pdf", action="store_false", help="write the HTML only")
    add_snapshot_option(pack)
    pack.set_defaults(run=_pack)

    export = commands.add_parser(
        "export",
        help="write a cycle's Panel tables as csv, parquet or xlsx, with a README of the columns",
        description="Write every Panel table of one cycle (never dead letters) from the published snapshot, "
        "with a README.md documenting every column.",
    )
    export.add_argument("--cycle", required=True, help="the cycle (YYYY-YY)")
    export.add_argument("--format", choices=FORMATS, default="csv", help="the files' format")
    export.add_argument("--to", metavar="DIR", required=True, help="the directory to write into (created if missing)")
    export.add_argument("--overwrite", action="store_true", help="replace files of the same names already in DIR (refused otherwise)")
    add_snapshot_option(export)
    export.set_defaults(run=_export)


def _pack(args: argparse.Namespace, home: PlanningHome) -> int:
    from pipelines.cli.snapshots import chosen
    from projections.packs import PackError, write_pack
    from projections.reading.snapshots import NoSnapshot, UnknownSnapshot

    try:
        written = write_pack(
            home.projections, args.cycle, args.stage,
            Path(args.to) if args.to else None, pdf=args.pdf, packs_root=home.packs,
            snapshot=chosen(args),
        )
    except UnknownSnapshot as error:
        print(f"planning pack: {error}", file=sys.stderr)
        return ExitCode.USAGE
    except (NoSnapshot, PackError) as error:
        print(f"planning pack: {error}", file=sys.stderr)
        return ExitCode.FAILED
    _record_in_catalog(home, written)
    print(f"briefing pack for {written.cycle}, stage {written.stage} (on {written.on}, as_of {written.as_of})"
          + ("  [SYNTHETIC DATA: labelled on every page]" if written.synthetic else ""))
    print(f"  html  {written.html}")
    if written.pdf:
        print(f"  pdf   {written.pdf}")
    if written.pdf_error:
        print(f"planning pack: the PDF was not written: {written.pdf_error}", file=sys.stderr)
        return ExitCode.FAILED
    return ExitCode.OK


def _record_in_catalog(home: PlanningHome, written: WrittenPack) -> None:
    """A pack in its place ($PLANNING_HOME/packs/<cycle>) is the cycle's ``briefing_pack``: Dagster's
    catalog records it, so that there a missing pack is one never written (one written elsewhere is not it)."""
    from projections.packs import pack_dir

    if written.html.parent != pack_dir(home.packs, written.cycle):
        return
    from pipelines.orchestration.runs import record_pack

    try:
        record_pack(home, written)
    except Exception as error:  # the pack is written all the same; only the catalog misses it
        print(f"planning pack: the pack is written, but Dagster's catalog could not record it: {error}", file=sys.stderr)


def _export(args: argparse.Namespace, home: PlanningHome) -> int:
    from pipelines.cli.snapshots import chosen
    from projections.reading.exports import CannotWriteExport, ExportError, export_cycle
    from projections.reading.snapshots import NoSnapshot, UnknownSnapshot

    try:
        result = export_cycle(home.projections, args.cycle, args.format, Path(args.to), overwrite=args.overwrite,
                              snapshot=chosen(args))
    except UnknownSnapshot as error:
        print(f"planning export: {error}", file=sys.stderr)
        return ExitCode.USAGE
    except CannotWriteExport as error:
        print(f"planning export: {error}", file=sys.stderr)
        return ExitCode.CANNOT_WRITE
    except (NoSnapshot, ExportError) as error:
        print(f"planning export: {error}", file=sys.stderr)
        return ExitCode.FAILED
    print(f"exported cycle {result.cycle} as {result.format} to {result.directory}")
    for name, rows in result.rows.items():
        print(f"  {name:<22} {rows:>7,} rows")
    print(f"  columns documented in {result.readme}")
    return ExitCode.OK
