"""Rendered reports and the index opened in headless Chromium: the plotly charts draw, the page fetches nothing.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``). The page's own
``Network.requestWillBeSent`` events list every request the page makes (documents, scripts, styles, images,
fonts, XHR/fetch), so the test can require that each one is the page's own ``file://`` URL (or ``data:``/
``blob:``/``about:``). Chromium's background traffic (component updates, sign-in) is not the page's and is not
counted; all of it goes to a dead proxy (127.0.0.1:9, loopback included) so nothing leaves the machine anyway.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from gitinsight_analytics.reports.params import SPECS

from .conftest import unavailable
from .report_data import expected_star_growth
from .reports_support import Rendered, rendered_reports  # noqa: F401

#: The real binary first: Debian's /usr/bin/chromium wrapper adds --enable-remote-extensions.
CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium"), "/usr/bin/chromium")
                 if p and Path(p).exists()), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
         "--window-size=1280,2000", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]
LOCAL = ("file:", "data:", "blob:", "about:")
#: Every report, as rendered by `gitinsight demo` on the known data (tests/report_data.py).
BROWSED = sorted(SPECS)
#: Per plot on the page: its title, its traces' point counts (plotly's own decoded data) and the bars drawn.
PLOTS_JS = """Array.from(document.querySelectorAll('.js-plotly-plot')).map(p => ({
    title: (p.querySelector('.gtitle') || {}).textContent || '',
    points: (p._fullData || []).map(t => Math.max((t.x || []).length, (t.y || []).length)),
    bars: Array.from(p.querySelectorAll('g.point path'))
        .filter(b => (b.getAttribute('d') || '').startsWith('M')).length,
}))"""


class Browser:
    """Just enough of the DevTools protocol over ``--remote-debugging-pipe`` (fd 3 in, fd 4 out, NUL-framed)."""

    def __init__(self, profile: Path) -> None:
        to_chrome_r, self._out = os.pipe()
        self._in, from_chrome_w = os.pipe()

        def child_fds() -> None:
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
                                      "about:blank"], preexec_fn=child_fds, close_fds=False,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []
        self.target = ""
        self.new_tab()

    def new_tab(self) -> None:
        """Close the current tab (if any) and work in a fresh one: its own session, no events, no cache."""
        if self.target:
            self.call("Target.closeTarget", targetId=self.target)
        self.target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=self.target, flatten=True)["sessionId"]
        self.events = []
        self.call("Network.enable", session=True)
        self.call("Network.setCacheDisabled", session=True, cacheDisabled=True)
        self.call("Page.enable", session=True)

    def _pump(self, timeout: float) -> list[dict[str, Any]]:
        if b"\0" not in self._buffer:
            ready, _, _ = select.select([self._in], [], [], timeout)
            if not ready:
                return []
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        messages = []
        while b"\0" in self._buffer:
            raw, self._buffer = self._buffer.split(b"\0", 1)
            messages.append(json.loads(raw))
        return messages

    def call(self, method: str, *, session: bool = False, timeout: float = 60, **params: Any) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for reply in self._pump(1):
                if reply.get("id") == self._id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
                self.events.append(reply)
        raise TimeoutError(method)

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)["result"].get(
            "value")

    def open(self, page: Path, *, until: str = "true", timeout: float = 60) -> None:
        """Navigate to ``page``, wait for its load event, then until the JS expression ``until`` is true."""
        self.call("Page.navigate", session=True, url=page.resolve().as_uri())
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" and e.get("sessionId") == self.session
                      for e in self.events):
            assert time.monotonic() < deadline, "the page did not load"
            self.events += self._pump(1)
        while not self.evaluate(until):
            assert time.monotonic() < deadline, f"timed out waiting for {until}"
            time.sleep(0.25)

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events
                if e.get("method") == "Network.requestWillBeSent" and e.get("sessionId") == self.session]

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._in)
        os.close(self._out)


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One Chromium for the module (starting it takes seconds); each test gets a fresh tab of it."""
    if CHROMIUM is None:
        unavailable("Debian's chromium is not installed (scripts/test-deps.sh installs it)")
    chrome = Browser(tmp_path_factory.mktemp("chromium") / "profile")
    yield chrome
    chrome.close()


@pytest.fixture
def browser(chromium: Browser) -> Browser:
    """A fresh tab: its own DevTools session and event list, the cache disabled, so no test sees another's."""
    chromium.new_tab()
    return chromium


def test_the_probe_sees_network_requests(browser: Browser, tmp_path: Path) -> None:
    """Control: a page that does load something from the network is caught."""
    page = tmp_path / "leaky.html"
    page.write_text('<html><body><img src="https://example.com/pixel.png"><p id="done">x</p></body></html>')
    browser.open(page)
    assert "https://example.com/pixel.png" in browser.requests()


@pytest.mark.slow
@pytest.mark.parametrize("name", BROWSED)
def test_report_charts_draw_without_network(
    name: str, rendered_reports: Rendered, browser: Browser  # noqa: F811
) -> None:
    (page,) = rendered_reports.reports_dir.glob(f"{name}/*/{name}.html")
    figures = page.read_text().count("Plotly.newPlot(")
    assert figures >= 1
    browser.open(page, until=f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {2 * figures}")
    plots = browser.evaluate(PLOTS_JS)
    assert len(plots) == figures, f"{len(plots)} of {figures} figures drew"
    empty = [p["title"] for p in plots if not any(p["points"])]
    assert empty == [], f"figures drew axes but no data: {empty}"
    traces = browser.evaluate("document.querySelectorAll('.js-plotly-plot g.trace').length")
    assert traces >= figures, "figures drew axes but no traces"
    if name == "trending":
        growth = expected_star_growth()
        (chart,) = [p for p in plots if "-day star growth" in p["title"]]
        assert sum(chart["points"]) == growth["ranked"] and chart["bars"] == growth["ranked"], chart
    assert "Key findings" in browser.evaluate("document.body.innerText")
    foreign = [url for url in browser.requests() if not url.startswith(LOCAL)]
    assert foreign == [], f"the report requested {foreign}"
    assert browser.requests()[0] == page.resolve().as_uri()


@pytest.mark.slow
def test_index_opens_and_links_every_run(rendered_reports: Rendered, browser: Browser) -> None:  # noqa: F811
    browser.open(rendered_reports.index)
    assert browser.evaluate("document.title") == "GitInsight reports"
    links = browser.evaluate("Array.from(document.querySelectorAll('#runs a')).map(a => a.getAttribute('href'))")
    assert len([link for link in links if link.endswith(".html")]) >= len(BROWSED)
    for link in links:
        assert (rendered_reports.reports_dir / link).is_file(), link
    assert browser.evaluate("document.querySelectorAll('#runs td.status.succeeded').length") >= len(BROWSED)
    assert [url for url in browser.requests() if not url.startswith(LOCAL)] == []
