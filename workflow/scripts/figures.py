"""Rule ``figures``: PNG + SVG figures from the result JSONs and their CPU timelines.

* ``training_time``  wall time per network and variant: bar = median, dots = every repeat;
* ``cpu_timeline``   CPU use over the timed region (% of the whole machine), one panel per network;
* ``test_accuracy``  test accuracy after each epoch (mean over repeats, band = min-max);
* ``peak_memory``    peak resident memory per network and variant;
* ``gpu_vs_cpu``     wall time on the GPU against the CPU per framework, when GPU runs exist
                     (otherwise a figure that says so).

Matplotlib runs headless (Agg); labels are English, so no CJK font is needed.
"""

import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from pipeline_common import (DEVICE_ORDER, FRAMEWORK_LABELS, FRAMEWORK_ORDER,  # noqa: E402
                             NETWORK_ORDER, epochs_table, load_result, logging_to, ordered,
                             runs_table, timelines_table)

NAMES = ["training_time", "cpu_timeline", "test_accuracy", "peak_memory", "gpu_vs_cpu"]
NETWORK_TITLES = {"mlp1": "MLP 784-1000-10", "mlp2": "MLP 784-1000-1000-10",
                  "cnn": "CNN (conv 32 3×3, dense 128)"}


def _variant_order(df):
    keys = sorted({(f, d) for f, d in zip(df["framework"], df["device"])},
                  key=lambda fd: (FRAMEWORK_ORDER.index(fd[0]) if fd[0] in FRAMEWORK_ORDER else 99,
                                  DEVICE_ORDER.index(fd[1]) if fd[1] in DEVICE_ORDER else 99))
    labels = dict(zip(zip(df["framework"], df["device"]), df["variant"]))
    return [labels[k] for k in keys]


def _palette(variants):
    colors = sns.color_palette("colorblind", n_colors=max(len(variants), 3))
    return dict(zip(variants, colors))


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


def _panels(networks, height):
    n = len(networks)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, height), squeeze=False,
                             layout="constrained")
    return fig, axes[0]


def bar_with_repeats(runs, value, xlabel, title, fmt="%.2f"):
    ok = runs[(runs["status"] == "ok") & runs[value].notna()]
    if ok.empty:
        return note_figure(title, "No successful runs to show.")
    networks = ordered(ok["network"], NETWORK_ORDER)
    variants = _variant_order(ok)
    pal = _palette(variants)
    fig, axes = _panels(networks, 1.2 + 0.55 * len(variants))
    for ax, net in zip(axes, networks):
        sub = ok[ok["network"] == net]
        order = [v for v in variants if v in set(sub["variant"])]
        sns.barplot(data=sub, y="variant", x=value, hue="variant", order=order,
                    hue_order=order, palette=pal, estimator="median", errorbar=None,
                    alpha=0.55, legend=False, ax=ax)
        sns.stripplot(data=sub, y="variant", x=value, order=order, color="black", size=5,
                      jitter=0.15, ax=ax)
        med = sub.groupby("variant")[value].median()
        xmax = float(sub[value].max())
        for i, v in enumerate(order):
            ax.text(xmax * 1.05, i, fmt % med[v], va="center", ha="left", fontsize=9)
        ax.set_xlim(0, xmax * 1.3 if xmax > 0 else 1)
        ax.set_title(NETWORK_TITLES.get(net, net), fontsize=11)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("")
        if ax is not axes[0]:
            ax.set_yticklabels([])
    fig.suptitle(title, fontsize=13)
    return fig


def training_time(runs):
    n_rep = runs[runs["status"] == "ok"].groupby(["network", "variant"]).size()
    reps = "%d" % n_rep.max() if len(n_rep) and n_rep.min() == n_rep.max() else "all"
    return bar_with_repeats(runs, "wall_time_s", "wall time [s] (bar: median, dots: repeats)",
                            "Training time (training + test pass per epoch), %s repeat(s)" % reps)


def peak_memory(runs):
    return bar_with_repeats(runs, "peak_rss_mb", "peak resident memory [MB] (bar: median)",
                            "Peak memory of the training process", fmt="%.0f")


