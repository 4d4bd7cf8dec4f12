"""The report page in a real headless browser (Chromium): loads offline, every image renders, no console errors.

Skipped, with the reason, where no Chromium is installed (`apt-get install -y chromium`;
`.ci/run` installs it).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from interpgym.harness.leaderboard import leaderboard_rows
from interpgym.report import write_report
from tests.harness.test_report import CAMPAIGNS, task_plot

BROWSER = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)),
               None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no headless browser installed (apt-get install -y chromium)")

# A wrapper page next to the report: once everything has loaded (the iframe's images
# included) it writes what the browser actually rendered into its own DOM, which
# `--dump-dom` prints. The report itself has no script.
WRAPPER = """<!DOCTYPE html><html><body><iframe id="r" src="report/index.html" width="1200" height="900"></iframe>
<pre id="out">pending</pre><script>
window.addEventListener("load", () => {
  const doc = document.getElementById("r").contentDocument;
  const images = Array.from(doc.images);
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute("src"));
  document.getElementById("out").textContent = "RESULT " + JSON.stringify(
    {images: images.length, broken: broken, title: doc.title, tables: doc.querySelectorAll("table").length});
});
</script></body></html>"""


def render(root: Path) -> tuple[dict, list[str]]:
    """(what the browser rendered, console messages) for `root/report/index.html`, fully offline."""
    (root / "wrap.html").write_text(WRAPPER)
    proc = subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
         "--disable-background-networking", "--no-first-run", "--enable-logging=stderr", "--v=0",
         f"--user-data-dir={root / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
         (root / "wrap.html").as_uri()],
        capture_output=True, text=True, timeout=120)
    match = re.search(r"RESULT (\{.*?\})</pre>", proc.stdout)
    assert match, f"the page did not finish loading: {proc.stderr[-2000:]}"
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return json.loads(match.group(1).replace("&quot;", '"')), console


def test_report_renders_in_a_headless_browser(tmp_path: Path) -> None:
    features = task_plot(tmp_path / "feature recovery.png")
    write_report(tmp_path / "report", CAMPAIGNS, leaderboard_rows(CAMPAIGNS, {"sae/toy": 0.05}),
                 {"sae/toy": [features]}, generated_at="fixed")
    result, console = render(tmp_path)
    assert console == []  # no console errors (nor any message: the page has no script)
    assert result["title"] == "interpgym report" and result["tables"] >= 2
    versions = {(c.task, c.task_version) for c in CAMPAIGNS}
    assert result["images"] == len(CAMPAIGNS) + 1 + len(versions) and result["broken"] == []

    # The check sees a broken image: remove one plot and render again.
    victim = next((tmp_path / "report" / "plots").iterdir())
    victim.unlink()
    result, console = render(tmp_path)
    assert result["broken"] == [f"plots/{victim.name}"]


def test_console_errors_are_seen(tmp_path: Path) -> None:
    """The console capture works: a page whose script throws is reported."""
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "index.html").write_text(
        "<!DOCTYPE html><html><head><title>t</title></head><body><script>null.x</script></body></html>")
    _, console = render(tmp_path)
    assert any("Uncaught TypeError" in line for line in console), console
