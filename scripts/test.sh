#!/usr/bin/env bash
# テスト一式: 環境を用意して (済んでいれば何もしない) すべてのテストを実行する。
# Sets up everything the tests need on a fresh machine (idempotent), then runs the whole suite:
# the tests that compare with PyTorch in the torch environment, everything else in the workspace.
# Extra arguments run only the workspace part with them, e.g. `bash scripts/test.sh tests/test_core.py -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

# One locked virtual environment per framework (envs/*.in, envs/locks/); current ones are not rebuilt.
python3 envs/build.py workspace stucrs dezero tensorflow torch

# System programs some tests use: PostgreSQL (shared MLflow server test), Graphviz (graph drawing),
# Chromium (the browser checks of the report and the MLflow UI).
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[test.sh] installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "[test.sh] missing system packages: ${missing[*]} (needs root + apt-get to install them here)." >&2
    echo "[test.sh] Install them (sudo apt-get install ${missing[*]}); set STUCRS_SKIP_POSTGRES=1 to skip the PostgreSQL test." >&2
  fi
fi

# MNIST for the tests: $STUCRS_MNIST_DIR, ../shared/mnist, the verified cache, else one verified
# download (the tests themselves never download). Without it, the MNIST tests skip with the reason.
if mnist_dir=$(.venvs/workspace/bin/python tests/mnist_setup.py); then
  export STUCRS_MNIST_DIR="$mnist_dir"
fi

if [ $# -gt 0 ]; then
  exec .venvs/workspace/bin/python -m pytest "$@"
fi

# Tests marked `torch` run where PyTorch is; there a missing torch is an error, not a skip.
torch_files=$(grep -l "pytest.mark.torch" tests/test_*.py)
STUCRS_REQUIRE_TORCH=1 .venvs/torch/bin/python -m pytest -m torch $torch_files
# The framework's own tests (gradients against PyTorch and numerically, optimizers, DeZero
# compatibility, the book's scripts) once more with the fast paths off: the book's code alone
# (STUCRS_FAST=0) must pass them too.
book_tests=(tests/test_core.py tests/test_functions.py tests/test_conv.py tests/test_optimizers.py
            tests/test_layers.py tests/test_models.py tests/test_raw_operands.py
            tests/test_dezero_compat.py tests/test_book_style.py tests/test_load_weights.py
            tests/test_build_along.py)
STUCRS_FAST=0 STUCRS_REQUIRE_TORCH=1 .venvs/torch/bin/python -m pytest -q -m torch $torch_files
STUCRS_FAST=0 .venvs/workspace/bin/python -m pytest -q -m "not torch" "${book_tests[@]}"
ignore=()
for f in $(grep -l "^pytestmark = pytest.mark.torch" tests/test_*.py); do ignore+=("--ignore=$f"); done
exec .venvs/workspace/bin/python -m pytest -m "not torch" "${ignore[@]}"
