"""本の DeZero 用スクリプトを、書き換えずに StuCrs で動かす。

Run a script written for DeZero (``import dezero``, ``from dezero.core_simple import ...``) with
StuCrs in its place, without editing it::

    python -m stucrs.as_dezero path/to/step28.py [args...]

この実行の間だけ、``dezero`` と ``dezero.<名前>`` という名前の import が ``stucrs`` と
``stucrs.<名前>`` を返すようにしてから、スクリプトを ``__main__`` として実行します。
``dezero`` という名前のパッケージはどこにもインストールしません (このプロセスの ``sys.modules``
に別名を登録するだけです)。StuCrs にないモジュール (``dezero.xxx``) を import すると、
何がないかを書いたエラーになります。
"""
import importlib
import importlib.abc
import importlib.util
import os
import pkgutil
import runpy
import sys

import stucrs

ALIAS = "dezero"


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``dezero`` / ``dezero.X`` の import に ``stucrs`` / ``stucrs.X`` を渡す finder。"""

    def __init__(self):
        self._specs = {}

    def find_spec(self, fullname, path=None, target=None):
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        target = "stucrs" + spec.name[len(ALIAS):]
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as e:
            if e.name != target:
                raise
            raise ModuleNotFoundError(
                f"the script imports {spec.name!r}, but StuCrs has no module {target!r}: "
                f"this part of DeZero is not provided by StuCrs (see docs/ja/book-scripts.md)",
                name=spec.name) from None
        self._specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module):
        # 本物の stucrs のモジュールは実行済み。import の仕組みが書き換えた __spec__ を元に戻す
        for alias, original in list(self._specs.items()):
            if original is not None and original.name == module.__name__:
                module.__spec__ = original
                del self._specs[alias]


def install():
    """このプロセスの中で ``dezero`` を ``stucrs`` の別名にする。"""
    sys.modules[ALIAS] = stucrs
    # 本のスクリプトが使うサブモジュールを先に読み込んで登録しておく (core_simple も含む)
    for info in pkgutil.iter_modules(stucrs.__path__):
        if info.name in ("as_dezero",) or info.name.startswith("_"):
            continue
        sys.modules[f"{ALIAS}.{info.name}"] = importlib.import_module(f"stucrs.{info.name}")
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.insert(0, _Alias())


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m stucrs.as_dezero SCRIPT.py [ARGS...]\n\n"
              "Runs SCRIPT.py with `import dezero` (and dezero.*) served by StuCrs, for this run only.",
              file=sys.stderr if not argv else sys.stdout)
        return 0 if argv else 2
    script = argv[0]
    if not os.path.isfile(script):
        print(f"stucrs.as_dezero: no such script: {script!r} (give the path of a .py file)", file=sys.stderr)
        return 2
    install()
    # python script.py と同じ状態にする: sys.argv とスクリプトのフォルダを import の検索先の先頭に
    sys.argv = argv
    sys.path[0] = os.path.dirname(os.path.abspath(script))  # not the current folder (as -m leaves it)
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
