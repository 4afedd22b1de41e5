"""Headless Chromium for tests, driven over the DevTools protocol on a pipe (no extra package).

``Chromium`` starts one browser with a throwaway profile; ``Chromium.open`` gives a ``Page`` (a tab)
that can evaluate script, take screenshots, press keys and see the requests and console errors it
made. By default every host name is unresolvable and every request goes to a proxy that goes
nowhere (``projections.packs.pdf.OFFLINE_FLAGS``); a test of a site on the loopback passes
``LOOPBACK_FLAGS`` instead, which let 127.0.0.1 through and nothing else.

Chromium is required: ``start_chromium`` fails the test (never skips), saying how to install it.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from projections.packs.pdf import INSTALL_HINT, OFFLINE_FLAGS, ChromiumError, find_chromium

# A site on 127.0.0.1: host names stay unresolvable (so nothing leaves the machine), no proxy.
LOOPBACK_FLAGS = tuple(
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" if f.startswith("--host-resolver-rules") else f
    for f in OFFLINE_FLAGS if not f.startswith(("--proxy-server", "--proxy-bypass-list"))
)
# Key codes of the keys a keyboard-only pass presses.
KEYS = {"Tab": 9, "Enter": 13, "ArrowDown": 40, "ArrowUp": 38, "Space": 32, "Escape": 27}


class Chromium:
    """Chromium with --remote-debugging-pipe: CDP messages are NUL-terminated JSON on fds 3 (in) and 4 (out)."""

    def __init__(self, binary: str, flags: Sequence[str] = OFFLINE_FLAGS) -> None:
        self.profile = tempfile.mkdtemp(prefix="test-chromium-")
        to_chromium, self._writer = os.pipe()
        self._reader, from_chromium = os.pipe()

        def wire_fds() -> None:  # in the child: the pipes become fds 3 and 4, inheritable
            inbound = fcntl.fcntl(to_chromium, fcntl.F_DUPFD, 10)
            outbound = fcntl.fcntl(from_chromium, fcntl.F_DUPFD, 10)
            os.dup2(inbound, 3)
            os.dup2(outbound, 4)

        self.process = subprocess.Popen(
            [binary, *flags, "--remote-debugging-pipe", f"--user-data-dir={self.profile}", "--hide-scrollbars",
             "about:blank"],
            preexec_fn=wire_fds, close_fds=False, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env={**os.environ, "HOME": self.profile},
        )
        os.close(to_chromium)
        os.close(from_chromium)
        self._buffer = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._reader], [], [], max(0.05, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("Chromium sent nothing in time")
            chunk = os.read(self._reader, 1 << 20)
            if not chunk:
                raise EOFError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(raw)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None, timeout: float = 60) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._writer, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, session: str | None, timeout: float = 60, after: int = 0,
                 where: Callable[[dict[str, Any]], bool] = lambda event: True) -> dict[str, Any]:
        """The first event ``method`` of ``session`` (None: the browser's own) at or after index ``after``
        that ``where`` accepts."""
        deadline = time.monotonic() + timeout
        seen = after
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method and event.get("sessionId") == session and where(event):
                    return event
            seen = max(seen, len(self.events))
            self.events.append(self._message(deadline))

    def open(self, url: str, width: int = 900, *, mobile: bool = False) -> Page:
        """A new tab in a context of its own: its cookies are its own, as another person's browser."""
        context = self.send("Target.createBrowserContext")["browserContextId"]
        target = self.send("Target.createTarget", {"url": "about:blank", "browserContextId": context})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=session)
        page = Page(self, target, session, width, context)
        page.resize(width, mobile=mobile)
        page.navigate(url)
        return page

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._writer)
        os.close(self._reader)
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, browser: Chromium, target: str, session: str, width: int = 900, context: str | None = None) -> None:
        self.browser, self.target, self.session, self.width, self.context = browser, target, session, width, context

    def resize(self, width: int, *, mobile: bool = False) -> None:
        self.width = width
        self.browser.send("Emulation.setDeviceMetricsOverride",
                          {"width": width, "height": 1200, "deviceScaleFactor": 1, "mobile": mobile}, session=self.session)

    def loading(self) -> int:
        """A mark to wait from: the next page load after it (``loaded``)."""
        return len(self.browser.events)

    def loaded(self, mark: int, timeout: float = 60) -> None:
        self.browser.wait_for("Page.loadEventFired", self.session, timeout, after=mark)

    def navigate(self, url: str) -> None:
        mark = self.loading()
        self.browser.send("Page.navigate", {"url": url}, session=self.session)
        self.loaded(mark)

    def evaluate(self, expression: str, *, awaited: bool = False) -> Any:
        result = self.browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                        "awaitPromise": awaited}, session=self.session)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    @property
    def url(self) -> str:
        return self.evaluate("location.href")

    def press(self, key: str) -> None:
        """One key, down and up, as the keyboard sends it (Input.dispatchKeyEvent)."""
        code = KEYS[key]
        text = {"Enter": "\r", "Space": " "}.get(key)
        down = {"type": "keyDown" if text else "rawKeyDown", "key": key, "code": key, "windowsVirtualKeyCode": code,
                "nativeVirtualKeyCode": code, **({"text": text, "unmodifiedText": text} if text else {})}
        self.browser.send("Input.dispatchKeyEvent", down, session=self.session)
        self.browser.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": key, "code": key,
                                                     "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code},
                          session=self.session)

    def type(self, text: str) -> None:
        """Characters typed one by one on the keyboard."""
        for character in text:
            self.browser.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": character, "text": character,
                                                         "unmodifiedText": character}, session=self.session)
            self.browser.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": character}, session=self.session)

    def focused(self) -> str:
        """What has the keyboard's focus: its tag, id or name, and text."""
        return self.evaluate("(e => e ? [e.tagName.toLowerCase(), e.id || e.name || '', (e.innerText || e.value || '')"
                             ".trim().slice(0, 40)].join('|') : '')(document.activeElement)")

    def events(self, method: str, since: int = 0) -> list[dict[str, Any]]:
        """The tab's events ``method``, from index ``since`` of the browser's (a ``loading()`` mark) on."""
        return [e["params"] for e in self.browser.events[since:]
                if e.get("method") == method and e.get("sessionId") == self.session]

    def requests(self) -> list[str]:
        return [e["request"]["url"] for e in self.events("Network.requestWillBeSent")]

    def console_errors(self, since: int = 0) -> list[str]:
        errors = [json.dumps(e["args"]) for e in self.events("Runtime.consoleAPICalled", since) if e["type"] in ("error", "assert")]
        errors += [e["exceptionDetails"].get("text", "exception") for e in self.events("Runtime.exceptionThrown", since)]
        errors += [e["entry"]["text"] for e in self.events("Log.entryAdded", since) if e["entry"]["level"] == "error"]
        return errors

    def screenshot(self, path: Path, *, full: bool = True) -> Path:
        height = int(self.evaluate("document.documentElement.scrollHeight")) if full else 1200
        shot = self.browser.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": full,
            "clip": {"x": 0, "y": 0, "width": self.width, "height": min(height, 16000), "scale": 1},
        }, session=self.session)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target})
        if self.context:
            self.browser.send("Target.disposeBrowserContext", {"browserContextId": self.context})


def start_chromium(flags: Sequence[str] = OFFLINE_FLAGS, *, why: str = "these tests open pages in headless Chromium") -> Chromium:
    """A running Chromium, or the test fails saying how to install it."""
    try:
        binary = find_chromium()
    except ChromiumError as missing:
        pytest.fail(f"{why}, which is missing: {missing}. "
                    f"Install it with: apt-get update && apt-get install -y chromium", pytrace=False)
    browser = Chromium(binary, flags)
    try:
        browser.send("Browser.getVersion", timeout=30)
    except (EOFError, TimeoutError) as failure:
        browser.close()
        pytest.fail(f"headless Chromium ({binary}) did not start: {failure}; {INSTALL_HINT}", pytrace=False)
    return browser
