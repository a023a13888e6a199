#!/usr/bin/env bash
# メインの仕事: ワークスペース環境を用意して、既定の設定でパイプライン全体を実行する。
# Sets up the workspace environment (idempotent) and runs the whole pipeline on the embedded
# defaults: `snakemake --cores all`. Extra arguments go to snakemake, e.g.
#   bash scripts/run.sh --configfile config/quick.yaml --config mnist_dir=../shared/mnist
set -euo pipefail
cd "$(dirname "$0")/.."
python3 envs/build.py workspace
exec .venvs/workspace/bin/snakemake --cores all "$@"
