"""docs/ja/index.md maps every step of the book (1-60) to a chapter and its section: each step
appears once, each link is a page of docs/ja, and each named section is a heading of that page."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JA = ROOT / "docs" / "ja"


def map_rows():
    text = (JA / "index.md").read_text(encoding="utf-8")
    part = text.split("## 本のステップとの対応", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in part.splitlines():
        m = re.match(r"\| (\d+) \| (.+?) \| \[[^\]]+\]\(([^)]+)\) \| (.+?) \|$", line)
        if m:
            rows.append((int(m.group(1)), m.group(2), m.group(3), m.group(4)))
    return rows


def headings(page):
    text = re.sub(r"```.*?```", "", (JA / page).read_text(encoding="utf-8"), flags=re.S)
    return {re.sub(r"`", "", h).strip() for h in re.findall(r"(?m)^#{1,3} (.+)$", text)}


def test_every_step_of_the_book_appears_once():
    steps = [r[0] for r in map_rows()]
    assert sorted(steps) == list(range(1, 61)), steps


def test_every_row_points_to_a_page_and_its_sections():
    wrong = []
    for step, _, page, sections in map_rows():
        assert (JA / page).is_file(), (step, page)
        have = headings(page)
        for sec in sections.split(" / "):
            sec = re.sub(r"\s*\(.*?\)$", "", sec).replace("`", "").strip()
            if not any(h == sec or h.startswith(sec) for h in have):
                wrong.append((step, page, sec))
    assert not wrong, "sections that are no heading of their page: %s" % wrong
