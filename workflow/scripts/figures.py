"""Rule ``figures``: PNG + SVG figures from the result JSONs and their CPU timelines.

* ``training_time``  total wall time of the run (all epochs, training + test pass) per network and
                     variant: bar = median over the repeats, dots = every repeat;
* ``cpu_timeline``   CPU use over the timed region (% of the whole machine), one panel per network;
* ``cpu_cores``      cores kept busy by each framework over the whole run (first repeat), and the
                     average number of busy cores per framework (the story of the seed's
                     Task-Manager screenshots);
* ``test_accuracy``  test accuracy after each epoch (mean over repeats, band = min-max), with a note
                     where curves coincide;
* ``peak_memory``    peak resident memory per network and variant;
* ``gpu_vs_cpu``     wall time on the GPU against the CPU per framework, when GPU runs exist
                     (otherwise a figure that says so).

Every figure has one legend built from all its panels; every panel labels its own rows. Colours
are the Okabe-Ito colour-blind-safe palette, one colour per framework (GPU variants hatched or
dashed), the same in every figure. Matplotlib runs headless (Agg); labels are English.
"""

import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from pipeline_common import (DEVICE_ORDER, FRAMEWORK_LABELS, FRAMEWORK_ORDER,  # noqa: E402
                             NETWORK_ORDER, epochs_table, load_result, logging_to, ordered,
                             runs_table, timelines_table)

NAMES = ["training_time", "cpu_timeline", "cpu_cores", "test_accuracy", "peak_memory", "gpu_vs_cpu"]
NETWORK_TITLES = {"mlp1": "MLP 784-1000-10", "mlp2": "MLP 784-1000-1000-10",
                  "cnn": "CNN (conv 32 3×3, dense 128)"}
# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency
FRAMEWORK_COLORS = {"stucrs": "#0072B2", "stucrs-book": "#56B4E9", "dezero": "#CC79A7",
                    "tensorflow": "#009E73", "torch": "#D55E00", "numpy": "#000000", "floor": "#999999"}
SHORT_LINE = 30  # lines with at most this many points get markers (a single sample stays visible)


def _variant_keys(df):
    """(framework, device, label) of the variants present, in the canonical order."""
    keys = sorted({(f, d) for f, d in zip(df["framework"], df["device"])},
                  key=lambda fd: (FRAMEWORK_ORDER.index(fd[0]) if fd[0] in FRAMEWORK_ORDER else 99,
                                  DEVICE_ORDER.index(fd[1]) if fd[1] in DEVICE_ORDER else 99))
    labels = dict(zip(zip(df["framework"], df["device"]), df["variant"]))
    return [(f, d, labels[(f, d)]) for f, d in keys]


def style(framework, device):
    """Colour by framework; GPU variants dashed (lines) and hatched (bars)."""
    return {"color": FRAMEWORK_COLORS.get(framework, "#E69F00"),
            "linestyle": "--" if device == "gpu" else "-",
            "hatch": "//" if device == "gpu" else None}


def _save(fig, outputs, name):
    for ext in ("png", "svg"):
        path = outputs["%s_%s" % (name, ext)]
        fig.savefig(path, dpi=150 if ext == "png" else None, bbox_inches="tight")
    plt.close(fig)


def note_figure(title, text):
    fig, ax = plt.subplots(figsize=(7, 2.4), layout="constrained")
    ax.axis("off")
    ax.set_title(title, fontsize=13)
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=11,
            transform=ax.transAxes)
    return fig


def _panels(n, height, width=5.2):
    fig, axes = plt.subplots(1, n, figsize=(width * n + 2.2, height), squeeze=False, layout="constrained")
    return fig, list(axes[0])


def _legend(fig, keys, kind):
    """One legend for the whole figure, holding every variant of every panel."""
    handles = []
    for fw, dev, label in keys:
        st = style(fw, dev)
        if kind == "bar":
            handles.append(Patch(facecolor=st["color"], alpha=0.6, hatch=st["hatch"], edgecolor="black",
                                 label=label))
        else:
            handles.append(Line2D([], [], color=st["color"], linestyle=st["linestyle"], marker="o",
                                  markersize=4, label=label))
    # beside the panels, centred: at the top it would run into a title that spans the figure
    fig.legend(handles=handles, loc="outside right center", title="variant", frameon=False)


