"""ドキュメント (docs/) のコードブロックを取り出して実行する道具。

Tools to extract and run the code blocks of the Markdown pages under ``docs/``.
Used by ``tests/test_docs.py`` and by ``docs/scripts/sync_outputs.py``.

Conventions (書き方の約束):

* A fenced block ```` ```python ```` is executed. All python blocks of one page run in order in one
  namespace, in a fresh process, with the current directory set to a temporary folder and the
  repository root on ``sys.path``.
* ``<!-- norun: 理由 -->`` on the line right before a python block: the block is not executed.
  The reason must not be empty and must also be shown to the reader (it has to appear in the
  page text outside HTML comments, e.g. in a note line ``> **実行しません:** 理由``).
* ```` ```text ```` right after a python block (only blank lines in between) is that block's output.
  It must be labelled by a comment on the line right before it:

  - ``<!-- output -->``: compared with what the block prints (numbers within a small tolerance);
  - ``<!-- output: tol=0.05 (理由) -->``: numbers compared with that absolute tolerance;
  - ``<!-- output: not-compared (理由) -->``: shown but not compared (timings, machine-dependent).
"""
import contextlib
import io
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"

_FENCE = re.compile(r"^(`{3,}|~{3,})\s*([A-Za-z0-9_+-]*)(.*)$")
_COMMENT = re.compile(r"^<!--\s*(.*?)\s*-->\s*$")
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)\b")

DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-8


@dataclass
class Block:
    """ページの中のコードブロック 1 つ。/ One fenced code block of a page."""

    page: str
    index: int              # 1-based index among the page's python blocks (0 for other languages)
    lang: str
    code: str
    line: int               # 1-based line of the opening fence
    end: int = 0            # 1-based line of the closing fence
    directive: str = ""     # text of the HTML comment right before the block ("" if none)
    gap_from_prev: bool = True   # False when only blank lines/one comment separate it from the previous block
    output: "Block | None" = None
    problems: list = field(default_factory=list)

    @property
    def norun_reason(self):
        if self.directive.startswith("norun"):
            return self.directive[len("norun"):].lstrip(":").strip()
        return None

    @property
    def output_mode(self):
        """("compare", tol) / ("not-compared", reason) / None."""
        d = self.directive
        if not d.startswith("output"):
            return None
        rest = d[len("output"):].lstrip(":").strip()
        if rest == "":
            return ("compare", None)
        if rest.startswith("not-compared"):
            return ("not-compared", _paren(rest[len("not-compared"):]))
        m = re.match(r"tol=([0-9.eE+-]+)\s*(.*)$", rest)
        if m:
            return ("compare", float(m.group(1)))
        return ("invalid", rest)


def _paren(s):
    s = s.strip()
    if s.startswith("(") and s.endswith(")"):
        return s[1:-1].strip()
    return s


def parse_page(path):
    """Markdown ページを読み、コードブロックの一覧と書式の問題を返す。"""
    path = Path(path)
    rel = str(path.relative_to(REPO)) if path.is_absolute() and REPO in path.parents else str(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    last_block_end = None     # line index just after the previous block's closing fence
    py_count = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).lower()
        start = i
        j = i + 1
        while j < len(lines) and not lines[j].startswith(fence[0] * len(fence)):
            j += 1
        code = "\n".join(lines[start + 1:j]) + "\n"
        # the comment right before the fence (only the line immediately above counts)
        directive = ""
        k = start - 1
        if k >= 0:
            cm = _COMMENT.match(lines[k].strip())
            if cm:
                directive = cm.group(1)
                k -= 1
        # does only whitespace separate this block from the previous one?
        between = lines[last_block_end:k + 1] if last_block_end is not None else ["x"]
        adjacent = all(not s.strip() for s in between)
        if lang in ("python", "py"):
            py_count += 1
            idx = py_count
        else:
            idx = 0
        blocks.append(Block(rel, idx, lang, code, start + 1, j + 1, directive, not adjacent))
        last_block_end = j + 1
        i = j + 1
    # attach outputs
    problems = []
    prev = None
    for b in blocks:
        mode = b.output_mode
        if b.lang == "text" and not b.gap_from_prev and prev is not None and prev.lang in ("python", "py"):
            if mode is None:
                problems.append(f"{rel}:{b.line}: a ```text block right after python block {prev.index} "
                                "needs a label: <!-- output -->, <!-- output: tol=X (理由) --> or "
                                "<!-- output: not-compared (理由) -->")
            elif mode[0] == "invalid":
                problems.append(f"{rel}:{b.line}: cannot read the output label {b.directive!r}")
            elif mode[0] == "not-compared" and not mode[1]:
                problems.append(f"{rel}:{b.line}: output: not-compared needs a reason in parentheses")
            elif prev.norun_reason is not None and mode[0] != "not-compared":
                problems.append(f"{rel}:{b.line}: the output of a norun block cannot be compared; "
                                "label it <!-- output: not-compared (理由) -->")
            else:
                prev.output = b
        elif mode is not None:
            problems.append(f"{rel}:{b.line}: output label on a block that does not directly follow "
                            "a python block (or is not ```text)")
        if b.lang in ("python", "py") and b.directive.startswith("norun"):
            reason = b.norun_reason
            if not reason:
                problems.append(f"{rel}:{b.line}: python block {b.index} is marked norun without a reason")
            elif reason not in _visible_text(lines):
                problems.append(f"{rel}:{b.line}: the norun reason {reason!r} of python block {b.index} "
                                "is not shown to the reader (write it in the page text too)")
        prev = b
    return blocks, problems


