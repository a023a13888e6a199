"""The docs figures carry Japanese labels without tofu: the font they use has a glyph for every
character of every label in docs/scripts/make_figures.py (and matplotlib finds that font itself,
not a fallback)."""
import ast
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "docs" / "scripts" / "make_figures.py"


def label_strings():
    """The string literals (and f-string parts) of the script that hold non-ASCII text."""
    out = []
    for node in ast.walk(ast.parse(SCRIPT.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and not node.value.isascii():
            out.append(node.value)
    return [s for s in out if "\n" not in s]  # docstrings and comments-as-strings are not drawn


def test_every_label_character_has_a_glyph_in_the_figure_font():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font
    import sys
    sys.path.insert(0, str(SCRIPT.parent))
    import make_figures

    family = make_figures.japanese_font()
    path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    assert "ipaex" in Path(path).name.lower(), path
    font = FT2Font(path)
    labels = label_strings()
    assert any("ニュートン法" in s for s in labels) and len(labels) >= 10, labels
    missing = sorted({c for s in labels for c in s if not c.isspace() and font.get_char_index(ord(c)) == 0})
    assert not missing, "characters without a glyph in %s (tofu): %s" % (path, missing)


def test_drawing_a_japanese_label_warns_of_no_missing_glyph(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import sys
    sys.path.insert(0, str(SCRIPT.parent))
    import make_figures

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)" for tofu
        fig, ax = plt.subplots()
        ax.set_title("勾配降下法とニュートン法: 最小値までの距離 (対数目盛)", family=make_figures.japanese_font())
        fig.savefig(tmp_path / "label.png")
        plt.close(fig)
    assert (tmp_path / "label.png").stat().st_size > 1000
