"""ベンチマークの結果のページ (docs/ja/benchmarks.md) の表を、パイプラインの集計から作り直す。

Renders the benchmark page's table from a pipeline run's ``results/<run_name>/summary.csv``
(written by ``bash scripts/run.sh``) and, with ``--write``, replaces the block between the markers
``<!-- benchmark-table:start -->`` and ``<!-- benchmark-table:end -->`` in ``docs/ja/benchmarks.md``
(chapter 16 links to that page); likewise the block ``<!-- gap-table:start -->`` ...
``<!-- gap-table:end -->`` from the same run's ``gap/<network>.csv`` (what StuCrs's step spends above
the GEMM floor). The numbers always come from a pipeline run, never by hand.

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
GAP_START, GAP_END = "<!-- gap-table:start -->", "<!-- gap-table:end -->"
NETWORK_NAMES = {"mlp1": "① 784-1000-10", "mlp2": "② 784-1000-1000-10", "cnn": "③ CNN"}
# what each variant of the gap harness (workflow/bench/gap.py) leaves out of StuCrs's step
GAP_VARIANT_NAMES = {
    "stucrs": "StuCrs (そのまま)",
    "free bias": "バイアスの計算をただにする",
    "free relu": "ReLU をただにする",
    "free bias+relu": "バイアスと ReLU をただにする",
    "free gather": "ミニバッチの取り出しをただにする",
    "free bias+relu+gather": "バイアス・ReLU・取り出しをただにする",
    "free pooling": "プーリングをただにする",
    "free dropout mask": "ドロップアウトのマスクを引かない",
    "free dropout": "ドロップアウトをただにする",
    "free relu+pooling+dropout": "ReLU・プーリング・ドロップアウトをただにする",
    "free relu+pooling+scaling": "ReLU・プーリング・ドロップアウトの積をただにする (マスクは本と同じに引く)",
    "floor": "GEMM 下限 (行列の積だけ)",
}


def _f(value, spec):
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "–"
    return "–" if v != v else format(v, spec)


def _times(value):
    """``2.50×``, or ``–`` where there is no ratio (a run without DeZero)."""
    text = _f(value, ".2f")
    return text if text == "–" else text + "×"


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
            f"{_f(r['wall_time_median_s'], '.2f')} ({rng}) | {_times(r['speedup_vs_dezero'])} | "
            f"{_f(r.get('wall_over_floor'), '.2f')} | {_f(r.get('over_paired_floor'), '.2f')} | "
            f"{_f(r['test_acc'], '.4f')} | {_f(r['cpu_time_median_s'], '.1f')} | "
            f"{_f(r['peak_rss_median_mb'], '.0f')} | {r.get('blas_kernel') or '–'} |")
    return "\n".join(lines)


def render_gap(gap_dir):
    """One table per network of the run's gap harness (``gap/<network>.csv``), in the order of
    NETWORK_NAMES; a line that says so where the run has none."""
    tables = []
    for network, title in NETWORK_NAMES.items():
        csv_path = Path(gap_dir) / f"{network}.csv"
        if not csv_path.exists():
            continue
        rows = list(csv.DictReader(open(csv_path, encoding="utf-8")))
        steps = f"{rows[0]['rounds']} 回 × {rows[0]['steps']} ステップ" if rows else "?"
        lines = [f"**{title}** (`{csv_path.parent.name}/{csv_path.name}`、{steps}の中央値)", "",
                 "| 1 ステップの中身 | 1 ステップ [ms] | GEMM 下限比 | StuCrs より短くなった時間 [ms] |",
                 "| --- | ---: | ---: | ---: |"]
        for r in rows:
            saved = "–" if r["variant"] in ("stucrs", "floor") else _f(float(r["saving_us"]) / 1e3, ".2f")
            lines.append(f"| {GAP_VARIANT_NAMES.get(r['variant'], r['variant'])} | "
                         f"{_f(float(r['per_step_us']) / 1e3, '.2f')} | {_f(r['over_floor'], '.2f')} | {saved} |")
        bound = next((r for r in rows if r["free"] == "relu+pooling+scaling"), None)
        if bound is not None:
            lines += ["", f"本と同じドロップアウトのマスクを引くかぎり、ReLU・プーリング・ドロップアウトを"
                      f"どう計算しても、1 ステップは GEMM 下限の {_f(bound['over_floor'], '.2f')} 倍より"
                      "短くなりません。"]
        tables.append("\n".join(lines))
    if not tables:
        shown = os.path.relpath(gap_dir, ROOT) if Path(gap_dir).resolve().is_relative_to(ROOT) else gap_dir
        return f"この実行には gap の結果 (`{shown}/<network>.csv`) がありません。"
    return "\n\n".join(tables)


def write_block(page, table, start=START, end=END):
    text = page.read_text(encoding="utf-8")
    if start not in text or end not in text:
        raise SystemExit(f"{page} has no {start} ... {end} block to replace")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    new = head + start + "\n" + table + "\n" + end + tail
    fd, tmp = tempfile.mkstemp(dir=page.parent, suffix=".md.part")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(new)
    os.replace(tmp, page)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    ap.add_argument("--run", default="default", help="run name: results/RUN/ (default: default)")
    ap.add_argument("--summary", help="default: results/RUN/summary.csv")
    ap.add_argument("--runs", help="default: results/RUN/runs")
    ap.add_argument("--gap", help="default: results/RUN/gap")
    ap.add_argument("--page", default=str(PAGE))
    ap.add_argument("--write", action="store_true", help="replace the marked block in the page")
    args = ap.parse_args(argv)
    args.summary = args.summary or str(ROOT / "results" / args.run / "summary.csv")
    args.runs = args.runs or str(ROOT / "results" / args.run / "runs")
    args.gap = args.gap or str(ROOT / "results" / args.run / "gap")
    if not Path(args.summary).exists():
        raise SystemExit(f"{args.summary} does not exist: run the pipeline first (bash scripts/run.sh)")
    table, gap = render(args.summary, args.runs), render_gap(args.gap)
    if args.write:
        write_block(Path(args.page), table)
        write_block(Path(args.page), gap, GAP_START, GAP_END)
    print(table + "\n\n" + gap)


if __name__ == "__main__":
    sys.exit(main())