def _title(fig, title):
    """The figure's title, wrapped at the figure's edges (a one-panel figure is narrower than it)."""
    fig.suptitle(title, fontsize=13, wrap=True)


def _repeats_text(runs):
    n_rep = runs[runs["status"] == "ok"].groupby(["network", "variant"]).size()
    if not len(n_rep):
        return "no repeats"
    lo, hi = int(n_rep.min()), int(n_rep.max())
    return "%d repeat%s" % (hi, "" if hi == 1 else "s") if lo == hi else "%d–%d repeats" % (lo, hi)


def _epochs_text(runs):
    ok = runs[runs["status"] == "ok"]
    epochs = sorted({int(e) for e in ok["epochs"].dropna()}) if "epochs" in ok else []
    if not epochs:
        return "all epochs"
    return "%d epoch%s" % (epochs[0], "" if epochs[0] == 1 else "s") if len(epochs) == 1 else \
        "%d–%d epochs" % (epochs[0], epochs[-1])


def bar_with_repeats(runs, value, xlabel, title, fmt="%.2f"):
    ok = runs[(runs["status"] == "ok") & runs[value].notna()]
    if ok.empty:
        return note_figure(title, "No successful runs to show.")
    networks = ordered(ok["network"], NETWORK_ORDER)
    keys = _variant_keys(ok)
    rows = max(len(_variant_keys(ok[ok["network"] == n])) for n in networks)
    fig, axes = _panels(len(networks), 1.4 + 0.5 * rows)
    for ax, net in zip(axes, networks):
        sub = ok[ok["network"] == net]
        here = [k for k in keys if k in set(_variant_keys(sub))]
        xmax = float(sub[value].max()) or 1.0
        for i, (fw, dev, label) in enumerate(here):
            vals = sub[(sub["framework"] == fw) & (sub["device"] == dev)][value].to_numpy(dtype=float)
            med = float(np.median(vals))
            st = style(fw, dev)
            ax.barh(i, med, color=st["color"], alpha=0.6, hatch=st["hatch"], edgecolor="black", height=0.7)
            jitter = np.linspace(-0.15, 0.15, len(vals)) if len(vals) > 1 else np.zeros(1)
            ax.plot(vals, i + jitter, "o", color="black", markersize=4)
            # the value right after the end of its own bar (or its farthest dot)
            ax.text(max(med, float(vals.max())) + 0.02 * xmax, i, fmt % med, va="center", ha="left", fontsize=9)
        ax.set_yticks(range(len(here)), [label for _, _, label in here])  # every panel its own rows
        ax.invert_yaxis()
        ax.set_xlim(0, xmax * 1.25)
        ax.set_title(NETWORK_TITLES.get(net, net), fontsize=11)
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", alpha=0.3)
    _legend(fig, keys, "bar")
    _title(fig, title)
    return fig


def training_time(runs):
    return bar_with_repeats(
        runs, "wall_time_s", "total wall time [s] (bar: median, dots: repeats)",
        "Training time: total wall time of %s (training + test pass), median of %s"
        % (_epochs_text(runs), _repeats_text(runs)))


def peak_memory(runs):
    return bar_with_repeats(runs, "peak_rss_mb", "peak resident memory [MB] (bar: median, dots: repeats)",
                            "Peak memory of the training process, median of %s" % _repeats_text(runs),
                            fmt="%.0f")


def _line(ax, x, y, fw, dev, **kw):
    st = style(fw, dev)
    marker = "o" if len(x) <= SHORT_LINE else None
    ax.plot(x, y, color=st["color"], linestyle=st["linestyle"], marker=marker, markersize=4, **kw)


def cpu_timeline(tl):
    title = "CPU use during training (% of all cores), one line per repeat"
    if tl.empty:
        return note_figure(title, "No CPU timeline samples.")
    networks = ordered(tl["network"], NETWORK_ORDER)
    keys = _variant_keys(tl)
    fig, axes = _panels(len(networks), 3.8)
    for ax, net in zip(axes, networks):
        sub = tl[tl["network"] == net]
        for fw, dev, label in keys:
            for _, run in sub[(sub["framework"] == fw) & (sub["device"] == dev)].groupby("job_id"):
                _line(ax, run["t_s"].to_numpy(), run["cpu_percent_machine"].to_numpy(), fw, dev,
                      linewidth=1.1, alpha=0.85)
        ax.set_title(NETWORK_TITLES.get(net, net), fontsize=11)
        ax.set_xlabel("time since start of training [s]")
        ax.set_ylabel("CPU use [% of all cores]")
        ax.set_ylim(0, 105)
    _legend(fig, keys, "line")
    _title(fig, title)
    return fig


