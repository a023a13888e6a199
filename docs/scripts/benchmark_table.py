"""ベンチマークの結果のページ (docs/ja/benchmarks.md) の表を、パイプラインの集計から作り直す。

Renders the benchmark page's table from a pipeline run's ``results/<run_name>/summary.csv``
(written by ``bash scripts/run.sh``) and, with ``--write``, replaces the block between the markers
``<!-- benchmark-table:start -->`` and ``<!-- benchmark-table:end -->`` in ``docs/ja/benchmarks.md``
(chapter 16 links to that page); likewise the block ``<!-- gap-table:start -->`` ...
``<!-- gap-table:end -->`` from the same run's ``gap/<network>.json`` (what StuCrs's step spends above
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
    "free bias": "バイアスの計算を省く",
    "free relu": "ReLU を省く",
    "free bias+relu": "バイアスと ReLU を省く",
    "free gather": "ミニバッチの取り出しを省く",
    "free bias+relu+gather": "バイアス・ReLU・取り出しを省く",
    "free pooling": "プーリングを省く",
    "free dropout mask": "ドロップアウトのマスクを毎回は作らない (1 回作って使い回す)",
    "free dropout": "ドロップアウトを省く",
    "free relu+pooling+dropout": "ReLU・プーリング・ドロップアウトを省く",
    "free relu+pooling+masking": "ReLU・プーリングと、マスクを掛ける計算を省く (マスクは本と同じように作る)",
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
    with open(summary_csv, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
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


def _gap_table(json_path):
    """The Markdown of one network's gap result (``gap/<network>.json``, written by the pipeline's
    ``gap`` job): its rows and, for the CNN, the bound of drawing the book's dropout mask."""
    try:
        doc = json.loads(Path(json_path).read_text(encoding="utf-8"))
        rows = doc["rows"]
        cells = [(GAP_VARIANT_NAMES.get(r["variant"], r["variant"]), r["variant"],
                  float(r["per_step_us"]), float(r["over_floor"]), float(r["saving_us"]))
                 for r in rows]
        rounds, steps = rows[0]["rounds"], rows[0]["steps"]
    except (OSError, ValueError, TypeError, KeyError, IndexError) as e:
        raise SystemExit(f"{json_path} is not a gap result with rows ({type(e).__name__}: {e}): "
                         "run the pipeline's gap job again (bash scripts/run.sh)")
    network = doc.get("network") or Path(json_path).stem
    lines = [f"**{NETWORK_NAMES.get(network, network)}** (`gap/{Path(json_path).name}`、"
             f"{rounds} 回 × {steps} ステップの中央値)", "",
             "| 1 ステップの中身 | 1 ステップ [ms] | GEMM 下限比 | StuCrs より短くなった時間 [ms] |",
             "| --- | ---: | ---: | ---: |"]
    for label, variant, per_step_us, over_floor, saving_us in cells:
        saved = "–" if variant in ("stucrs", "floor") else _f(saving_us / 1e3, ".2f")
        lines.append(f"| {label} | {_f(per_step_us / 1e3, '.2f')} | {_f(over_floor, '.2f')} | {saved} |")
    bound = doc.get("mask_bound")
    if bound:
        lines += ["", f"本と同じように `np.random.rand` でマスクを作るかぎり、1 ステップは GEMM 下限の"
                  f"およそ {_f(bound.get('over_floor'), '.2f')} 倍より短くなりません。"
                  "ReLU・プーリング・ドロップアウトをどう書いても、同じです。"]
    return "\n".join(lines)


def render_gap(gap_dir):
    """One table per network of the run's gap results (``gap/<network>.json``), in the order of
    NETWORK_NAMES; a line that says so where the run has none."""
    tables = [_gap_table(Path(gap_dir) / f"{network}.json") for network in NETWORK_NAMES
              if (Path(gap_dir) / f"{network}.json").exists()]
    if not tables:
        shown = os.path.relpath(gap_dir, ROOT) if Path(gap_dir).resolve().is_relative_to(ROOT) else gap_dir
        return f"この実行には gap の結果 (`{shown}/<network>.json`) がありません。"
    return "\n\n".join(tables)


def replace_blocks(page, blocks):
    """Replace each ``(start, end, text)`` block of ``page`` at once: every marker pair is checked
    first and the page is written once (atomically), so a page is never left half updated."""
    text = page.read_text(encoding="utf-8")
    for start, end, _ in blocks:
        if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
            raise SystemExit(f"{page} needs one {start} ... {end} block to replace; nothing was written")
    for start, end, body in blocks:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = head + start + "\n" + body + "\n" + end + tail
    fd, tmp = tempfile.mkstemp(dir=page.parent, suffix=".md.part")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
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
        replace_blocks(Path(args.page), [(START, END, table), (GAP_START, GAP_END, gap)])
    print(table + "\n\n" + gap)


if __name__ == "__main__":
    sys.exit(main())
