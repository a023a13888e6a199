#!/usr/bin/env bash
# メインの仕事: ワークスペース環境を用意して、既定の設定でパイプライン全体を実行し、HTML レポートを書く。
# Sets up the workspace environment (idempotent), runs the whole pipeline on the embedded defaults
# (`snakemake --cores all`) and writes its HTML report, results/<run_name>/report.html. Extra
# arguments go to snakemake, e.g.
#   bash scripts/run.sh --configfile config/quick.yaml --config mnist_dir=../shared/mnist
set -euo pipefail
cd "$(dirname "$0")/.."
python3 envs/build.py workspace
run_name=$(.venvs/workspace/bin/python workflow/scripts/run_name.py "$@")
export STUCRS_REPORT="results/$run_name/report.html"
exec .venvs/workspace/bin/snakemake --cores all --report "$STUCRS_REPORT" --report-after-run "$@"
