#!/usr/bin/env bash
# Run every bench figure at one scale: bench/run.sh 100k|1M|10M [--only NAME,...]
# Results: bench/results/<scale>.md and .json. Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${1:?usage: bench/run.sh 100k|1M|10M [--only NAME,...]}"
shift
PYTHONPATH=. exec .venv/bin/python -m bench --events "$scale" "$@"
