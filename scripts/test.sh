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
.venv/bin/python -m pytest -q --durations=15
# The fast path on a CPU without AVX-512, AMX or native bf16, emulated on a machine that has them: the probe hides
# the flags (RESNET_MODEL_CPU_ISA) and oneDNN keeps to AVX2 kernels (ONEDNN_MAX_CPU_ISA). resnet18 stands for both
# presets and torch.compile is left out: the first pass ran them, and they take the same code paths.
if grep -qE '\b(avx512f|amx_bf16)\b' /proc/cpuinfo 2>/dev/null; then
    RESNET_MODEL_CPU_ISA=avx2 ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python -m pytest -q tests/test_fastpath.py \
        -k "not torch_compile and not resnet50d"
fi
# The second pass leaves out the tests whose subject is not the storage layout (to keep CI short): the client's
# own suite, the soak, the fuzzer, the `hf` CLI run and the limits on anonymous work (their requests reach the
# stores through routes this pass covers), and the parsers and scanners tested on bytes.
.venv/bin/python -m pytest -q --durations=15 tests/hub --hub-backend postgres-s3 \
    --deselect tests/hub/test_hub_compat_suite.py \
    --deselect tests/hub/test_hub_soak.py \
    --deselect tests/hub/test_hub_fuzz.py \
    --deselect tests/hub/test_hub_hf_cli.py \
    --deselect tests/hub/test_hub_bounded.py \
    --deselect tests/hub/test_xet_formats.py \
    --deselect tests/hub/test_hub_scan_content.py \
    --deselect tests/hub/test_hub_scan_emulator.py \
    --deselect tests/hub/test_hub_structure.py
