#!/usr/bin/env bash
# Set up (if needed) and run the demo: train on scikit-learn's digits, push to an embedded Hub, reload pinned.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/resnet-model demo "$@"
