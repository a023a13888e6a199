"""公開 API のすべてのクラス・関数に日本語の docstring があることを確かめるテスト。

Every public class and function of the stucrs modules must have a docstring that contains
Japanese characters (hiragana, katakana or kanji): the users are Japanese learners who read
the code and ``help()``. "Public" means the names in the module's ``__all__`` when it has one,
otherwise every name not starting with ``_`` that is defined in the module itself (re-exports
are checked where they are defined). Class docstrings are not inherited here: a subclass
needs its own. The failure message lists the offenders.
"""
import importlib
import inspect
import re

import pytest

MODULES = [
    "stucrs.core", "stucrs.functions", "stucrs.utils", "stucrs.cuda", "stucrs.layers",
    "stucrs.models", "stucrs.optimizers", "stucrs.datasets", "stucrs.transforms",
    "stucrs.dataloaders", "stucrs.functions_conv", "stucrs.fast", "stucrs.fast.malloc", "stucrs.fast.blas", "stucrs.fast.functions",
    "stucrs.fast.optimizers", "stucrs.fast.deferred", "stucrs.fast.conv", "stucrs.fast.matmul_plan",
]

JAPANESE = re.compile(r"[\u3040-\u309f\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")


def public_objects(module):
    """(名前, オブジェクト) の一覧: モジュールが公開するクラスと関数。"""
    names = getattr(module, "__all__", None)
    explicit = names is not None
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    out = []
    for name in names:
        obj = getattr(module, name, None)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not explicit and getattr(obj, "__module__", None) != module.__name__:
            continue  # imported from elsewhere (numpy, another stucrs module)
        out.append((name, obj))
    return out


def offenders(module):
    bad = []
    for name, obj in public_objects(module):
        doc = obj.__doc__  # not inspect.getdoc: a class must not borrow its parent's docstring
        if not doc or not doc.strip():
            bad.append(f"{module.__name__}.{name}: no docstring")
        elif not JAPANESE.search(doc):
            bad.append(f"{module.__name__}.{name}: docstring has no Japanese text")
    return bad


@pytest.mark.parametrize("name", MODULES)
def test_public_api_has_japanese_docstrings(name):
    try:
        module = importlib.import_module(name)
    except ImportError as e:
        pytest.fail(f"{name} cannot be imported: {e}")
    assert JAPANESE.search(module.__doc__ or ""), f"{name}: the module docstring has no Japanese text"
    bad = offenders(module)
    assert not bad, f"{len(bad)} public name(s) without a Japanese docstring:\n" + "\n".join(bad)


def test_checker_itself():
    assert JAPANESE.search("変数") and JAPANESE.search("ひらがな") and JAPANESE.search("カタカナ")
    assert not JAPANESE.search("plain English, 123")