def cpu_timeline(tl):
    title = "CPU usage during training"
    if tl.empty:
        return note_figure(title, "No CPU timeline samples.")
    networks = ordered(tl["network"], NETWORK_ORDER)
    variants = _variant_order(tl)
    pal = _palette(variants)
    fig, axes = _panels(networks, 3.8)
    for ax, net in zip(axes, networks):
        sub = tl[tl["network"] == net]
        sns.lineplot(data=sub, x="t_s", y="cpu_percent_machine", hue="variant",
                     hue_order=[v for v in variants if v in set(sub["variant"])], palette=pal,
                     units="job_id", estimator=None, linewidth=1.1, alpha=0.85, ax=ax,
                     legend=ax is axes[-1])
        ax.set_title(NETWORK_TITLES.get(net, net), fontsize=11)
        ax.set_xlabel("time since start of training [s]")
        ax.set_ylabel("CPU use [% of all cores]")
        ax.set_ylim(0, 105)
    leg = axes[-1].get_legend()
    if leg is not None:
        sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1.02, 1), title="variant",
                        frameon=False)
    fig.suptitle(title + " (one line per repeat)", fontsize=13)
    return fig


def test_accuracy(ep):
    title = "Test accuracy after each epoch"
    ep = ep[ep["test_acc"].notna()].copy()
    if ep.empty:
        return note_figure(title, "No per-epoch test accuracy recorded.")
    ep["test_acc_pct"] = 100 * ep["test_acc"]
    networks = ordered(ep["network"], NETWORK_ORDER)
    variants = _variant_order(ep)
    pal = _palette(variants)
    fig, axes = _panels(networks, 3.8)
    for ax, net in zip(axes, networks):
        sub = ep[ep["network"] == net]
        sns.lineplot(data=sub, x="epoch", y="test_acc_pct", hue="variant",
                     hue_order=[v for v in variants if v in set(sub["variant"])], palette=pal,
                     estimator="mean", errorbar=("pi", 100), marker="o", ax=ax,
                     legend=ax is axes[-1])
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
    if axes[-1].get_legend() is not None:
        sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1.02, 1), title="variant",
                        frameon=False)
    fig.suptitle(title + " (line: mean, band: min–max over repeats)", fontsize=13)
    return fig


def gpu_vs_cpu(runs):
    title = "GPU against CPU"
    ok = runs[(runs["status"] == "ok") & runs["wall_time_s"].notna()]
    gpu_fw = set(ok[ok["device"] == "gpu"]["framework"])
    both = ok[ok["framework"].isin(gpu_fw)]
    if not gpu_fw:
        return note_figure(title, "No GPU runs in these results: GPU variants are planned only "
                           "where a GPU is found\n(nvidia-smi or CuPy), or with --config gpu=true.")
    both = both.assign(fw_label=[FRAMEWORK_LABELS.get(f, f) for f in both["framework"]],
                       device_label=[d.upper() for d in both["device"]])
    networks = ordered(both["network"], NETWORK_ORDER)
    fws = [FRAMEWORK_LABELS.get(f, f) for f in ordered(both["framework"], FRAMEWORK_ORDER)]
    fig, axes = _panels(networks, 1.2 + 0.7 * len(fws))
    for ax, net in zip(axes, networks):
        sub = both[both["network"] == net]
        sns.barplot(data=sub, y="fw_label", x="wall_time_s", hue="device_label",
                    order=[f for f in fws if f in set(sub["fw_label"])], hue_order=["CPU", "GPU"],
                    estimator="median", errorbar=("pi", 100), ax=ax, legend=ax is axes[-1])
        ax.set_title(NETWORK_TITLES.get(net, net), fontsize=11)
        ax.set_xlabel("wall time [s] (median, whiskers: min–max)")
        ax.set_ylabel("")
    if axes[-1].get_legend() is not None:
        sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1.02, 1), title="device",
                        frameon=False)
    fig.suptitle(title + ": training time", fontsize=13)
    return fig


def main(run_paths, outputs):
    sns.set_theme(style="whitegrid", context="notebook")
    results = [load_result(p) for p in run_paths]
    runs = runs_table(results)
    ep = epochs_table(results)
    tl = timelines_table(list(zip(run_paths, results)))
    makers = {"training_time": lambda: training_time(runs),
              "cpu_timeline": lambda: cpu_timeline(tl),
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
