"""ドキュメントのテスト: コードブロックを実行し、表示している出力と照合し、mkdocs でビルドする。

Docs tests. Every ```python block under docs/ runs (per page, in order, in one namespace, in a fresh
process whose current directory is a temporary folder, with the repository on sys.path). A labelled
```text output block right after a python block must match what the block printed. Blocks marked
``<!-- norun: 理由 -->`` are skipped, but must give the reason, also in the visible text.
Finally ``mkdocs build --strict`` must succeed, and the figures must be regenerable by
docs/scripts/make_figures.py. Conventions: docs/scripts/docblocks.py.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mnist_setup import SKIP_REASON, find_mnist

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "docs" / "scripts"))
import docblocks  # noqa: E402

PAGES = docblocks.doc_pages()
MNIST_DIR = find_mnist()
FIGURES = REPO / "docs" / "ja" / "figures"


def _page_id(p):
    return str(p.relative_to(REPO / "docs"))


def _env():
    env = dict(os.environ)
    if MNIST_DIR is not None:
        env.setdefault("STUCRS_MNIST_DIR", str(MNIST_DIR))
    env["MPLBACKEND"] = "Agg"
    env.setdefault("NO_MKDOCS_2_WARNING", "1")
    return env


def test_pages_exist():
    names = {_page_id(p) for p in PAGES}
    assert "ja/index.md" in names and "en/index.md" in names and "ja/glossary.md" in names
    chapters = sorted(n for n in names if re.match(r"ja/\d\d-", n))
    assert len(chapters) == 16, chapters


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_page_blocks_run_and_outputs_match(page):
    if MNIST_DIR is None and "MNIST(" in page.read_text(encoding="utf-8"):
        pytest.skip(SKIP_REASON)
    blocks, problems, results = docblocks.run_page(page, env=_env())
    assert not problems, "\n".join(problems)
    failures = []
    for b in blocks:
        if b.lang not in ("python", "py") or b.norun_reason is not None:
            continue
        r = results.get(b.index)
        where = f"{_page_id(page)}: python block {b.index} (line {b.line})"
        if r is None:
            failures.append(f"{where}: not run (an earlier block failed)")
            continue
        if r["error"]:
            failures.append(f"{where} raised:\n{r['error']}")
            break
        if b.output is not None:
            kind, arg = b.output.output_mode
            if kind == "compare":
                diff = docblocks.compare_output(b.output.code, r["stdout"], atol=arg)
                if diff:
                    failures.append(f"{where}: printed output differs from the page ({diff}).\n"
                                    f"--- shown in the page:\n{b.output.code}--- printed:\n{r['stdout']}"
                                    "(update with: python docs/scripts/sync_outputs.py PAGE)")
    assert not failures, "\n\n".join(failures)


def test_norun_blocks_state_a_reason():
    for page in PAGES:
        blocks, _ = docblocks.parse_page(page)
        for b in blocks:
            if b.directive.startswith("norun"):
                assert b.norun_reason, f"{_page_id(page)}:{b.line}: norun without a reason"


def test_output_comparison_rules():
    assert docblocks.compare_output("variable(0.5)\n", "variable(0.5000001)\n") is None
    assert docblocks.compare_output("0.5", "0.6") is not None
    assert docblocks.compare_output("loss 0.50", "loss 0.52", atol=0.05) is None
    assert docblocks.compare_output("a 1", "b 1") is not None
    assert docblocks.compare_output("[1.  2.]", "[1. 2.]") is None


def _mkdocs_cmd():
    exe = REPO / ".venvs" / "workspace" / "bin" / "mkdocs"
    if exe.exists():
        return [str(exe)]
    try:
        import mkdocs  # noqa: F401
    except ImportError:
        found = shutil.which("mkdocs")
        if found:
            return [found]
        pytest.fail("mkdocs is not installed: build the workspace environment "
                    "(python3 envs/build.py workspace), which pins mkdocs")
    return [sys.executable, "-m", "mkdocs"]


def test_mkdocs_build_strict(tmp_path):
    cmd = _mkdocs_cmd() + ["build", "--strict", "--clean", "--site-dir", str(tmp_path / "site"),
                           "--config-file", str(REPO / "mkdocs.yml")]
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    assert (tmp_path / "site" / "ja" / "index.html").exists()


# Screenshots of the running workspace (not figures a script draws): made by the browser test
# (tests/test_pipeline.py::test_report_and_mlflow_ui_in_a_real_browser, results/quick/screenshots/)
SCREENSHOTS = REPO / "docs" / "en" / "images"


def _embedded_images():
    found = set()
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in re.finditer(r"!\[[^\]]*\]\(([^)\s]+)", text):
            target = (page.parent / m.group(1)).resolve()
            found.add(target)
    return found


def _embedded_figures():
    return {t for t in _embedded_images() if t.parent != SCREENSHOTS.resolve()}


def test_embedded_figures_exist():
    for target in _embedded_images():
        assert target.exists(), f"figure {target} is embedded but missing (run docs/scripts/make_figures.py)"
        assert target.parent in (FIGURES.resolve(), SCREENSHOTS.resolve()), \
            f"figure {target} must live in docs/ja/figures/ (drawn) or docs/en/images/ (screenshots)"
    for shot in SCREENSHOTS.glob("*.png"):
        assert shot.resolve() in _embedded_images(), f"{shot} is not used by any page"


def test_figures_are_regenerable(tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    if MNIST_DIR is None:  # docs/scripts/make_figures.py draws an MNIST figure too
        pytest.skip(SKIP_REASON)
    script = REPO / "docs" / "scripts" / "make_figures.py"
    proc = subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    made = {p.name for p in tmp_path.glob("*.png")}
    committed = {p.name for p in FIGURES.glob("*.png")}
    assert made == committed, f"script makes {sorted(made)}, committed {sorted(committed)}"
    embedded = {p.name for p in _embedded_figures()}
    assert embedded <= made, f"embedded but not generated: {sorted(embedded - made)}"
    for name in sorted(made):
        a = plt.imread(tmp_path / name)
        b = plt.imread(FIGURES / name)
        assert a.shape == b.shape, f"{name}: size {a.shape} regenerated, {b.shape} committed"
        diff = abs(a.astype("float64") - b.astype("float64")).mean()
        assert diff < 0.01, f"{name}: regenerated image differs from the committed one (mean diff {diff:.4f})"
