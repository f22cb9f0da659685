#!/usr/bin/env bash
# Create .venv (Python 3.11) and install the project with everything the demo and the tests need.
# PyTorch comes from plain pip; the second Transformers major used by compatibility tests goes to .t4/.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
bash scripts/compat-env.sh
