#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite: ruff (lint + format check), then pytest.
# Extra arguments go to pytest and skip ruff, e.g. `bash scripts/test.sh -m "not slow"` (the fast loop).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "$#" -eq 0 ]; then
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
fi
exec .venv/bin/python -m pytest -q "$@"
