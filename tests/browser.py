"""Headless Chromium driven over the DevTools protocol on a pipe (no driver, no websocket
library): enough to open a page, click where a user would, and read what it did.

    with Browser() as browser:            # skips the test where no Chromium is installed
        page = browser.open("file:///tmp/page.html", downloads=tmp_path)
        page.click(120, 80)
        page.evaluate("document.title")
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def chromium() -> str | None:
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def _high(fd: int) -> int:
    """The same pipe end on an fd >= 10, so that placing the pipes on 3 and 4 cannot clobber them."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class Page:
    def __init__(self, browser: "Browser", session: str):
        self.browser, self.session = browser, session

    def call(self, method: str, **params):
        return self.browser.call(method, session=self.session, **params)

    def evaluate(self, expression: str):
        reply = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in reply:
            raise AssertionError(f"the page's script failed: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def centre_of(self, selector: str) -> tuple[float, float]:
        box = self.evaluate(f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                            " return [r.left + r.width / 2, r.top + r.height / 2]; })()")
        return box[0], box[1]

    def click(self, x: float, y: float) -> None:
        """A left click as a mouse makes it: pressed, then released, at (x, y) in the page's pixels."""
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


class Browser:
    def __init__(self):
        self.binary = chromium()
        if self.binary is None:
            pytest.skip("needs Chromium (Debian: apt install chromium); the page itself needs no server or network")

    def __enter__(self) -> "Browser":
        self.profile = tempfile.mkdtemp(prefix="chromium-")
        to_chrome_r, self.to_chrome = map(_high, os.pipe())
        self.from_chrome, from_chrome_w = map(_high, os.pipe())

        def place_pipes():  # the DevTools pipe: Chromium reads fd 3 and writes fd 4
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen([self.binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                      "--remote-debugging-pipe", f"--user-data-dir={self.profile}", "--window-size=1280,1600", "about:blank"],
                                     preexec_fn=place_pipes, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buffer, self.next_id, self.events = b"", 0, []
        return self

    def call(self, method: str, session: str | None = None, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise AssertionError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
                self.events.append(reply)
            chunk = os.read(self.from_chrome, 1 << 16)
            if not chunk:
                raise AssertionError("Chromium closed its DevTools pipe")
            self.buffer += chunk

    def open(self, url: str, downloads=None) -> Page:
        if downloads is not None:
            self.call("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))
        target = self.call("Target.createTarget", url=url)["targetId"]
        page = Page(self, self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"])
        deadline = time.monotonic() + 30
        while page.evaluate("[document.URL, document.readyState]") != [url, "complete"]:  # not the blank page before it
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not load")
            time.sleep(0.05)
        return page

    def __exit__(self, *exc) -> None:
        try:
            self.call("Browser.close")
            self.proc.wait(timeout=20)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self.to_chrome)
            os.close(self.from_chrome)
            shutil.rmtree(self.profile, ignore_errors=True)
