"""Refusals of the `planning` command: every limit has a range, and a refusal is a message with its own exit code.

A limit a user can set must not be a way to switch it off (``--timeout nan``)
or to raise a traceback (``--limit 1e20``); a store or a target that cannot be
written is exit 4 (CANNOT_WRITE) with a message, never a traceback with exit 1
(which means "some lines were rejected").
"""

from __future__ import annotations

import argparse
import errno
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from events.home import PlanningHome
from pipelines.cli.main import main
from pipelines.exit_codes import ExitCode
from tests.support.events import make_event, write_jsonl


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["sql", "SELECT 1", "--timeout", "nan"], "--timeout"),
        (["sql", "SELECT 1", "--timeout", "inf"], "--timeout"),
        (["sql", "SELECT 1", "--timeout", "-1"], "--timeout"),
        (["sql", "SELECT 1", "--timeout", "1e9"], "--timeout"),
        (["sql", "SELECT 1", "--limit", "1e20"], "--limit"),
        (["sql", "SELECT 1", "--limit", "100000000000000000000"], "--limit"),
        (["sql", "SELECT 1", "--limit", "0"], "--limit"),
        (["deadletters", "--limit", "0"], "--limit"),
        (["deadletters", "--limit", "-5"], "--limit"),
        (["ui", "--port", "70000"], "--port"),
        (["worker", "--batch", "0"], "--batch"),
        (["worker", "--batch", "1e9"], "--batch"),
        (["topics", "--partitions", "0"], "--partitions"),
        (["broker", "start", "--timeout", "nan"], "--timeout"),
        (["broker", "stop", "--timeout", "-3"], "--timeout"),
        (["build", "--on", "9999-12-31"], "--on"),
        (["build", "--as-of", "0001-01-01T00:00:00+14:00"], "--as-of"),
        (["build", "--as-of", "9999-12-31T23:59:59-14:00"], "--as-of"),
        (["demo", "--today", "0001-01-01"], "--today"),
        (["ingest", "--recorded-at", "2999-01-01T00:00:00Z", "-"], "--recorded-at"),
        (["ingest", "--recorded-at", "0001-01-01T00:00:00+14:00", "-"], "--recorded-at"),
        (["ingest", "--recorded-at", "yesterday", "-"], "--recorded-at"),
    ],
)
def test_a_limit_out_of_range_is_a_usage_error_naming_the_option(
    argv: list[str], option: str, home: PlanningHome, capsys: pytest.CaptureFixture
) -> None:
    assert main(argv) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["topics", "worker"])
