"""Headless Chromium (Debian's ``chromium``, installed by scripts/test.sh) for the browser checks.

No driver: pages are loaded with ``--dump-dom`` (the DOM after the page's scripts ran, within a
virtual time budget) and ``--screenshot``. To click inside the Snakemake report, the report is
served on 127.0.0.1 next to a small wrapper page of the same origin whose script clicks and records
what it found (:data:`REPORT_WRAPPER`).
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it as root)")
    return exe


def run_chromium(url, *, dump_dom=False, screenshot=None, budget_ms=20000, size="1400,1000", timeout=120):
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        args = [chromium(), *FLAGS, "--user-data-dir=" + profile, "--virtual-time-budget=%d" % budget_ms,
                "--window-size=" + size]
        if dump_dom:
            args.append("--dump-dom")
        if screenshot:
            args.append("--screenshot=" + str(screenshot))
        proc = subprocess.run(args + [url], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError("%s did not answer within %d s" % (url, timeout))


@contextmanager
def serving(argv, url, cwd=None, timeout=90):
    """Start a server process (its own process group), wait for `url`, always stop it."""
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_http(url, timeout)
        yield proc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)


def static_server(directory):
    port = free_port()
    return serving([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                    "--directory", str(directory)], "http://127.0.0.1:%d/" % port), port


# Opens the report's category CATEGORY, then the eye button of the entry LABEL; writes what it
# found into <div id="out">: data-category / data-entry (1 = clicked) and the viewer's source.
REPORT_WRAPPER = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="r" src="report.html" style="width:1400px;height:1000px;border:0"></iframe>
<div id="out"></div>
<script>
const out = document.getElementById('out');
function clickLink(doc, text) {
  const a = [...doc.querySelectorAll('a')].filter(e => e.textContent.trim() === text);
  if (a.length) { a[a.length - 1].click(); return 1; } return 0; }
function clickEye(doc, label) {
  const td = [...doc.querySelectorAll('td')].find(e => e.textContent.trim() === label);
  if (!td) return 0; const a = td.parentElement.querySelector('a[iconname="eye"]');
  if (!a) return 0; a.click(); return 1; }
setTimeout(() => { const d = document.getElementById('r').contentDocument;
  out.setAttribute('data-category', clickLink(d, 'CATEGORY'));
  setTimeout(() => { out.setAttribute('data-entry', clickEye(d, 'LABEL'));
    setTimeout(() => { const f = d.querySelector('iframe');
      out.textContent = f ? f.getAttribute('src') : ''; }, 3000); }, 3000); }, 4000);
</script></body></html>
"""
