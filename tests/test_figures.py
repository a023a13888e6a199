"""The figures' content, checked through matplotlib's objects (not pixels): one legend holding every
variant, each panel labelling its own rows, titles that say what the value is, markers on short lines,
distinct colour-blind-safe colours, a note where curves coincide, and the cores-busy figure."""
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from pipeline_support import fake_result, load_script  # noqa: E402

fig_mod = load_script("figures")
common = load_script("pipeline_common")


@pytest.fixture
def tables(tmp_path):
    """mlp1 with 5 CPU variants (3 repeats), cnn with 4 (no NumPy by hand), like the pipeline."""
    paths = []
    for net, fws in (("mlp1", ["stucrs", "dezero", "tensorflow", "torch", "numpy"]),
                     ("cnn", ["stucrs", "dezero", "tensorflow", "torch"])):
        for i, fw in enumerate(fws):
            for r in range(3):
                # StuCrs and NumPy by hand reach the same accuracy: their curves coincide
                acc0 = 0.9 if fw in ("stucrs", "numpy") else 0.8 + 0.02 * i
                paths.append(fake_result(tmp_path / "runs" / f"{net}-{fw}-cpu-r{r}.json", net, fw, "cpu", r,
                                         wall=2.0 + i + 0.1 * r, epochs=3, acc0=acc0, peak=100 + 10 * i,
                                         samples=3 if fw == "numpy" else 40))
    results = [common.load_result(p) for p in paths]
    return (common.runs_table(results), common.epochs_table(results),
            common.timelines_table(list(zip(paths, results))))


ALL = ["StuCrs (CPU)", "DeZero (CPU)", "TensorFlow (CPU)", "PyTorch (CPU)", "NumPy by hand (CPU)"]


def legend_labels(fig):
    assert len(fig.legends) == 1, "one legend for the whole figure"
    return [t.get_text() for t in fig.legends[0].get_texts()]


def test_one_legend_with_every_variant(tables):
    runs, ep, tl = tables
    for make, arg in ((fig_mod.training_time, runs), (fig_mod.peak_memory, runs), (fig_mod.cpu_timeline, tl),
                      (fig_mod.test_accuracy, ep), (fig_mod.cpu_cores, tl)):
        fig = make(arg)
        assert legend_labels(fig) == ALL, make.__name__
        for ax in fig.axes:
            assert ax.get_legend() is None, "no per-panel legend (it would hold one panel's variants)"


def test_each_panel_labels_its_own_rows(tables):
    runs, _, _ = tables
    for make in (fig_mod.training_time, fig_mod.peak_memory):
        fig = make(runs)
        mlp1, cnn = fig.axes[:2]
        assert [t.get_text() for t in mlp1.get_yticklabels()] == ALL
        assert [t.get_text() for t in cnn.get_yticklabels()] == ALL[:4]  # CNN: no NumPy by hand
        # the value printed beside each bar sits just past that bar (not in a fixed column)
        for ax in (mlp1, cnn):
            bars = [p for p in ax.patches if p.get_width() > 0]
            texts = ax.texts
            assert len(texts) == len(bars)
            for bar, text in zip(sorted(bars, key=lambda b: b.get_y()), sorted(texts, key=lambda t: t.get_position()[1])):
                x = text.get_position()[0]
                assert bar.get_width() <= x <= bar.get_width() * 1.25, (bar.get_width(), x)


def test_titles_name_what_the_value_is(tables):
    runs, _, _ = tables
    title = fig_mod.training_time(runs)._suptitle.get_text()
    assert "total wall time of 3 epochs" in title and "median of 3 repeats" in title
    assert "total wall time" in fig_mod.training_time(runs).axes[0].get_xlabel()
    assert "dots: repeats" in fig_mod.peak_memory(runs).axes[0].get_xlabel()  # dots are drawn: say so


def test_short_lines_have_markers(tables):
    _, _, tl = tables
    fig = fig_mod.cpu_timeline(tl)
    lines = [ln for ln in fig.axes[0].get_lines() if len(ln.get_xdata()) <= fig_mod.SHORT_LINE]
    assert lines and all(ln.get_marker() == "o" for ln in lines)


def test_colours_are_distinct_and_colour_blind_safe():
    colours = [fig_mod.style(fw, "cpu")["color"] for fw in ("stucrs", "dezero", "tensorflow", "torch", "numpy")]
    assert len(set(colours)) == 5
    okabe_ito = {"#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"}
    assert set(colours) <= okabe_ito
    # DeZero and PyTorch were amber and vermilion, hard to tell apart: no longer neighbours
    assert {fig_mod.style("dezero", "cpu")["color"], fig_mod.style("torch", "cpu")["color"]} != {"#E69F00", "#D55E00"}
    assert fig_mod.style("stucrs", "gpu")["linestyle"] == "--" and fig_mod.style("stucrs", "gpu")["hatch"]


def test_coinciding_curves_get_a_note(tables):
    _, ep, _ = tables
    fig = fig_mod.test_accuracy(ep)
    notes = [t.get_text() for t in fig.axes[0].texts]
    assert any("same curve (±0.05 points):\nStuCrs (CPU)\nNumPy by hand (CPU)" in n for n in notes), notes
    curves = {"a": np.array([91.0, 92.0]), "b": np.array([91.0, 92.04]), "c": np.array([91.0, 92.2])}
    assert fig_mod.coinciding(curves) == [["a", "b"]]  # 0.04 points apart: hidden; 0.2: visible


def test_cpu_cores_figure_has_run_panels_and_averages(tables):
    _, _, tl = tables
    fig = fig_mod.cpu_cores(tl)
    assert len(fig.axes) == 3  # mlp1, cnn, average
    avg = fig.axes[-1]
    assert [t.get_text() for t in avg.get_yticklabels()] == ALL
    expected = tl.assign(c=tl["cpu_percent_core"] / 100).groupby("variant")["c"].mean()
    widths = {t.get_text(): p.get_width() for t, p in zip(avg.get_yticklabels(), sorted(avg.patches, key=lambda p: p.get_y()))}
    for label, w in widths.items():
        assert w == pytest.approx(expected[label])
    assert "cores busy" in fig.axes[0].get_ylabel()


@pytest.mark.parametrize("networks", [["cnn"], ["mlp1", "cnn"]])
def test_title_fits_the_figure_and_clears_the_legend(tables, networks):
    """A one-panel figure is narrower than its title: the title wraps inside the figure and the legend
    (beside the panels) does not run into it."""
    runs, ep, tl = tables
    for make, table in ((fig_mod.training_time, runs), (fig_mod.peak_memory, runs),
                        (fig_mod.cpu_timeline, tl), (fig_mod.test_accuracy, ep), (fig_mod.cpu_cores, tl)):
        fig = make(table[table["network"].isin(networks)])
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        title = fig._suptitle.get_window_extent(renderer)
        assert 0 <= title.x0 and title.x1 <= fig.bbox.width, make.__name__
        assert not title.overlaps(fig.legends[0].get_window_extent(renderer)), make.__name__
