#!/usr/bin/env bash
# Sets up everything the tests need and runs them all: lint, types, import rules, and the test suite
# on SQLite and on PostgreSQL (127.0.0.1:5432, database "test"; started here if it is not running).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"

# PostgreSQL: the suite runs every database test on it too.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "PostgreSQL is not running on 127.0.0.1:5432; starting it"
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  for _ in $(seq 1 30); do
    pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && break
    sleep 1
  done
  if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    echo "ERROR: PostgreSQL could not be started on 127.0.0.1:5432 (database 'test', trust auth)." >&2
    echo "Install it (apt-get install postgresql) or set LOOPLINE_TEST_POSTGRES_URL." >&2
    exit 1
  fi
fi

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
.venv/bin/mypy
echo "== import rules (flows pure; channels import nothing of ours; store never imports bots/channels)"
.venv/bin/lint-imports
echo "== tests (SQLite and PostgreSQL)"
.venv/bin/python -m pytest "$@"
