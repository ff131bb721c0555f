#!/usr/bin/env bash
# Sets up Loopline on SQLite, loads the example survey and opens a simulated phone to take it.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
.venv/bin/loopline survey load examples/parks.yaml
exec .venv/bin/loopline chat --as "${1:-+447700900123}"
