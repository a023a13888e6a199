"""docs/scripts/benchmark_table.py: chapter 16's table is rendered from results/summary.csv."""
import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("benchmark_table", ROOT / "docs" / "scripts" / "benchmark_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _summary(path):
    cols = ["network", "framework", "device", "variant", "repeats_ok", "repeats_total",
            "wall_time_median_s", "wall_time_min_s", "wall_time_max_s", "speedup_vs_dezero",
            "test_acc", "cpu_time_median_s", "peak_rss_median_mb", "gemm_floor_s", "wall_over_floor",
            "over_paired_floor", "blas_kernel", "status"]
    rows = [["mlp2", "stucrs", "cpu", "stucrs-cpu", 3, 3, 31.5, 30.9, 32.4, 2.77, 0.9296, 62.1, 279, 23.7, 1.33, 1.07, "SkylakeX", "ok"],
            ["mlp2", "dezero", "cpu", "dezero-cpu", 3, 3, 87.2, 86.0, 90.1, 1.0, 0.9296, 170.0, 329, 23.7, 3.68, "", "Haswell", "ok"]]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        w.writerows(rows)


def test_render_and_write_replace_only_the_marked_block(tmp_path):
    mod = _load()
    _summary(tmp_path / "summary.csv")
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "a.json").write_text(json.dumps({"status": "ok", "environment": {
        "cpu_model": "Test CPU", "cores": 2, "threads": 2}}), encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text("before\n" + mod.START + "\nold table\n" + mod.END + "\nafter\n" + mod.GAP_START
                    + mod.GAP_END + "\n", encoding="utf-8")
    mod.main(["--summary", str(tmp_path / "summary.csv"), "--runs", str(runs), "--page", str(page),
              "--gap", str(tmp_path / "gap"), "--write"])  # a run without gap results
    text = page.read_text(encoding="utf-8")
    assert text.startswith("before\n") and "\nafter\n" in text and "old table" not in text
    assert "gap の結果" in text.split(mod.GAP_START)[1]  # this run has no gap tables: said so
    assert "| ② 784-1000-1000-10 | stucrs-cpu | 3/3 | 31.50 (30.90–32.40) | 2.77× | 1.33 | 1.07 | 0.9296 | 62.1 | 279 | SkylakeX |" in text
    assert "| 3.68 | – | 0.9296 | 170.0 | 329 | Haswell |" in text
    assert "Test CPU" in text and "2 コア" in text


def _gap_json(path, network, rows, mask_bound=None):
    keys = ["network", "variant", "free", "per_step_us", "over_floor", "saving_us", "rounds", "steps"]
    doc = {"network": network, "rows": [dict(zip(keys, [network, *r])) for r in rows],
           "mask_bound": mask_bound}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return doc


def test_the_gap_block_is_rendered_from_the_runs_gap_results(tmp_path):
    mod = _load()
    _summary(tmp_path / "summary.csv")
    gap = tmp_path / "gap"
    gap.mkdir()
    doc = _gap_json(gap / "cnn.json", "cnn", [
        ["stucrs", "nothing", 25829.0, 4.968, 0.0, 10, 100],
        ["free pooling", "pooling", 18449.0, 3.549, 7380.0, 10, 100],
        ["free relu+pooling+masking", "relu+pooling+masking", 10900.0, 2.0966, 14929.0, 10, 100],
        ["floor", "", 5199.0, 1.0, 20630.0, 10, 100]])
    doc["mask_bound"] = doc["rows"][2]
    (gap / "cnn.json").write_text(json.dumps(doc), encoding="utf-8")
    _gap_json(gap / "mlp1.json", "mlp1", [["free gather", "gather", 1500.0, 1.25, 120.0, 2, 10]])
    page = tmp_path / "page.md"
    page.write_text("a\n" + mod.START + "\nold\n" + mod.END + "\nb\n" + mod.GAP_START + "\nold gap\n"
                    + mod.GAP_END + "\nc\n", encoding="utf-8")
    mod.main(["--summary", str(tmp_path / "summary.csv"), "--runs", str(tmp_path), "--gap", str(gap),
              "--page", str(page), "--write"])
    text = page.read_text(encoding="utf-8")
    assert text.startswith("a\n") and text.endswith("\nc\n") and "old" not in text
    block = text.split(mod.GAP_START)[1].split(mod.GAP_END)[0]
    assert block.index("① 784-1000-10") < block.index("③ CNN")  # the networks' order
    assert "(`gap/cnn.json`、10 回 × 100 ステップの中央値)" in block
    assert "| StuCrs (そのまま) | 25.83 | 4.97 | – |" in block
    assert "| プーリングを省く | 18.45 | 3.55 | 7.38 |" in block
    assert "| GEMM 下限 (行列の積だけ) | 5.20 | 1.00 | – |" in block
    assert "| ミニバッチの取り出しを省く | 1.50 | 1.25 | 0.12 |" in block
    assert "GEMM 下限のおよそ 2.10 倍より短くなりません" in block  # the bound of the book's mask
    assert block.count("短くなりません") == 1  # the dense network has no such bound


def test_every_gap_variant_has_a_name_on_the_page():
    mod = _load()
    sys.path.insert(0, str(ROOT))
    from workflow.bench import gap

    for network in ("mlp1", "cnn"):
        assert {name for name, _ in gap.variants_of(network)} <= set(mod.GAP_VARIANT_NAMES), network


def test_a_run_without_gap_results_says_so_and_a_broken_one_is_named(tmp_path):
    mod = _load()
    assert "gap の結果" in mod.render_gap(tmp_path / "none") and "がありません" in mod.render_gap(tmp_path)
    (tmp_path / "cnn.json").write_text('{"network": "cnn", "rows": []}', encoding="utf-8")
    with pytest.raises(SystemExit, match="cnn.json is not a gap result with rows"):
        mod.render_gap(tmp_path)


def test_a_page_without_the_gap_block_is_left_untouched(tmp_path):
    mod = _load()
    _summary(tmp_path / "summary.csv")
    page = tmp_path / "page.md"
    before = "a\n" + mod.START + "\nold table\n" + mod.END + "\n"  # no gap markers
    page.write_text(before, encoding="utf-8")
    with pytest.raises(SystemExit, match="nothing was written"):
        mod.main(["--summary", str(tmp_path / "summary.csv"), "--runs", str(tmp_path), "--page", str(page),
                  "--gap", str(tmp_path), "--write"])
    assert page.read_text(encoding="utf-8") == before  # not half updated
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_a_run_without_dezero_has_no_speed_up():
    mod = _load()
    assert mod._times("") == "–" and mod._times("nan") == "–" and mod._times(2.5) == "2.50×"


def test_missing_summary_is_a_clear_error(tmp_path):
    mod = _load()
    with pytest.raises(SystemExit, match="run the pipeline first"):
        mod.main(["--summary", str(tmp_path / "none.csv")])


def test_the_benchmark_page_has_the_block_and_chapter_16_only_links_to_it():
    text = (ROOT / "docs" / "ja" / "benchmarks.md").read_text(encoding="utf-8")
    mod = _load()
    assert mod.PAGE.name == "benchmarks.md"
    assert text.count(mod.START) == 1 and text.count(mod.END) == 1
    assert text.count(mod.GAP_START) == 1 and text.count(mod.GAP_END) == 1
    ch16 = (ROOT / "docs" / "ja" / "16-performance.md").read_text(encoding="utf-8")
    assert mod.START not in ch16 and "(benchmarks.md)" in ch16
    assert "| ネットワーク |" not in ch16  # no run table in the chapter
