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
# The web-page tests drive the system's Chromium (Debian package) through Playwright.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
