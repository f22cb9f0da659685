#!/usr/bin/env bash
# Install the previous Transformers major (4.57.x with huggingface_hub 0.36.x) into .t4/, a target
# folder that shadows the main environment's copies when put first on PYTHONPATH. Used by the tests
# that prove saved remote code and the Hub server work for consumers still on transformers 4.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if [ -f .t4/.complete ]; then exit 0; fi
rm -rf .t4
"$PY" -m pip install -q --no-deps --target .t4 \
    "transformers==4.57.*" "huggingface_hub==0.36.*" "tokenizers>=0.22,<0.23" "requests>=2.31" \
    "charset-normalizer>=3" "certifi"
touch .t4/.complete
