"""report.html in a real browser: headless Chromium (skipped where none is installed) opens the report of
a real run whose copying sampler has an HTML label, runs its scripts, and the latent-plane explorer must
render, react to the mouse, the axis choice and the address, and never run the label as markup.

Screenshots go to the test's folder, and to $AEBENCH_SCREENSHOTS when set (to look at them)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
from browser import Browser, chromium
from conftest import HOSTILE

pytestmark = pytest.mark.skipif(chromium() is None, reason="no Chromium on PATH (Debian: apt-get install chromium)")

URI_SAFE = "-_.!~*'()"  # what encodeURIComponent leaves as it is
READY = "(e => e && e.dataset.state !== 'loading' && e.dataset.state)(document.getElementById('aeb-explorer'))"
# non-white pixels of a canvas, and a digest of its pixels (to see it change)
INK = """(id => { const c = document.getElementById(id), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let ink = 0, sum = 0; for (let i = 0; i < d.length; i += 4) { if (d[i] < 245 || d[i+1] < 245 || d[i+2] < 245) ink++;
  sum = (sum * 31 + d[i] + 7 * d[i+1] + 13 * d[i+2]) % 1000000007; } return [ink / (c.width * c.height), sum]; })"""


def _keep(path: Path) -> None:
    folder = os.environ.get("AEBENCH_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)


def _dataset(page) -> dict:
    return page.evaluate("Object.assign({}, document.getElementById('aeb-explorer').dataset)")


def test_the_explorer_renders_and_reacts(hostile_run, tmp_path):
    url = (hostile_run / "report.html").as_uri()
    with Browser.launch() as browser:
        page = browser.open(url)
        assert page.wait_for(READY) == "ready", page.evaluate("document.querySelector('.ex-error').textContent")
        state = _dataset(page)
        assert state["basis"] == "principal" and state["axes"] == "0,1" and int(state["points"]) > 48
        for canvas, least in (("ex-grid", 0.9), ("ex-plot", 0.02)):
            assert page.evaluate(f"{INK}('{canvas}')")[0] > least, canvas  # decoded faces; density and points
        # the HTML label is text on the page, never markup
        legend = page.evaluate("document.getElementById('ex-samplers').textContent")
        assert HOSTILE in legend and page.evaluate("document.querySelectorAll('#aeb-explorer script').length") == 0
        page.evaluate("document.getElementById('aeb-explorer').scrollIntoView()")
        page.screenshot(tmp_path / "explorer_loaded.png")

        # the mouse over one of the copying sampler's points shows that sample's decoded image
        rows = page.evaluate("JSON.parse(document.getElementById('aeb-explorer-data').textContent).samplers[0].rows")
        target = next((row, xy) for row in rows
                      if (xy := page.evaluate(f"window.aebExplorer.pointClient({json.dumps(HOSTILE)}, {row})")))
        row, xy = target
        blank_hover = page.evaluate(f"{INK}('ex-hover')")[0]
        page.mouse_move(xy["x"], xy["y"])
        hovered = _dataset(page)["hover"]
        assert hovered.startswith(HOSTILE + ":")  # this point or one drawn on top of it, of the same sampler
        caption = page.evaluate("document.getElementById('ex-hover-caption').textContent")
        assert caption.startswith(HOSTILE + ": sample #")
        assert page.evaluate(f"{INK}('ex-hover')")[0] > max(0.9, blank_hover)
        assert f";hover:{quote(HOSTILE, safe=URI_SAFE)}:" in page.evaluate("location.hash")  # a link to this view
        page.screenshot(tmp_path / "explorer_hover.png")

        # another plane through the axis menu: new images, and the address follows
        before = page.evaluate(f"{INK}('ex-grid')")[1]
        page.evaluate("(s => { s.value = '2'; s.dispatchEvent(new Event('change')); })(document.getElementById('ex-y'))")
        assert _dataset(page)["axes"] == "0,2" and "axes:0,2" in page.evaluate("location.hash")
        assert page.evaluate(f"{INK}('ex-grid')")[1] != before

        # the address alone sets the view: the dominant components, axes swapped, one grid cell
        second = browser.open(url + "#explorer=basis:dominant;axes:1,0;cell:3,4")
        assert second.wait_for(READY) == "ready"
        state = _dataset(second)
        assert (state["basis"], state["axes"], state["hover"]) == ("dominant", "1,0", "cell:3,4")
        assert second.evaluate("document.getElementById('ex-hover-caption').textContent").startswith("Decoded at component")
        second.evaluate("document.getElementById('aeb-explorer').scrollIntoView()")
        second.screenshot(tmp_path / "explorer_dominant.png")
        whole = second.screenshot(tmp_path / "report_full.png", full_page=True)

        for shot in ("explorer_loaded.png", "explorer_hover.png", "explorer_dominant.png", whole.name):
            _keep(tmp_path / shot)
        assert page.errors() == [] and second.errors() == []
        assert not [e for e in browser.events if e.get("method") == "Page.javascriptDialogOpening"]  # no alert ran
