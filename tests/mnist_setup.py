"""Where the tests find MNIST, and the one verified download of the test set-up.

:func:`find_mnist` (used by the tests; never downloads) returns the first folder holding the four
``.gz`` files: ``$STUCRS_MNIST_DIR``, then ``../shared/mnist`` beside the checkout, then the
verified cache ``~/.stucrs/mnist`` (:func:`stucrs.datasets.default_mnist_dir`); else ``None`` and
the MNIST tests skip with :data:`SKIP_REASON`.

``python tests/mnist_setup.py`` (run by ``scripts/test.sh`` before pytest) prints that folder; when
there is none it fetches MNIST once into the cache with StuCrs's own downloader (checksums
verified, nothing half-written) and prints the cache; without network it says so in one line on
standard error and exits 1.
"""
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from stucrs.datasets import MNIST_FILES, MNISTError, default_mnist_dir, fetch_mnist  # noqa: E402

SKIP_REASON = ("no MNIST copy: set STUCRS_MNIST_DIR, or put the four files in ../shared/mnist or "
               "~/.stucrs/mnist (bash scripts/test.sh downloads them once when the network allows)")


def candidates():
    out = []
    if os.environ.get("STUCRS_MNIST_DIR"):
        out.append(Path(os.environ["STUCRS_MNIST_DIR"]))
    out += [REPO.parent / "shared" / "mnist", Path(default_mnist_dir())]
    return out


def find_mnist():
    """The first folder with the four MNIST .gz files, or None (no download here)."""
    for cand in candidates():
        if all((cand / name).is_file() for name in MNIST_FILES):
            return cand.resolve()
    return None


def main():
    found = find_mnist()
    if found is not None:
        print(found)
        return 0
    cache = Path(default_mnist_dir())
    print(f"[test.sh] MNIST: none in {', '.join(str(c) for c in candidates())}; downloading it once "
          f"into {cache} (checksums verified)", file=sys.stderr)
    os.environ.pop("STUCRS_MNIST_DIR", None)  # an incomplete folder there is no source to copy from
    try:
        fetch_mnist(cache, local_dir=None, retries=2, timeout=30, quiet=True)
    except (MNISTError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"[test.sh] MNIST: download failed ({first}); the MNIST tests will skip", file=sys.stderr)
        return 1
    print(cache.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
