"""ドキュメントの出力ブロックを、コードを実際に実行した結果で書き換える。

Re-run the python blocks of the given pages (default: every page under docs/) and rewrite each
labelled ```text output block with what its python block printed. Run it after editing a chapter:

    .venvs/workspace/bin/python docs/scripts/sync_outputs.py docs/ja/05-higher-order.md

Set STUCRS_MNIST_DIR (default ../shared/mnist from the repository root) for the MNIST pages.
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import docblocks  # noqa: E402


def sync(path):
    path = Path(path).resolve()
    blocks, problems, results = docblocks.run_page(path)
    for p in problems:
        print("problem:", p)
    lines = path.read_text(encoding="utf-8").splitlines()
    edits = []
    failed = False
    for b in blocks:
        r = results.get(b.index) if b.index else None
        if r is not None and r["error"]:
            print(f"{b.page}: python block {b.index} (line {b.line}) failed:\n{r['error']}")
            failed = True
        if b.output is None or r is None or r["error"]:
            continue
        out = r["stdout"].rstrip("\n").splitlines()
        edits.append((b.output.line, b.output.end, out))
    for start, end, out in sorted(edits, reverse=True):
        lines[start:end - 1] = out
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{path.relative_to(docblocks.REPO)}: {len(edits)} output block(s) written"
          + (" (stopped at a failing block)" if failed else ""))
    return not failed


def main(argv):
    os.environ.setdefault("STUCRS_MNIST_DIR", str((docblocks.REPO / ".." / "shared" / "mnist").resolve()))
    pages = [Path(a) for a in argv] or docblocks.doc_pages()
    ok = all([sync(p) for p in pages])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