@pytest.mark.parametrize("partitions", ["0", "three", "1e3", "30000"])
def test_topic_partitions_from_the_environment_are_refused_before_any_broker_is_asked(
    command: str, partitions: str, home: PlanningHome, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("PLANNING_TOPIC_PARTITIONS", partitions)
    # a bootstrap nothing listens on: reaching it would be exit 3 (FAILED), not a usage error
    assert main([command, "--bootstrap", "127.0.0.1:9"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"PLANNING_TOPIC_PARTITIONS: {partitions!r} is not a whole number from 1 to 1,000" in err
    assert "Traceback" not in err


def test_topic_partitions_from_the_environment_are_refused_by_every_command_that_makes_topics(
    home: PlanningHome, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from events.routing import PartitionsRefused
    from pipelines.cli import main as cli_main

    def makes_a_topic(args, home):  # as `up`, `broker start` and `senders add` do, deep inside
        from pipelines.streaming.topics import family_spec

        family_spec("planning.survey", "survey")
        return ExitCode.OK

    class Parser:
        def parse_args(self, argv):
            return argparse.Namespace(run=makes_a_topic)

    monkeypatch.setenv("PLANNING_TOPIC_PARTITIONS", "-1")
    monkeypatch.setattr(cli_main, "_parser", Parser)
    assert main(["up"]) == ExitCode.USAGE
    assert "planning: PLANNING_TOPIC_PARTITIONS: '-1' is not a whole number" in capsys.readouterr().err
    assert issubclass(PartitionsRefused, ValueError)


def test_recorded_at_may_be_at_most_the_contracts_tolerance_ahead(
    home: PlanningHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from pipelines.cli import arguments

    monkeypatch.setattr(arguments, "utc_now", lambda: datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc))
    events = write_jsonl(tmp_path / "a.jsonl", [make_event("stage.signed_off", occurred_at="2026-05-01T09:00:00Z")])
    assert main(["ingest", "--recorded-at", "2026-06-01T12:06:00Z", str(events)]) == ExitCode.USAGE
    assert "from 2000-01-01 to 2026-06-01T12:05:00Z" in capsys.readouterr().err
    assert main(["ingest", "--recorded-at", "2026-06-01T12:04:00Z", str(events)]) == ExitCode.OK


def test_printed_output_is_capped_and_says_what_was_cut() -> None:
    import io

    from pipelines.cli import output

    rows = [(i, "x" * 100) for i in range(1_000)]
    for fmt in ("table", "csv", "json"):
        out = io.StringIO()
        printed = output.write(["n", "text"], iter(rows), fmt, out, max_bytes=10_000)
        assert printed.cut and 0 < printed.rows < 1_000, fmt
        assert len(out.getvalue().encode()) < 12_000, fmt
        assert output.cut_note(printed).startswith(f"output stopped at {printed.rows:,} rows")
        whole = output.write(["n", "text"], iter(rows[:5]), fmt, io.StringIO(), max_bytes=10_000)
        assert whole == output.Printed(5, False, 10_000), fmt


def test_the_second_writer_is_told_who_holds_the_store(home: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from events.storage.store import EventStore
    from pipelines.streaming.worker import worker_holder

    events = str(write_jsonl(tmp_path / "a.jsonl", [make_event("stage.signed_off")]))
    with EventStore(home.store, writer=True, holder="planning ingest"):
        assert main(["ingest", events]) == ExitCode.FAILED
    err = capsys.readouterr().err
    assert "being written by planning ingest (pid " in err
    assert "stream worker" not in err and "wait until planning ingest (pid " in err
    with EventStore(home.store, writer=True, holder=worker_holder("10.1.2.3:9192")):
        assert main(["ingest", events]) == ExitCode.FAILED
    err = capsys.readouterr().err
    assert "being written by planning worker --bootstrap 10.1.2.3:9192 (pid " in err
    assert f"`planning emit {events} --bootstrap 10.1.2.3:9192`" in err  # the line that reaches this worker


def test_a_read_only_store_is_refused_cleanly(
    home: PlanningHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Tests run as root, whom file modes do not stop: SQLite's own refusal is injected at the store's boundary."""
    from events.storage.store import EventStore

    def read_only(*_: object, **__: object) -> None:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    events = str(write_jsonl(tmp_path / "a.jsonl", [make_event("stage.signed_off")]))
    monkeypatch.setattr(EventStore, "append", read_only)
    assert main(["ingest", events]) == ExitCode.CANNOT_WRITE == 4
    err = capsys.readouterr().err
    assert "cannot write the event store" in err and "read-only" in err and "Traceback" not in err

    monkeypatch.setattr(EventStore, "_take_writer_lock", lambda *_: (_ for _ in ()).throw(OSError(errno.EROFS, "Read-only file system")))
    assert main(["ingest", events]) == ExitCode.CANNOT_WRITE
    assert "read-only. Nothing was stored." in capsys.readouterr().err


def test_a_full_disk_keeps_what_was_stored_and_says_so(
    home: PlanningHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """The disk fills after the first batch: that batch stays stored, the rest is refused with exit 4."""
    from events.storage.store import EventStore
    from pipelines.ingest import files

    monkeypatch.setattr(files, "BATCH_SIZE", 2)
    real_append = EventStore.append
    calls = []

    def fills_up(self: EventStore, *args: object, **kwargs: object):
        calls.append(1)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_append(self, *args, **kwargs)

    monkeypatch.setattr(EventStore, "append", fills_up)
    events = [make_event("stage.signed_off", {"stage": stage}) for stage in ("brief", "analysis", "priorities", "publication")]
    assert main(["ingest", str(write_jsonl(tmp_path / "a.jsonl", events))]) == ExitCode.CANNOT_WRITE
    captured = capsys.readouterr()
    assert captured.out.startswith("accepted 2  duplicate 0  rejected 0")
    assert "the disk is full" in captured.err and "Traceback" not in captured.err
    with EventStore(home.store) as store:
        assert store.counts()["events"] == 2


def test_deadletters_and_ingest_never_print_control_characters(home: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    hostile = write_jsonl(tmp_path / "evil\x1b[2J.jsonl", [
        b'{"event_type": "\x1b[2J\x1b]0;owned\x07"}',
        b'{"event_type": "\\u001b[31mred", "x": "\xc2\x9b31m"}',
    ])
    assert main(["ingest", str(hostile)]) == ExitCode.REJECTED
    assert main(["deadletters"]) == ExitCode.OK
    captured = capsys.readouterr()
    for text in (captured.out, captured.err):
        assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
    assert "\\x1b[2J" in captured.out
