"""The glossary is the chapters' vocabulary: every Japanese term it lists is used in a chapter."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JA = ROOT / "docs" / "ja"


def glossary_terms():
    for line in (JA / "glossary.md").read_text(encoding="utf-8").splitlines():
        if not line.startswith("| ") or line.startswith(("| 日本語", "| ---")):
            continue
        yield line.split("|")[1].strip()


def variants(term):
    """The ways a chapter may write the term: itself without its note, the note, each '/' side."""
    bare = re.sub(r"\s*\(.*?\)", "", term)
    notes = re.findall(r"\((.*?)\)", term)
    out = []
    for v in [bare] + notes:
        out += [p.strip().strip("`") for p in v.split("/")]
    return [v for v in out if v]


def test_every_glossary_term_is_used_in_a_chapter():
    chapters = "\n".join(p.read_text(encoding="utf-8") for p in sorted(JA.glob("[0-9][0-9]-*.md")))
    unused = [t for t in glossary_terms() if not any(v in chapters for v in variants(t))]
    assert not unused, "glossary terms no chapter uses (use the chapters' word, or drop the entry): %s" % unused


def test_the_variants_of_a_term():
    assert variants("配列モジュール (`xp`)") == ["配列モジュール", "xp"]
    assert variants("勾配の確認 (`gradient_check`)") == ["勾配の確認", "gradient_check"]
    assert variants("中心差分 / 前進差分") == ["中心差分", "前進差分"]
