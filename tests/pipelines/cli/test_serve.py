"""`planning serve` as a process: where it listens, the store it holds, and a clean stop on Ctrl-C or SIGTERM."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from events.home import PlanningHome
from events.storage.store import EventStore
from pipelines.cli.main import main
from pipelines.exit_codes import ExitCode
from pipelines.streaming.broker import Broker
from tests.support.collector import add_sender, ndjson
from tests.support.events import make_event, write_jsonl
from tests.support.paths import REPO_ROOT

RECORDED_AT = "2026-08-01T09:00:00Z"


@contextmanager
def serving(home: PlanningHome, *options: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`planning serve --port 0` on ``home``, and the address it printed; killed if the test left it running."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "serve", "--port", "0", *options], cwd=REPO_ROOT, text=True,
        env={**os.environ, "PLANNING_HOME": str(home.root), "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        address = process.stdout.readline().strip()  # the first line, once it listens ("" if it died)
        assert address.startswith("http://127.0.0.1:"), (address, process.stderr.read() if not address else "")
        yield process, address
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def post(address: str, body: bytes, secret: str) -> tuple[int, dict]:
    where = urlsplit(address)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
    try:
        connection.request("POST", "/v1/events", body=body,
                           headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/x-ndjson"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_serve_holds_the_store_until_stopped_then_releases_it(
    stop: signal.Signals, home: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    secret = add_sender(home, "survey-vendor", ["survey.response_recorded"], None)
    posted = make_event("survey.response_recorded")
    backfill = write_jsonl(tmp_path / "backfill.jsonl", [make_event("cdrp.audit_submitted")])
    with serving(home) as (process, address):
        status, first = post(address, ndjson(posted), secret)
        assert (status, first["accepted"]) == (200, 1)
        status, again = post(address, ndjson(posted), secret)
        assert (status, again["duplicates"]) == (200, 1)

        assert main(["ingest", str(backfill), "--recorded-at", RECORDED_AT]) == ExitCode.FAILED
        refused = capsys.readouterr().err
        assert "being written by planning serve (pid" in refused
        assert "POST the file to it as a registered sender" in refused and "stop the collector (planning serve (pid" in refused

        process.send_signal(stop)
        assert process.wait(timeout=60) == ExitCode.OK
        assert "the event store is released" in process.stderr.read()

    assert main(["ingest", str(backfill), "--recorded-at", RECORDED_AT]) == ExitCode.OK
    with EventStore(home.store) as store:
        senders = {r["event_id"]: r["sender"] for r in store.records()}
    assert senders[posted["event_id"]] == "survey-vendor"
    assert len(senders) == 2


def test_a_second_collector_on_the_same_store_is_refused(home: PlanningHome) -> None:
    with serving(home) as (first, _):
        second = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "serve", "--port", "0"], cwd=REPO_ROOT, text=True, capture_output=True,
            env={**os.environ, "PLANNING_HOME": str(home.root), "PYTHONPATH": str(REPO_ROOT)}, timeout=120,
        )
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == ExitCode.OK
    assert second.returncode == ExitCode.FAILED
    assert "being written by planning serve" in second.stderr and "Traceback" not in second.stderr


def test_a_port_in_use_is_refused(home: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        code = main(["serve", "--port", str(taken.getsockname()[1])])
    assert code == ExitCode.FAILED
    assert "cannot listen on 127.0.0.1:" in capsys.readouterr().err


@pytest.mark.parametrize("argv, said", [
    (["serve", "--host", "0.0.0.0"], "without TLS"),
    (["serve", "--certfile", "cert.pem"], "together"),
    (["serve", "--rate", "nan"], "argument --rate"),
    (["serve", "--rate", "0"], "argument --rate"),
    (["serve", "--burst", "10"], "argument --burst"),
    (["serve", "--port", "65536"], "argument --port"),
], ids=["no TLS off loopback", "half TLS", "rate nan", "rate 0", "burst below a request", "port"])
def test_options_out_of_range_are_usage_errors(argv: list[str], said: str, home: PlanningHome,
                                               capsys: pytest.CaptureFixture) -> None:
    assert main(argv) == ExitCode.USAGE
    assert said in capsys.readouterr().err
    assert not home.store.exists()  # refused before the store was touched


def test_while_the_worker_writes_the_store_serve_says_to_hand_over_to_its_kafka(
    home: PlanningHome, capsys: pytest.CaptureFixture
) -> None:
    from pipelines.streaming.worker import worker_holder

    with EventStore(home.store, writer=True, holder=worker_holder("127.0.0.1:19092")):
        code = main(["serve", "--port", "0"])
    assert code == ExitCode.FAILED
    assert "`planning serve --bootstrap 127.0.0.1:19092`" in capsys.readouterr().err


def test_serve_refuses_a_kafka_it_cannot_reach(home: PlanningHome, capsys: pytest.CaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANNING_KAFKA_USER", "collector")
    monkeypatch.setenv("PLANNING_KAFKA_PASSWORD", "not-used")
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]  # nothing listens there once closed
    assert main(["serve", "--port", "0", "--bootstrap", f"127.0.0.1:{port}"]) == ExitCode.FAILED
    err = capsys.readouterr().err
    assert f"cannot reach Kafka at 127.0.0.1:{port} as the collector" in err and "Traceback" not in err
    assert not (home.store / "store.sqlite").exists()


@pytest.mark.kafka
def test_serve_on_the_streaming_stack_hands_over_to_kafka(
    kafka_broker: Broker, home: PlanningHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.stream import new_prefix, prepare_topics

    prefix = new_prefix()
    prepare_topics(kafka_broker.bootstrap, prefix)
    monkeypatch.setenv("PLANNING_TOPIC_PREFIX", prefix)  # the child's environment is this process's
    secret = add_sender(home, "survey-vendor", ["survey.response_recorded"], None)
    with serving(home, "--bootstrap", kafka_broker.bootstrap) as (process, address):
        status, answer = post(address, ndjson(make_event("survey.response_recorded")), secret)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == ExitCode.OK
        told = process.stderr.read()
    assert (status, answer["accepted"]) == (200, 1), answer
    assert f"handing events to Kafka at {kafka_broker.bootstrap}" in told
    assert "acknowledged by Kafka" in told
    assert not (home.store / "store.sqlite").exists()


def test_serve_answers_the_web_site_and_the_collector_on_one_port(home: PlanningHome) -> None:
    with serving(home) as (process, address):
        where = urlsplit(address)
        replies = {}
        for path in ("/", "/v1/health", "/account/password"):
            connection = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
            connection.request("GET", path)
            response = connection.getresponse()
            replies[path] = (response.status, dict(response.getheaders()), response.read())
            connection.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == ExitCode.OK
    status, headers, body = replies["/"]
    assert status == 200 and b"Policing plan evidence" in body and "frame-ancestors 'none'" in headers["content-security-policy"]
    status, headers, body = replies["/v1/health"]
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert "content-security-policy" not in {k.lower() for k in headers}, "the collector is not behind the site's guard"
    status, headers, _ = replies["/account/password"]
    assert (status, headers["location"]) == (303, "/sign-in?next=%2Faccount%2Fpassword")


def test_serve_without_govuk_frontend_says_to_run_npm_ci(home: PlanningHome, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("PLANNING_WEB_ASSETS", str(tmp_path / "node_modules"))
    assert main(["serve", "--port", "0"]) == ExitCode.FAILED
    said = capsys.readouterr().err
    assert "GOV.UK Frontend is not installed" in said and "Run `npm ci`" in said


def test_serve_refuses_an_identity_provider_it_cannot_use_naming_the_variable(
        home: PlanningHome, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("PLANNING_OIDC_ISSUER", "http://login.example.gov.uk")
    assert main(["serve", "--port", "0"]) == ExitCode.USAGE
    assert "$PLANNING_OIDC_ISSUER" in capsys.readouterr().err
