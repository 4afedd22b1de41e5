"""The results table (Markdown) and the machine/version header."""

from __future__ import annotations

import os
import platform
import re
from importlib import metadata
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        match = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
        mem_kib = int(match.group(1)) if match else 0
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "memory_gib": round(mem_kib / 1024 / 1024, 1), "cpu": cpu,
            "kernel": platform.release()}


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("duckdb", "dagster", "pydantic", "kafka-python", "faust-streaming", "eventsourcing"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    try:
        from pipelines.streaming.broker import POM

        match = re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text())
        out["kafka broker"] = match.group(1) if match else "see pipelines/streaming/broker.pom.xml"
    except Exception:
        out["kafka broker"] = "unknown"
    return out


def _met(row: dict[str, Any]) -> str:
    if "error" in row:
        return "error"
    if "skipped" in row:
        return "not run"
    met = row.get("met")
    return "—" if met is None else ("met" if met else "**gap**")


def markdown(results: dict[str, Any]) -> str:
    m, v, d = results["machine"], results["versions"], results["dataset"]
    lines = [
        f"### {results['scale']} events — {results['date'][:10]}",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['memory_gib']} GiB, Linux {m['kernel']}. "
        f"Versions: Python {v['python']}, DuckDB {v['duckdb']}, Dagster {v['dagster']}, pydantic {v['pydantic']}, "
        f"kafka-python {v['kafka-python']}, faust-streaming {v['faust-streaming']}, Kafka broker {v['kafka broker']}, "
        f"eventsourcing {v['eventsourcing']}.",
        "",
        f"Data: {d['distinct_events']:,} distinct events in {d['lines']:,} lines ({d['duplicate_lines']:,} re-sent "
        f"duplicates, {d['bad_lines']} bad lines), {len(d['cycles'])} cycles ({d['cycles'][0]} … {d['cycles'][-1]}) "
        f"× 32 boroughs at demo scale {d['scale']}, {d['bytes'] / 1e6:,.0f} MB. Bench wall time "
        f"{results['wall_seconds'] / 60:,.1f} min. The machine is shared: *load* is the 1-minute load average "
        "before→after each figure (2 cores; above 2 means other work competed for them).",
        "",
        "| figure | pipeline | raw baseline (same run) | ratio | target | | load |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    notes = []
    for row in results["figures"]:
        if "error" in row or "skipped" in row:
            text = " ".join(str(row.get("error") or row.get("skipped")).split())[:300].replace("|", "/")
            lines.append(f"| {row['figure']} | {text} | | | | {_met(row)} | |")
            continue
        load = "→".join(str(x) for x in row.get("load", []))
        lines.append(f"| {row['figure']} | {row['pipeline']} | {row['baseline']} | {row['ratio_text']} | "
                     f"{row['target']} | {_met(row)} | {load} |")
        notes.append(f"- *{row['figure']}*: {row['notes']}")
    tables = results.get("extra", {}).get("query_tables")
    out = "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"
    if tables:
        every = all("every_cycle" in t for t in tables.values())
        sides = ("library", *(["every_cycle"] if every else []), "raw")
        heads = ["`planning query`", "library, one cycle", *(["library, every cycle"] if every else []), "DuckDB raw"]
        out += ("\nQuery latency per Panel table (ms, p50 / p95):\n\n| table | " + " | ".join(heads) + " |\n| "
                + " | ".join(["---"] * (len(heads) + 1)) + " |\n")
        for name, t in tables.items():
            cells = [f"{t['query']['p50_ms']:,.0f} / {t['query']['p95_ms']:,.0f}"]
            cells += [f"{t[k]['p50_ms']:,.1f} / {t[k]['p95_ms']:,.1f}" for k in sides]
            out += f"| {name} | " + " | ".join(cells) + " |\n"
    return out
