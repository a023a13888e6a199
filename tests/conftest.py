"""Shared test set-up.

The suite runs twice for the framework's own tests: once with the fast paths (the default) and once
with ``STUCRS_FAST=0`` (the book's code only; ``scripts/test.sh`` runs that pass). The tests of the
fast paths themselves (``test_fast_*.py``) always switch them on.
"""
import pytest


@pytest.fixture(autouse=True)
def _fast_paths_on_for_their_own_tests(request, monkeypatch):
    if request.module.__name__.rsplit(".", 1)[-1].startswith("test_fast_"):
        from stucrs.core import Config
        monkeypatch.setattr(Config, "fast", True)
    yield