def cpu_cores(tl):
    """Cores busy over the whole run per framework (first repeat), and the average per framework."""
    title = "Cores kept busy by each framework"
    if tl.empty:
        return note_figure(title, "No CPU timeline samples.")
    tl = tl.assign(cores=tl["cpu_percent_core"] / 100.0)
    first = tl[tl["repeat"] == tl.groupby(["network", "variant"])["repeat"].transform("min")]
    networks = ordered(tl["network"], NETWORK_ORDER)
    keys = _variant_keys(tl)
    fig, axes = _panels(len(networks) + 1, 3.8, width=4.6)
    for ax, net in zip(axes, networks):
        sub = first[first["network"] == net]
        for fw, dev, label in keys:
            run = sub[(sub["framework"] == fw) & (sub["device"] == dev)]
            if len(run):
                _line(ax, run["t_s"].to_numpy(), run["cores"].to_numpy(), fw, dev, linewidth=1.2)
        ax.set_title(NETWORK_TITLES.get(net, net), fontsize=11)
        ax.set_xlabel("time since start of training [s]")
        ax.set_ylabel("cores busy")
        ax.set_ylim(bottom=0)
    ax = axes[-1]
    means = [(fw, dev, label, float(tl[(tl["framework"] == fw) & (tl["device"] == dev)]["cores"].mean()))
             for fw, dev, label in keys]
    for i, (fw, dev, label, mean) in enumerate(means):
        if not np.isfinite(mean):
            continue
        st = style(fw, dev)
        ax.barh(i, mean, color=st["color"], alpha=0.6, hatch=st["hatch"], edgecolor="black", height=0.7)
        ax.text(mean + 0.03, i, "%.2f" % mean, va="center", ha="left", fontsize=9)
    ax.set_yticks(range(len(means)), [m[2] for m in means])
    ax.invert_yaxis()
    finite = [m[3] for m in means if np.isfinite(m[3])]
    ax.set_xlim(0, max(finite + [1.0]) * 1.3)
    ax.set_xlabel("average cores busy (all networks, all repeats)")
    ax.set_title("Average", fontsize=11)
    _legend(fig, keys, "line")
    _title(fig, title + ": over the whole run (first repeat) and on average")
    return fig


def coinciding(curves, tol=0.05):
    """Groups of labels whose curves (equal-length arrays, in percent) lie within `tol` percentage
    points of each other at every epoch: drawn on top of each other, the last one hides the rest."""
    groups, used = [], set()
    labels = list(curves)
    for i, a in enumerate(labels):
        if a in used:
            continue
        same = [a] + [b for b in labels[i + 1:] if b not in used and len(curves[a]) == len(curves[b])
                      and np.allclose(curves[a], curves[b], rtol=0, atol=tol)]
        if len(same) > 1:
            groups.append(same)
            used.update(same)
    return groups


