#!/usr/bin/env bash
# テスト一式: 環境を用意して (済んでいれば何もしない) すべてのテストを実行する。
# Sets up everything the tests need on a fresh machine (idempotent), then runs the whole suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/test_core.py -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

# One pinned virtual environment per framework (envs/*.txt); current ones are not rebuilt.
python3 envs/build.py workspace stucrs dezero tensorflow torch

# The shared-MLflow-server test needs a real PostgreSQL server (Debian's package).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[test.sh] installing PostgreSQL (Debian package) for the MLflow server test"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  else
    echo "[test.sh] PostgreSQL is not installed and cannot be installed here (needs root + apt-get)." >&2
    echo "[test.sh] Install it (sudo apt-get install postgresql) or set STUCRS_SKIP_POSTGRES=1." >&2
  fi
fi

exec .venvs/workspace/bin/python -m pytest "$@"
