"""Rule ``aggregate``: ``results/RUN/summary.{csv,md,html}`` from the result JSONs.

The HTML file is the same table as the Markdown one, rendered for the Snakemake report. A smoke-test
preset (``smoke_test: true``) gets a banner saying that its timings and accuracies are not results.

One row per network x framework x device: median wall time with min-max over the repeats,
speed-up against DeZero on the CPU (same network; > 1 means faster than DeZero), final test
accuracy, CPU time and peak memory (medians), the GEMM floor of the network when its floor
runs exist (the median of its repeats; the floor itself is listed as a row of framework
``floor``), the ratio to the floor timed inside each run's own process (``over_paired_floor``: per run the
median of epoch / the floor epoch right after it, then the median over the repeats; runs with
``--paired-floor-epochs`` only), and the OpenBLAS kernel
the NumPy-based variants multiplied with (``blas_kernel``; see workflow/bench/blas_kernel.py).
"""

import sys
from pathlib import Path

from pipeline_common import (DEVICE_ORDER, FRAMEWORK_ORDER, NETWORK_ORDER,
                             atomic_write_text, is_finite, load_result, logging_to, ordered,
                             runs_table)
from workflow.bench.contract import source_label  # noqa: E402 - on the path through pipeline_common

COLUMNS = ["network", "framework", "device", "variant", "repeats_ok", "repeats_total",
           "wall_time_median_s", "wall_time_min_s", "wall_time_max_s", "speedup_vs_dezero",
           "test_acc", "cpu_time_median_s", "peak_rss_median_mb", "gemm_floor_s",
           "wall_over_floor", "over_paired_floor", "blas_kernel", "status"]


def summarise(results, floors=()):
    """The summary rows. The floor's repeats are rows of framework ``floor`` like any variant's:
    their median is the network's floor (``gemm_floor_s``) that ``wall_over_floor`` divides by."""
    import pandas as pd

    runs = runs_table(list(results) + list(floors))
    if runs.empty:
        return pd.DataFrame(columns=COLUMNS)
    nan = float("nan")
    rows = []
    for net in ordered(runs["network"], NETWORK_ORDER):
        sub = runs[runs["network"] == net]
        ok = sub[(sub["status"] == "ok") & sub["wall_time_s"].notna()]

        def cpu_median(framework):
            w = ok[(ok["framework"] == framework) & (ok["device"] == "cpu")]["wall_time_s"]
            return float(w.median()) if len(w) else nan

        dz_median, floor = cpu_median("dezero"), cpu_median("floor")
        for fw in ordered(sub["framework"], FRAMEWORK_ORDER):  # the floor comes last
            for dev in ordered(sub[sub["framework"] == fw]["device"], DEVICE_ORDER):
                allr = sub[(sub["framework"] == fw) & (sub["device"] == dev)]
                r = ok[(ok["framework"] == fw) & (ok["device"] == dev)]
                statuses = sorted(set(allr["status"]))
                med = float(r["wall_time_s"].median()) if len(r) else nan
                paired = r["over_paired_floor"].dropna()
                rows.append({
                    "network": net, "framework": fw, "device": dev,
                    "variant": allr["variant"].iloc[0],
                    "repeats_ok": int(len(r)), "repeats_total": int(len(allr)),
                    "wall_time_median_s": med,
                    "wall_time_min_s": float(r["wall_time_s"].min()) if len(r) else nan,
                    "wall_time_max_s": float(r["wall_time_s"].max()) if len(r) else nan,
                    "speedup_vs_dezero": dz_median / med if len(r) and dz_median == dz_median
                    else nan,
                    "test_acc": float(r["test_acc"].median()) if len(r) else nan,
                    "cpu_time_median_s": float(r["cpu_time_s"].median()) if len(r) else nan,
                    "peak_rss_median_mb": float(r["peak_rss_mb"].median()) if len(r) else nan,
                    "gemm_floor_s": floor,
                    "wall_over_floor": med / floor if len(r) and floor == floor and floor > 0
                    else nan,
                    "over_paired_floor": float(paired.median()) if len(paired) else nan,
                    "blas_kernel": ",".join(sorted({k for k in r["blas_kernel"] if k})),
                    "status": ",".join(statuses),
                })
    return pd.DataFrame(rows, columns=COLUMNS)


def _fmt(x, spec, suffix=""):
    return (format(x, spec) + suffix) if is_finite(x) else "–"


SMOKE_BANNER = ("Smoke test (preset `{run}`): a few examples and one epoch, only to check that the "
                "pipeline runs. Its timings and accuracies are not results; the default preset "
                "(`results/default/`) measures.")

INTRO = (
    "Median over the repeats, with the range (min–max) in brackets. Speed-up: DeZero (CPU) "
    "median wall time divided by the variant's (> 1 is faster than DeZero). Accuracy: final "
    "test accuracy (median). CPU time: user + system of the process and its children over "
    "the timed region. Floor: the network's GEMMs alone, timed with NumPy (lower bound; median "
    "of its repeats). × floor, same process: each run's median epoch over the floor's epochs "
    "timed inside that run's process (median over the repeats; StuCrs and NumPy by hand), "
    "which a slow phase of a shared machine slows alike. "
    "NumPy by hand: the dense networks' training step written out in plain NumPy, no "
    "framework (what plain NumPy spends; StuCrs updates through the BLAS: axpy, and gemm for "
    "the dense weights). BLAS kernel: the OpenBLAS kernel NumPy "
    "multiplied with, for the variants whose products go through NumPy (PyTorch and "
    "TensorFlow use their own libraries).")

HEADERS = ["network", "framework (device)", "repeats", "wall time [s]", "speed-up vs DeZero",
           "test accuracy", "CPU time [s]", "peak memory [MB]", "× GEMM floor",
           "× floor, same process", "BLAS kernel"]
