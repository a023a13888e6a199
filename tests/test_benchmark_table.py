"""docs/scripts/benchmark_table.py: chapter 16's table is rendered from results/summary.csv."""
import csv
import importlib.util
import json
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
    page.write_text("before\n" + mod.START + "\nold table\n" + mod.END + "\nafter\n", encoding="utf-8")
    mod.main(["--summary", str(tmp_path / "summary.csv"), "--runs", str(runs), "--page", str(page), "--write"])
    text = page.read_text(encoding="utf-8")
    assert text.startswith("before\n") and text.endswith("\nafter\n") and "old table" not in text
    assert "| ② 784-1000-1000-10 | stucrs-cpu | 3/3 | 31.50 (30.90–32.40) | 2.77× | 1.33 | 1.07 | 0.9296 | 62.1 | 279 | SkylakeX |" in text
    assert "| 3.68 | – | 0.9296 | 170.0 | 329 | Haswell |" in text
    assert "Test CPU" in text and "2 コア" in text


def test_missing_summary_is_a_clear_error(tmp_path):
    mod = _load()
    with pytest.raises(SystemExit, match="run the pipeline first"):
        mod.main(["--summary", str(tmp_path / "none.csv")])


def test_the_benchmark_page_has_the_block_and_chapter_16_only_links_to_it():
    text = (ROOT / "docs" / "ja" / "benchmarks.md").read_text(encoding="utf-8")
    mod = _load()
    assert mod.PAGE.name == "benchmarks.md"
    assert text.count(mod.START) == 1 and text.count(mod.END) == 1
    ch16 = (ROOT / "docs" / "ja" / "16-performance.md").read_text(encoding="utf-8")
    assert mod.START not in ch16 and "(benchmarks.md)" in ch16
    assert "| ネットワーク |" not in ch16  # no run table in the chapter
