#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite: ruff (lint + format check), pytest, then the hub tests a
# second time on PostgreSQL + an S3-API server (+ nginx in front of two replicas), all started by the tests.
# Extra arguments go to pytest and run that one pass only, e.g. `bash scripts/test.sh -m "not slow"` (the fast loop).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "$#" -gt 0 ]; then
    exec .venv/bin/python -m pytest -q "$@"
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest -q
# The second pass leaves out what does not touch the stores: the client's own suite and the soak (both
# exercise the API, which is the same on either layout), and the parsers and scanners tested on bytes.
.venv/bin/python -m pytest -q tests/hub --hub-backend postgres-s3 \
    --deselect tests/hub/test_hub_compat_suite.py \
    --deselect tests/hub/test_hub_soak.py \
    --deselect tests/hub/test_xet_formats.py \
    --deselect tests/hub/test_hub_scan_content.py \
    --deselect tests/hub/test_hub_structure.py