def _visible_text(lines):
    text = "\n".join(lines)
    return re.sub(r"<!--.*?-->", "", text, flags=re.S)


def doc_pages():
    """docs/ の下の Markdown ページ (scripts/ を除く)。"""
    return sorted(p for p in DOCS.rglob("*.md") if "scripts" not in p.relative_to(DOCS).parts)


# -----------------------------------------------------------------------------
# output comparison
# -----------------------------------------------------------------------------
def _split(text):
    lines = [ln.rstrip() for ln in text.strip("\n").splitlines()]
    text = "\n".join(lines).strip()
    nums = _NUMBER.findall(text)
    words = [re.sub(r"\s+", " ", w).strip() for w in _NUMBER.split(text)]
    return words, nums


def compare_output(expected, actual, atol=None):
    """表示された出力と実際の出力を比べる。違いの説明 (一致すれば None) を返す。"""
    ew, en = _split(expected)
    aw, an = _split(actual)
    if ew != aw or len(en) != len(an):
        return "text differs"
    for e, a in zip(en, an):
        fe, fa = float(e), float(a)
        if math.isnan(fe) and math.isnan(fa):
            continue
        if atol is None:
            ok = math.isclose(fe, fa, rel_tol=DEFAULT_RTOL, abs_tol=DEFAULT_ATOL)
        else:
            ok = abs(fe - fa) <= atol
        if not ok:
            return f"number {e} shown, {a} printed"
    return None


# -----------------------------------------------------------------------------
# execution (in a child process, one per page)
# -----------------------------------------------------------------------------
def _child(spec_path):
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    sys.path.insert(0, spec["repo"])
    ns = {"__name__": "__main__"}
    units = [(b["index"], b["code"], f"{spec['page']} [python block {b['index']}]") for b in spec["blocks"]]
    if spec.get("epilogue"):
        # テストが足すコード: ページのブロックと同じ名前空間で、ページが作ったクラスを調べる
        units.append((EPILOGUE, spec["epilogue"], f"{spec['page']} [epilogue]"))
    results = []
    for index, source, name in units:
        buf = io.StringIO()
        err = None
        try:
            code = compile(source, name, "exec")
            with contextlib.redirect_stdout(buf):
                exec(code, ns)
        except BaseException:  # noqa: BLE001 - report everything, including SystemExit
            err = traceback.format_exc()
        results.append({"index": index, "stdout": buf.getvalue(), "error": err})
        Path(spec["result"]).write_text(json.dumps(results), encoding="utf-8")
        if err is not None:
            break


EPILOGUE = -1  # results のキー: run_page(epilogue=...) のコードの結果


def run_page(path, timeout=900, env=None, epilogue=None):
    """ページの実行可能な python ブロックを順に実行し、(blocks, problems, results) を返す。

    results はブロック番号 → {"stdout", "error"}。途中で失敗すると以降は実行しない。
    ``epilogue`` (コードの文字列) を渡すと、全ブロックのあとに同じ名前空間で実行し、結果を
    results[EPILOGUE] に入れる。
    """
    blocks, problems = parse_page(path)
    runnable = [b for b in blocks if b.lang in ("python", "py") and b.norun_reason is None]
    with tempfile.TemporaryDirectory(prefix="stucrs-docs-") as tmp:
        spec = Path(tmp) / "spec.json"
        result = Path(tmp) / "result.json"
        work = Path(tmp) / "work"
        work.mkdir()
        spec.write_text(json.dumps({
            "repo": str(REPO), "page": blocks[0].page if blocks else str(path),
            "result": str(result),
            "blocks": [{"index": b.index, "code": b.code} for b in runnable],
            "epilogue": epilogue,
        }), encoding="utf-8")
        child_env = dict(os.environ if env is None else env)
        child_env.setdefault("MPLBACKEND", "Agg")
        child_env["PYTHONPATH"] = str(REPO) + os.pathsep + child_env.get("PYTHONPATH", "")
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(spec)],
                              cwd=work, env=child_env, capture_output=True, text=True, timeout=timeout)
        results = json.loads(result.read_text(encoding="utf-8")) if result.exists() else []
    by_index = {r["index"]: r for r in results}
    if proc.returncode != 0 and (not results or results[-1]["error"] is None):
        # the child died outside a block (crash, kill)
        missing = next((b.index for b in runnable if b.index not in by_index), None)
        if missing is not None:
            by_index[missing] = {"index": missing, "stdout": "",
                                 "error": f"child process exited with {proc.returncode}\n{proc.stderr[-3000:]}"}
    return blocks, problems, by_index


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child(sys.argv[2])
    else:
        print("usage: docblocks.py --child SPEC.json (internal)", file=sys.stderr)
        sys.exit(2)