def test_accuracy(ep):
    title = "Test accuracy after each epoch (line: mean, band: min–max over repeats)"
    ep = ep[ep["test_acc"].notna()].copy()
    if ep.empty:
        return note_figure(title, "No per-epoch test accuracy recorded.")
    ep["test_acc_pct"] = 100 * ep["test_acc"]
    networks = ordered(ep["network"], NETWORK_ORDER)
    keys = _variant_keys(ep)
    fig, axes = _panels(len(networks), 4.0)
    for ax, net in zip(axes, networks):
        sub = ep[ep["network"] == net]
        curves = {}
        for fw, dev, label in keys:
            v = sub[(sub["framework"] == fw) & (sub["device"] == dev)]
            if v.empty:
                continue
            g = v.groupby("epoch")["test_acc_pct"]
            x, mean = g.mean().index.to_numpy(), g.mean().to_numpy()
            _line(ax, x, mean, fw, dev, linewidth=1.4)
            ax.fill_between(x, g.min().to_numpy(), g.max().to_numpy(), color=style(fw, dev)["color"], alpha=0.15)
            curves[label] = mean
        ax.set_title(NETWORK_TITLES.get(net, net), fontsize=11)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy [%]")
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        lo, hi = float(sub["test_acc_pct"].min()), float(sub["test_acc_pct"].max())
        if hi - lo < 2:  # nearly equal curves: show a readable range around them
            mid = (hi + lo) / 2
            ax.set_ylim(max(0, mid - 2), min(100, mid + 2))
        epochs = sorted(set(sub["epoch"]))
        ax.set_xticks(epochs if len(epochs) <= 12 else epochs[:: max(1, len(epochs) // 10)])
        groups = coinciding(curves)
        if groups:  # a line drawn over another hides it: say so (top left, above the rising curves)
            ax.text(0.02, 0.98, "\n\n".join("same curve (±0.05 points):\n" + "\n".join(g) for g in groups),
                    transform=ax.transAxes, fontsize=7, va="top", ha="left",
                    bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "#999999"})
    _legend(fig, keys, "line")
    _title(fig, title)
    return fig


def gpu_vs_cpu(runs):
    title = "GPU against CPU: total training time"
    ok = runs[(runs["status"] == "ok") & runs["wall_time_s"].notna()]
    gpu_fw = set(ok[ok["device"] == "gpu"]["framework"])
    if not gpu_fw:
        return note_figure(title, "No GPU runs in these results: GPU variants are planned only "
                           "where a GPU is found\n(nvidia-smi or CuPy), or with --config gpu=true.")
    both = ok[ok["framework"].isin(gpu_fw)]
    networks = ordered(both["network"], NETWORK_ORDER)
    keys = _variant_keys(both)
    fig, axes = _panels(len(networks), 1.4 + 0.5 * len(keys))
    for ax, net in zip(axes, networks):
        sub = both[both["network"] == net]
        here = [k for k in keys if k in set(_variant_keys(sub))]
        for i, (fw, dev, label) in enumerate(here):
            vals = sub[(sub["framework"] == fw) & (sub["device"] == dev)]["wall_time_s"].to_numpy(dtype=float)
            st = style(fw, dev)
            med = float(np.median(vals))
            ax.barh(i, med, xerr=[[med - vals.min()], [vals.max() - med]], color=st["color"], alpha=0.6,
                    hatch=st["hatch"], edgecolor="black", height=0.7)
        ax.set_yticks(range(len(here)), [label for _, _, label in here])
        ax.invert_yaxis()
        ax.set_title(NETWORK_TITLES.get(net, net), fontsize=11)
        ax.set_xlabel("total wall time [s] (median, whiskers: min–max)")
    _legend(fig, keys, "bar")
    _title(fig, title)
    return fig


def main(run_paths, outputs):
    plt.rcParams.update({"axes.grid": True, "grid.alpha": 0.3, "font.size": 10})
    results = [load_result(p) for p in run_paths]
    runs = runs_table(results)
    ep = epochs_table(results)
    tl = timelines_table(list(zip(run_paths, results)))
    makers = {"training_time": lambda: training_time(runs),
              "cpu_timeline": lambda: cpu_timeline(tl),
              "cpu_cores": lambda: cpu_cores(tl),
              "test_accuracy": lambda: test_accuracy(ep),
              "peak_memory": lambda: peak_memory(runs),
              "gpu_vs_cpu": lambda: gpu_vs_cpu(runs)}
    for name in NAMES:
        _save(makers[name](), outputs, name)
        print("figure %s written" % name)


if __name__ == "__main__":
    if "snakemake" in globals():
        smk = snakemake  # noqa: F821
        with logging_to(smk.log[0]):
            main(list(smk.input.runs), dict(smk.output.items()))
    else:
        if len(sys.argv) < 3:
            sys.exit("usage: figures.py OUT_DIR RESULT.json...")
        import os
        out = sys.argv[1]
        os.makedirs(out, exist_ok=True)
        main(sys.argv[2:], {"%s_%s" % (n, e): os.path.join(out, "%s.%s" % (n, e))
                            for n in NAMES for e in ("png", "svg")})
