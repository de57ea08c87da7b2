"""Text-fragment links open a real browser at the quote: headless Chromium, driven over the
DevTools protocol on a pipe, against the local test site. Skipped where Chromium is not installed
(Debian: apt-get install chromium)."""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess

import pytest

from bot.answering.answer import Answerer
from bot.answering.locate import answer_located
from index.build import build_index
from index.sources.web import store_for
from tests.conftest import make_settings
from tests.web_server import Page, Site, serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")

# Far below the first screen, so the browser must scroll to show a quote.
PAGE = """<html><head><title>Harbour notes</title></head><body><article><h1>Harbour notes</h1>
<p>These notes describe the harbour of the old town and the people who kept it working.</p>
<div style="height: 5000px"></div>
<p>The lighthouse keeper, Ada Brand, lit the lamp at dusk every day for forty years, and in the long winter
of 1911 she also rang the fog bell every hour while a storm broke the harbour wall in three places.</p>
<div style="height: 3000px"></div>
<p>The night ferry leaves at eleven.</p>
<div style="height: 3000px"></div>
</article></body></html>"""

# Resolves once the page has scrolled (text fragments are applied after load), or after 5 s.
WHERE = """new Promise(resolve => {
  const started = performance.now();
  const check = () => {
    if (window.scrollY > 0 || performance.now() - started > 5000) {
      const paragraphs = [...document.querySelectorAll('p')].map(p => {
        const box = p.getBoundingClientRect();
        return {text: p.textContent, visible: box.bottom > 0 && box.top < window.innerHeight};
      });
      resolve({scrollY: window.scrollY, paragraphs});
    } else { setTimeout(check, 20); }
  };
  check();
})"""


class DevTools:
    """Chromium's DevTools protocol over --remote-debugging-pipe (fd 3 in, fd 4 out)."""

    def __init__(self, profile) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def on_fds_3_and_4() -> None:
            inbound = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            outbound = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(inbound, 3)
            os.dup2(outbound, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(3, 4), preexec_fn=on_fds_3_and_4)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive(timeout)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def wait_for(self, event: str, timeout: float = 30) -> dict:
        while True:
            message = self._receive(timeout)
            if message.get("method") == event:
                return message

    def _receive(self, timeout: float) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_browser], [], [], timeout)
            if not ready:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise EOFError("Chromium exited")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        os.close(self._to_browser)
        os.close(self._from_browser)


def open_at(browser: DevTools, url: str) -> dict:
    """Open `url` in a new tab; where the page is once it settled."""
    target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    browser.call("Page.enable", session=session)
    browser.call("Page.navigate", {"url": url}, session=session)
    browser.wait_for("Page.loadEventFired")
    result = browser.call("Runtime.evaluate", {"expression": WHERE, "awaitPromise": True, "returnByValue": True},
                          session=session)
    browser.call("Target.closeTarget", {"targetId": target})
    return result["result"]["value"]


@pytest.fixture
def site():
    site = Site()
    site.pages["/notes"] = Page(PAGE.encode())
    server = serve(site)
    yield site
    site.stopped.set()
    server.shutdown()


def test_each_quote_link_scrolls_chromium_to_the_quote(tmp_path, site):
    (tmp_path / "corpus").mkdir()
    settings = make_settings(tmp_path, web_delay_seconds=0)
    store = store_for(settings)
    store.add(site.base + "/notes", 0)
    store.close()
    build_index(settings)
    answerer = Answerer(settings)
    quotes = [answer_located(answerer, question).quotes[0] for question in
              ("Who lit the lighthouse lamp at dusk?", "When does the night ferry leave?")]
    # One quote long enough to be named by its first and last words (textStart,textEnd), one whole.
    assert {"," in quote.url.split("#:~:text=")[1] for quote in quotes} == {True, False}
    browser = DevTools(tmp_path / "profile")
    try:
        for quote in quotes:
            where = open_at(browser, quote.url)
            visible = [p["text"] for p in where["paragraphs"] if p["visible"]]
            assert where["scrollY"] > 0, quote.url
            assert any(" ".join(quote.text.split()) in " ".join(text.split()) for text in visible), quote.url
    finally:
        browser.close()
