"""report.html as a person sees it: rendered by headless Chromium at 1400 px and 400 px.

One browser start for the module: a page holding the report twice, in a 1400 px and a
400 px frame (`srcdoc`, so the report keeps its own Content-Security-Policy and runs no
script), and a script in the outer page that measures what is on screen in each and
writes it into the page, which `--dump-dom` then prints. Skipped where Chromium is not
installed (`apt-get install chromium`; .ci/run installs it).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import REINSPECTION
from typer.testing import CliRunner

from custody import cli

CHROMIUM = next(
    (found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None
)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")

WIDTHS = {"wide": (1400, 1000), "narrow": (400, 800)}

MEASURE = """
window.addEventListener('load', () => {
  const out = {};
  for (const frame of document.querySelectorAll('iframe')) {
    const doc = frame.contentDocument, root = doc.documentElement;
    const box = e => {
      const r = e.getBoundingClientRect();
      return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width, height: r.height};
    };
    const visible = e => {
      const s = frame.contentWindow.getComputedStyle(e);
      return s.display !== 'none' && s.visibility !== 'hidden';
    };
    out[frame.id] = {
      viewport: {width: root.clientWidth, height: frame.contentWindow.innerHeight},
      scrollWidth: root.scrollWidth,
      scrollHeight: root.scrollHeight,
      funnel: [...doc.querySelectorAll('#funnel ol.funnel li')].map(e => ({text: e.innerText, ...box(e)})),
      charts: [...doc.querySelectorAll('figure.chart')].filter(visible).map(e => ({
        caption: e.querySelector('figcaption').innerText, svgs: e.querySelectorAll('svg').length, ...box(e)})),
      wider: [...doc.querySelectorAll('body *')]
        .filter(e => box(e).right > root.clientWidth + 1).length,
      scrolled: [...doc.querySelectorAll('.scroll')].filter(e => e.scrollWidth > e.clientWidth + 1).length,
      text: doc.body.innerText,
    };
  }
  document.getElementById('measured').textContent = JSON.stringify(out);
});
"""


def measure(page: str, tmp: Path) -> dict[str, Any]:
    source = html.escape(page, quote=True)
    frames = "".join(
        f'<iframe id="{name}" style="width:{w}px;height:{h}px;border:0" srcdoc="{source}"></iframe>'
        for name, (w, h) in WIDTHS.items()
    )
    outer = tmp / "measure.html"
    outer.write_text(
        f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>{frames}<pre id="measured"></pre>'
        f"<script>{MEASURE}</script></body></html>",
        encoding="utf-8",
    )
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={tmp / 'profile'}",
        "--window-size=1900,1100",
        "--virtual-time-budget=10000",
        "--dump-dom",
        outer.as_uri(),
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S)
    assert found is not None, "the measuring script did not run"
    assert found.group(1), "the measuring script did not run"
    measured: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return measured


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """reinspection_2015 checked, its report.html measured at both widths."""
    out = tmp_path_factory.mktemp("report")
    result = CliRunner().invoke(cli.app, ["check", str(REINSPECTION), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return measure((out / "report.html").read_text(encoding="utf-8"), tmp_path_factory.mktemp("browser"))


@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_first_screen_shows_the_funnel_as_the_inspection_reported_it(seen: dict[str, Any], width: str) -> None:
    page = seen[width]
    steps = page["funnel"]
    # 12 refused bail -> 9 asked (75%) -> 2 moved (17%) -> 2 certificates (17%)
    assert [step["text"].split()[0] for step in steps] == ["12", "9", "2", "2"]
    assert ["75%" in steps[1]["text"], "17%" in steps[2]["text"], "17%" in steps[3]["text"]] == [True] * 3
    assert all(step["top"] >= 0 and step["bottom"] <= page["viewport"]["height"] for step in steps), steps


def test_a_chart_is_on_the_first_screen(seen: dict[str, Any]) -> None:
    wide = seen["wide"]
    first_screen = [c for c in wide["charts"] if c["top"] < wide["viewport"]["height"] and c["height"] > 40]
    assert first_screen, wide["charts"]
    assert all(c["svgs"] > 0 for c in first_screen)
    assert any("funnel" in c["caption"] for c in first_screen)


@pytest.mark.parametrize("width", list(WIDTHS))
def test_nothing_is_wider_than_the_screen(seen: dict[str, Any], width: str) -> None:
    page = seen[width]
    assert page["scrollWidth"] <= page["viewport"]["width"]
    assert page["wider"] == 0
    assert page["scrolled"] == 0  # no table needs scrolling sideways either


def test_every_chart_fits_a_400_px_screen(seen: dict[str, Any]) -> None:
    narrow = seen["narrow"]
    assert len(narrow["charts"]) >= 6  # funnel, rules, force, suite, time, overnight, waits
    assert all(c["right"] <= narrow["viewport"]["width"] + 1 and c["width"] > 300 for c in narrow["charts"])


def test_what_the_page_says(seen: dict[str, Any]) -> None:
    text = seen["wide"]["text"]
    assert "Custody records from 3 June 2015 to 26 August 2015" in text
    assert "Anyshire Police" in text
    assert "held overnight" in text.lower()
    assert "Records as of" not in text
