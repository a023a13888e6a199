#!/usr/bin/env bash
# MLflow UI を開く。既定では 127.0.0.1 (このマシンの中) だけで待ち受ける。
# Opens the MLflow UI on the pipeline's store. By default it listens on 127.0.0.1 only, so nobody else
# on the network can read (or, through the API, change) your runs. `--expose` listens on every network
# interface (0.0.0.0): anyone who can reach this machine's port can then see and modify the runs, since
# the MLflow UI has no login. Use it only on a trusted network or behind your own authenticating proxy.
#
#   bash scripts/mlflow_ui.sh                 # http://127.0.0.1:5000
#   bash scripts/mlflow_ui.sh --port 5001
#   bash scripts/mlflow_ui.sh --expose        # 0.0.0.0:5000, read the warning above first
#   bash scripts/mlflow_ui.sh --print-command # show what would run
set -euo pipefail
cd "$(dirname "$0")/.."
host=127.0.0.1
port=5000
store="${MLFLOW_TRACKING_URI:-sqlite:///results/mlflow.db}"
print_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --expose) host=0.0.0.0 ;;
    --port) port="$2"; shift ;;
    --backend-store-uri) store="$2"; shift ;;
    --print-command) print_only=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "mlflow_ui.sh: unknown option '$1' (known: --expose, --port N, --backend-store-uri URI, --print-command)" >&2; exit 2 ;;
  esac
  shift
done
mlflow=.venvs/workspace/bin/mlflow
[ -x "$mlflow" ] || mlflow=mlflow
# the artifacts of a local store live at mlflow-artifacts:/EXPERIMENT, served from this folder
cmd=("$mlflow" ui --backend-store-uri "$store" --artifacts-destination results/mlflow-artifacts --host "$host" --port "$port")
if [ "$host" = 0.0.0.0 ]; then
  echo "WARNING: the MLflow UI will listen on all interfaces (0.0.0.0:$port) without authentication:" >&2
  echo "         anyone who can reach this port can read and change your runs." >&2
fi
if [ "$print_only" = 1 ]; then
  printf '%s\n' "${cmd[*]}"
  exit 0
fi
exec "${cmd[@]}"
