"""作って確かめる (docs/ja/build-along/): 学習者がページで作ったクラスが StuCrs と同じ値と勾配を返すか。

Each build-along page runs as the docs tests run it (all blocks, one namespace, fresh process);
then ``tests/build_along/checks.py`` runs in that namespace and compares the learner's
``Variable``, ``Function`` subclasses, layers, optimizer and loader with StuCrs on new inputs.
Also: the pages cover what the book has the reader write, and each chapter of the guide links to
the page that builds its parts.
"""
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "docs" / "scripts"))
import docblocks  # noqa: E402

BUILD = REPO / "docs" / "ja" / "build-along"
CHECKS = REPO / "tests" / "build_along"
STAGES = ["stage1", "stage2", "stage3", "stage4"]

# what the learner writes on each page (names defined at the page's top level)
WRITES = {
    "stage1": ["Variable", "Function", "Square", "Exp", "numerical_diff", "as_array"],
    "stage2": ["Variable", "Function", "Config", "using_config", "no_grad", "as_variable",
               "Add", "Mul", "Neg", "Sub", "Div", "Pow", "Sin", "Cos", "get_dot_graph"],
    "stage3": ["Reshape", "Transpose", "Sum", "BroadcastTo", "SumTo", "MatMul", "Layer", "Linear",
               "Model", "MLP", "Optimizer", "SGD", "SoftmaxCrossEntropy", "Dataset", "DataLoader"],
    "stage4": ["dropout", "im2col_array", "col2im_array", "Im2col", "Col2im", "conv2d", "pooling",
               "Conv2d", "RNN", "LSTM"],
}


def _defined_names(page):
    names = set()
    blocks, _ = docblocks.parse_page(page)
    for b in blocks:
        if b.lang == "python" and b.norun_reason is None:
            names |= set(re.findall(r"^(?:class|def)\s+(\w+)", b.code, flags=re.M))
    return names


@pytest.mark.parametrize("stage", STAGES)
def test_learner_classes_match_stucrs(stage):
    epilogue = (f"import sys\nsys.path.insert(0, {str(CHECKS)!r})\n"
                f"import checks\nchecks.CHECKS[{stage!r}](globals())\n")
    blocks, problems, results = docblocks.run_page(BUILD / f"{stage}.md", epilogue=epilogue)
    assert not problems, problems
    failed = [f"block {i}:\n{r['error']}" for i, r in results.items() if r["error"]]
    assert not failed, "\n".join(failed)
    assert docblocks.EPILOGUE in results, "the comparison with StuCrs did not run"


@pytest.mark.parametrize("stage", STAGES)
def test_page_writes_the_books_parts(stage):
    missing = set(WRITES[stage]) - _defined_names(BUILD / f"{stage}.md")
    assert not missing, f"docs/ja/build-along/{stage}.md no longer has the learner write {sorted(missing)}"


def test_no_stucrs_import_before_the_comparison_on_the_first_pages():
    # stages 1-2 build the core itself: StuCrs may appear only in the comparison sections
    for stage in ("stage1", "stage2"):
        blocks, _ = docblocks.parse_page(BUILD / f"{stage}.md")
        first = next(b.line for b in blocks if re.search(r"\bstucrs\b", b.code))
        text = (BUILD / f"{stage}.md").read_text(encoding="utf-8").splitlines()
        heading = max(i for i, line in enumerate(text[:first], 1) if line.startswith("## "))
        assert "答え合わせ" in text[heading - 1] or "比べる" in text[heading - 1], \
            f"{stage}: StuCrs is imported in '{text[heading - 1]}', before the comparison section"


def test_chapters_link_to_the_build_pages():
    chapters = sorted((REPO / "docs" / "ja").glob("[0-9][0-9]-*.md"))
    linked = set()
    for ch in chapters:
        linked |= set(re.findall(r"\(build-along/(stage\d)\.md\)", ch.read_text(encoding="utf-8")))
    assert linked == set(STAGES), f"chapters link to {sorted(linked)}; every build page needs a chapter pointing to it"
    index = (REPO / "docs" / "ja" / "index.md").read_text(encoding="utf-8")
    for stage in STAGES:
        assert f"build-along/{stage}.md" in index, f"docs/ja/index.md does not list build-along/{stage}.md"
