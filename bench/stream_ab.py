"""`python -m bench.stream_ab SCALE ROUNDS NAME=TREE [NAME=TREE ...] [--profile NAME]`: the stream drain, A/B.

One broker, the stream figure's sample (``figures.stream_sample``) emitted once, then ROUNDS rounds of a
drain by each code tree (a checkout or an exported commit: the worker runs with its cwd and PYTHONPATH
there), in alternating order, each on a new store (so a new consumer group, from offset 0), each followed
by kafka-python's raw consume of the same messages. One JSON line per drain on stdout and in
``bench/results/stream_ab-<scale>-<time>.jsonl``: drain events/s sustained, raw msg/s, their ratio, the
CPU of the worker's own process over the drain, the load. ``--profile NAME`` records NAME's first drain
with ``py-spy record --gil --threads`` (py-spy on PATH) into ``bench/results/``. Not a figure of
``python -m bench``: a tool for comparing code on the same emitted messages.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

from bench import figures, proc
from bench.data import RESULTS, dataset
from bench.measure import Run


def main(argv: list[str]) -> int:
    scale, rounds = argv[0], int(argv[1])
    profile = None
    trees = {}
    args = list(argv[2:])
    while args:
        a = args.pop(0)
        if a == "--profile":
            profile = args.pop(0)
        else:
            name, _, path = a.partition("=")
            trees[name] = path
    ds = dataset(scale)
    run = Run(ds)
    out = RESULTS / f"stream_ab-{scale}-{int(time.time())}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        broker = run.broker()
        prefix = f"ab{uuid.uuid4().hex[:8]}"
        events_file, expected, messages = figures.stream_sample(run)
        ehome = run.dir / "ab-emit-home"
        shutil.rmtree(ehome, ignore_errors=True)
        ehome.mkdir(parents=True)
        sender = figures.enlist(run, ehome, prefix)
        t = time.perf_counter()
        proc.run(proc.planning("emit", str(events_file), "--bootstrap", broker.bootstrap),
                 run.env(ehome, PLANNING_TOPIC_PREFIX=prefix, PLANNING_SENDER=sender.sender,
                         PLANNING_SENDER_SECRET=sender.secret))
        print(f"emitted {messages} messages ({expected} events) in {time.perf_counter() - t:.1f}s", flush=True)
        for r in range(rounds):
            for name, tree in (trees.items() if r % 2 == 0 else reversed(list(trees.items()))):
                home = run.dir / f"ab-drain-{name}"
                shutil.rmtree(home, ignore_errors=True)
                home.mkdir(parents=True)
                figures.enlist(run, home, prefix)
                env = {**proc.planning_env(home, PLANNING_TOPIC_PREFIX=prefix), "PYTHONPATH": tree}
                log_file = home / "worker.log"
                w = figures.Worker.__new__(figures.Worker)
                w.log_file = log_file
                with open(log_file, "wb") as f:
                    w.child = subprocess.Popen(proc.planning("worker", "--bootstrap", broker.bootstrap), cwd=tree,
                                               env=env, stdout=f, stderr=subprocess.STDOUT)
                w.sampler = proc.PeakSampler(w.child.pid, interval=0.5)
                w.sampler.start()
                figures._wait_for_log(log_file, "planning worker: consuming", w.child, 120)
                spy = None
                if profile == name and r == 0:
                    spy = subprocess.Popen(["py-spy", "record", "--pid", str(w.child.pid), "--threads", "--gil",
                                            "--rate", "100", "--format", "raw",
                                            "-o", str(RESULTS / f"spy-{name}-{scale}.txt")],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                cpu0 = proc.cpu_seconds_of(w.child.pid)
                first, finished = figures.watch_store(home, w, expected)
                cpu1 = proc.cpu_seconds_of(w.child.pid)
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait()
                w.stop()
                drained = (expected - first[1]) / max(finished - first[0], 1e-9)
                raw_s, raw_seen = figures.raw_consume(broker.bootstrap, prefix, messages)
                raw = raw_seen / raw_s
                rec = {"round": r, "tree": name, "drain": round(drained), "raw": round(raw), "ratio": round(drained / raw, 3),
                       "worker_cpu_s": round((cpu1 or 0) - (cpu0 or 0), 1), "load": round(os.getloadavg()[0], 1)}
                print(json.dumps(rec), flush=True)
                with open(out, "a") as f:
                    f.write(json.dumps(rec) + "\n")
                shutil.rmtree(home, ignore_errors=True)
    finally:
        run.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
