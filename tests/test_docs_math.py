"""Formulas in the Japanese pages render, with a MathJax bundled in the repository (no CDN):
the docs build marks them (pymdownx.arithmatex), and Debian's chromium, with every network
request to anything but the local server failing, turns them into SVG."""
import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.browser import run_chromium, static_server

ROOT = Path(__file__).resolve().parent.parent
MATHJAX = ROOT / "docs" / "javascripts" / "mathjax" / "tex-svg.js"


def test_the_bundled_mathjax_is_the_recorded_file_and_nothing_comes_from_a_cdn():
    readme = (MATHJAX.parent / "README.md").read_text(encoding="utf-8")
    digest = hashlib.sha256(MATHJAX.read_bytes()).hexdigest()
    assert digest in readme, "docs/javascripts/mathjax/tex-svg.js changed: record its SHA-256 in the README"
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8").replace("!!python", "#"))
    scripts = config["extra_javascript"]
    assert "javascripts/mathjax/tex-svg.js" in scripts
    assert not [s for s in scripts if re.match(r"https?:", str(s))], scripts
    assert {"pymdownx.arithmatex": {"generic": True}} in config["markdown_extensions"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def test_the_lstm_equations_are_marked_for_rendering(site):
    html = (site / "ja" / "14-rnn-lstm" / "index.html").read_text(encoding="utf-8")
    blocks = re.findall(r'<div class="arithmatex">(.*?)</div>', html, re.S)
    assert any("c_t &amp;= f \\odot c_{t-1}" in b or "c_t &= f \\odot c_{t-1}" in b for b in blocks), blocks


def test_formulas_render_as_svg_in_a_browser(site):
    server, port = static_server(site)
    with server:
        dom = run_chromium("http://127.0.0.1:%d/ja/14-rnn-lstm/" % port, dump_dom=True, budget_ms=20000)
    rendered = re.findall(r"<mjx-container[^>]*>", dom)
    assert len(rendered) >= 8, "MathJax rendered %d formulas" % len(rendered)
    assert "<svg" in dom.split("<mjx-container", 1)[1][:2000]
    assert 'data-mml-node="math"' in dom  # MathJax's SVG output of a typeset formula
