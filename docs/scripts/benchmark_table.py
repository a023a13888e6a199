"""ベンチマークの結果のページ (docs/ja/benchmarks.md) の表を、パイプラインの集計から作り直す。

Renders the benchmark page's table from a pipeline run's ``results/<run_name>/summary.csv``
(written by ``bash scripts/run.sh``) and, with ``--write``, replaces the block between the markers
``<!-- benchmark-table:start -->`` and ``<!-- benchmark-table:end -->`` in ``docs/ja/benchmarks.md``
(chapter 16 links to that page). The numbers always come from a pipeline run, never by hand.

    python docs/scripts/benchmark_table.py                 # print the table of results/default
    python docs/scripts/benchmark_table.py --run quick     # another run
    python docs/scripts/benchmark_table.py --write         # update the page
"""
import argparse
import csv
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "ja" / "benchmarks.md"
START, END = "<!-- benchmark-table:start -->", "<!-- benchmark-table:end -->"
NETWORK_NAMES = {"mlp1": "① 784-1000-10", "mlp2": "② 784-1000-1000-10", "cnn": "③ CNN"}


def _f(value, spec):
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "–"
    return "–" if v != v else format(v, spec)


def _machine(runs_dir):
    """CPU model, threads and date of the runs (from their recorded environment)."""
    for p in sorted(Path(runs_dir).glob("*.json")):
        try:
            res = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        env = res.get("environment") or {}
        if res.get("status") == "ok" and env:
            import datetime

            date = datetime.datetime.fromtimestamp(p.stat().st_mtime).strftime("%Y-%m-%d")
            return env.get("cpu_model", "?"), env.get("cores", "?"), env.get("threads", "?"), date
    return platform.processor() or "?", os.cpu_count(), "?", ""


def render(summary_csv, runs_dir):
    rows = list(csv.DictReader(open(summary_csv, encoding="utf-8")))
    if not rows:
        raise SystemExit(f"{summary_csv} holds no rows: run the pipeline first (bash scripts/run.sh)")
    cpu, cores, threads, date = _machine(runs_dir)
    lines = [
        f"測定環境: {cpu}、{cores} コア、スレッド数 {threads}"
        + (f"、{date}" if date else "") + "。`bash scripts/run.sh` の結果 `summary.csv` から "
        "`python docs/scripts/benchmark_table.py --write` で作った表です (手で書き写した数字はありません)。",
        "",
        "| ネットワーク | 変種 | 繰り返し | 学習時間 中央値 [s] (最小–最大) | DeZero 比の速さ | GEMM 下限比 | 同じプロセスの下限比 | テスト正解率 | CPU 時間 [s] | ピークメモリ [MB] | BLAS カーネル |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        rng = f"{_f(r['wall_time_min_s'], '.2f')}–{_f(r['wall_time_max_s'], '.2f')}"
        lines.append(
            f"| {NETWORK_NAMES.get(r['network'], r['network'])} | {r['variant']} | "
            f"{r.get('repeats_ok', '?')}/{r.get('repeats_total', '?')} | "
            f"{_f(r['wall_time_median_s'], '.2f')} ({rng}) | {_f(r['speedup_vs_dezero'], '.2f')}× | "
            f"{_f(r.get('wall_over_floor'), '.2f')} | {_f(r.get('over_paired_floor'), '.2f')} | "
            f"{_f(r['test_acc'], '.4f')} | {_f(r['cpu_time_median_s'], '.1f')} | "
            f"{_f(r['peak_rss_median_mb'], '.0f')} | {r.get('blas_kernel') or '–'} |")
    return "\n".join(lines)


def write_block(page, table):
    text = page.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{page} has no {START} ... {END} block to replace")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = head + START + "\n" + table + "\n" + END + tail
    fd, tmp = tempfile.mkstemp(dir=page.parent, suffix=".md.part")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(new)
    os.replace(tmp, page)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    ap.add_argument("--run", default="default", help="run name: results/RUN/ (default: default)")
    ap.add_argument("--summary", help="default: results/RUN/summary.csv")
    ap.add_argument("--runs", help="default: results/RUN/runs")
    ap.add_argument("--page", default=str(PAGE))
    ap.add_argument("--write", action="store_true", help="replace the marked block in the page")
    args = ap.parse_args(argv)
    args.summary = args.summary or str(ROOT / "results" / args.run / "summary.csv")
    args.runs = args.runs or str(ROOT / "results" / args.run / "runs")
    if not Path(args.summary).exists():
        raise SystemExit(f"{args.summary} does not exist: run the pipeline first (bash scripts/run.sh)")
    table = render(args.summary, args.runs)
    if args.write:
        write_block(Path(args.page), table)
    print(table)


if __name__ == "__main__":
    sys.exit(main())