RIGHT = {2, 3, 4, 5, 6, 7, 8, 9}  # numeric columns


def table_rows(df):
    """The summary's cells as text, one list per row (shared by the Markdown and HTML tables)."""
    rows = []
    for _, r in df.iterrows():
        wall = _fmt(r["wall_time_median_s"], ".2f")
        if r["repeats_ok"] > 1:
            wall += " (%s–%s)" % (_fmt(r["wall_time_min_s"], ".2f"), _fmt(r["wall_time_max_s"], ".2f"))
        reps = "%d/%d" % (r["repeats_ok"], r["repeats_total"])
        if r["status"] not in ("ok", ""):
            reps += " (%s)" % r["status"]
        rows.append([
            r["network"], r["variant"], reps, wall, _fmt(r["speedup_vs_dezero"], ".2f", "×"),
            _fmt(100 * r["test_acc"], ".2f", " %") if is_finite(r["test_acc"]) else "–",
            _fmt(r["cpu_time_median_s"], ".2f"), _fmt(r["peak_rss_median_mb"], ".0f"),
            _fmt(r["wall_over_floor"], ".1f", "×"), _fmt(r["over_paired_floor"], ".2f", "×"),
            r["blas_kernel"] or "–"])
    return rows


def provenance(results):
    """Where and from what code the runs were measured, from their recorded environments: the CPU
    (cores, threads) and the git commit (``contract.source_label``: flagged where tracked files had
    uncommitted changes). A run made of several machines or commits lists each, so that it cannot
    pass for one."""
    envs = [r.get("environment") or {} for r in results]
    envs = [e for e in envs if e]
    if not envs:
        return ""
    machines = sorted({"%s (%s cores, %s threads)" % (e.get("cpu_model") or "unknown CPU",
                                                      e.get("cores") or "?", e.get("threads") or "?")
                       for e in envs})
    commits = sorted({source_label(e) for e in envs})
    return "Measured on %s; code: commit %s." % ("; ".join(machines), ", ".join(commits))


def to_markdown(df, n_results, run_name="default", smoke_test=False, measured=""):
    lines = ["# Benchmark summary", ""]
    if smoke_test:
        lines += ["> **" + SMOKE_BANNER.format(run=run_name) + "**", ""]
    lines += [INTRO, "",
              "| " + " | ".join(HEADERS) + " |",
              "| " + " | ".join("---:" if i in RIGHT else "---" for i in range(len(HEADERS))) + " |"]
    for cells in table_rows(df):
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "%d result file(s). Machine-readable: `results/%s/summary.csv`." % (n_results, run_name)
              + (" " + measured if measured else ""), ""]
    return "\n".join(lines)


def to_html(df, n_results, run_name="default", smoke_test=False, measured=""):
    """A standalone HTML page with the summary table (shown as a table in the Snakemake report)."""
    from html import escape

    def row(cells, tag):
        return "<tr>" + "".join('<%s%s>%s</%s>' % (tag, ' class="num"' if i in RIGHT else "", escape(str(c)), tag)
                                for i, c in enumerate(cells)) + "</tr>"

    import re

    banner = ('<p class="smoke"><strong>%s</strong></p>'
              % re.sub(r"`([^`]*)`", r"<code>\1</code>", escape(SMOKE_BANNER.format(run=run_name)))
              if smoke_test else "")
    body = "\n".join(row(cells, "td") for cells in table_rows(df))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>Benchmark summary (%s)</title><style>"
            "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
            "th,td{border:1px solid #bbb;padding:3px 8px}th{background:#eee}td.num,th.num{text-align:right}"
            ".smoke{background:#fff3cd;border:1px solid #e0b000;padding:6px}"
            "</style></head><body>\n<h1>Benchmark summary: %s</h1>\n%s\n<p>%s</p>\n"
            "<table id=\"summary\">\n<thead>%s</thead>\n<tbody>\n%s\n</tbody></table>\n"
            "<p>%d result file(s). Machine-readable: results/%s/summary.csv.%s</p>\n</body></html>\n"
            % (escape(run_name), escape(run_name), banner, escape(INTRO), row(HEADERS, "th"), body,
               n_results, escape(run_name), " " + escape(measured) if measured else ""))


def main(run_paths, floor_paths, csv_out, md_out, html_out=None, run_name="default", smoke_test=False):
    results = [load_result(p) for p in run_paths]
    floors = [load_result(p) for p in floor_paths]
    df = summarise(results, floors)
    measured = provenance(results + floors)
    atomic_write_text(csv_out, df.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(md_out, to_markdown(df, len(results), run_name, smoke_test, measured))
    if html_out:
        atomic_write_text(html_out, to_html(df, len(results), run_name, smoke_test, measured))
    print("summary: %d rows from %d runs and %d floor runs -> %s, %s"
          % (len(df), len(results), len(floors), csv_out, md_out))


if __name__ == "__main__":
    if "snakemake" in globals():
        smk = snakemake  # noqa: F821
        with logging_to(smk.log[0]):
            main(list(smk.input.runs), list(smk.input.floors), smk.output.csv, smk.output.md,
                 smk.output.html, smk.config["run_name"], bool(smk.config["smoke_test"]))
    else:
        if len(sys.argv) < 3:
            sys.exit("usage: aggregate.py OUT_PREFIX RESULT.json... (floor results: floor/*.json)")
        prefix, paths = sys.argv[1], sys.argv[2:]
        floor_paths = [p for p in paths if Path(p).parent.name == "floor"]
        main([p for p in paths if p not in floor_paths], floor_paths,
             prefix + ".csv", prefix + ".md", prefix + ".html")
