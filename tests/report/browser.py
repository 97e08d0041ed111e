"""Load a page in headless Chromium and report what a reader's browser saw.

The DevTools protocol is spoken over ``--remote-debugging-pipe`` (JSON
messages separated by NUL bytes on file descriptors 3 and 4), so nothing
but the standard library is needed and no port is opened. Every request
the page makes is recorded; any that is not ``file:`` or ``data:`` is also
intercepted and failed, so a test can never reach the network.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["chromium_path", "PageReport", "Chromium"]

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
]

LOCAL_SCHEMES = ("file:", "data:", "about:")

# What the page reports about itself once loaded.
_PROBE = """(() => {
  const imgs = Array.from(document.images);
  return JSON.stringify({
    title: document.title,
    text_length: document.body ? document.body.innerText.length : 0,
    text: document.body ? document.body.innerText : "",
    n_images: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0))
                .map(i => (i.getAttribute('src') || '').slice(0, 60)),
    image_sizes: imgs.map(i => [i.naturalWidth, i.naturalHeight,
                                i.getBoundingClientRect().width]),
    image_srcs: imgs.map(i => (i.getAttribute('src') || '').slice(0, 30)),
    n_scripts: document.scripts.length,
    handlers: Array.from(document.querySelectorAll('*')).filter(
        e => Array.from(e.attributes).some(a => a.name.startsWith('on'))).length,
    n_figures: document.querySelectorAll('figure').length,
    n_captions: document.querySelectorAll('figure figcaption').length,
    sections: Array.from(document.querySelectorAll('section')).map(s => s.id),
    scroll_width: document.documentElement.scrollWidth,
    height: document.documentElement.scrollHeight,
  });
})()"""


def chromium_path() -> str | None:
    """The Chromium executable on PATH (Debian's ``chromium``), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageReport:
    """What loading one page produced."""

    url: str
    probe: dict[str, Any]
    screenshot: bytes
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    pdf: bytes | None = None
    print_screenshot: bytes | None = None
    print_scroll_width: int | None = None

    @property
    def remote_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(LOCAL_SCHEMES)]


class Chromium:
    """A headless Chromium driven over the DevTools pipe.

    Use as a context manager; each :meth:`load` opens a fresh tab.
    """

    def __init__(self, executable: str, *, timeout: float = 60.0):
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="embvar-chromium-")
        self.log = Path(self._profile) / "chromium.log"
        log = open(self.log, "wb")  # noqa: SIM115  (Chromium writes to it)
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def on_fds_3_and_4() -> None:
            # In the child: Chromium reads commands on fd 3 and writes on fd 4.
            # Copy both ends above 10 first, in case either is 3 or 4; the
            # copies close on exec, the dup2 targets stay open.
            high = [
                fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
                for fd in (to_chrome_r, from_chrome_w)
            ]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        # Every descriptor Python opens closes on exec (PEP 446), so keeping
        # them open (close_fds=False) passes exactly fds 3 and 4 on.
        self._proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            close_fds=False,
            preexec_fn=on_fds_3_and_4,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    # -- protocol ----------------------------------------------------------

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_chrome, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                self._inbox.put(None)
                return
            buf += chunk
            while b"\0" in buf:
                msg, buf = buf.split(b"\0", 1)
                self._inbox.put(json.loads(msg))

    def _pump(self, until: float) -> dict[str, Any] | None:
        try:
            msg = self._inbox.get(timeout=max(0.01, until - time.monotonic()))
        except queue.Empty:
            return None
        if msg is None:
            raise RuntimeError(
                f"Chromium closed the DevTools pipe (it exited): {self.log_tail()}"
            )
        return msg

    def send(
        self, method: str, params: dict | None = None, session: str | None = None
    ) -> dict[str, Any]:
        """Send one command and return its result; events are kept."""
        self._next_id += 1
        ident = self._next_id
        msg: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        try:
            os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        except BrokenPipeError as exc:
            raise RuntimeError(
                f"Chromium exited (code {self._proc.poll()}): {self.log_tail()}"
            ) from exc
        until = time.monotonic() + self.timeout
        while time.monotonic() < until:
            reply = self._pump(until)
            if reply is None:
                continue
            if reply.get("id") == ident:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._on_event(reply, session)
        raise TimeoutError(f"no reply to {method} within {self.timeout} s")

    def _on_event(self, event: dict[str, Any], session: str | None) -> None:
        self._events.append(event)
        if event.get("method") == "Fetch.requestPaused" and session:
            # Anything not local that the page tries to fetch is failed here.
            self.send(
                "Fetch.failRequest",
                {
                    "requestId": event["params"]["requestId"],
                    "errorReason": "BlockedByClient",
                },
                session,
            )

    def wait_for(self, method: str, session: str, seconds: float) -> bool:
        """Wait until an event ``method`` arrives for ``session``."""
        until = time.monotonic() + seconds
        seen = len(self._events)
        while time.monotonic() < until:
            for e in self._events[seen:]:
                if e.get("method") == method and e.get("sessionId") == session:
                    return True
            seen = len(self._events)
            msg = self._pump(until)
            if msg is not None:
                self._on_event(msg, session)
        return False

    def settle(self, session: str, seconds: float) -> None:
        """Collect events for ``seconds`` (late console messages, requests)."""
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            msg = self._pump(until)
            if msg is not None:
                self._on_event(msg, session)

    # -- one page -----------------------------------------------------------

    def load(
        self,
        path: str | Path,
        *,
        width: int = 1280,
        height: int = 900,
        print_view: bool = False,
    ) -> PageReport:
        """Open ``path`` in a new tab; return what the page showed and requested."""
        url = Path(path).resolve().as_uri()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send(
            "Target.attachToTarget", {"targetId": target, "flatten": True}
        )["sessionId"]
        first_event = len(self._events)
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", {}, session)
        self.send(
            "Fetch.enable",
            {
                "patterns": [
                    {"urlPattern": "http*"},
                    {"urlPattern": "ws*"},
                    {"urlPattern": "ftp*"},
                ]
            },
            session,
        )
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        self.send("Page.navigate", {"url": url}, session)
        if not self.wait_for("Page.loadEventFired", session, self.timeout):
            raise TimeoutError(f"{url} did not finish loading in {self.timeout} s")
        self.settle(session, 0.5)
        probe = json.loads(
            self.send(
                "Runtime.evaluate",
                {"expression": _PROBE, "returnByValue": True},
                session,
            )["result"]["value"]
        )
        metrics = self.send("Page.getLayoutMetrics", {}, session)
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot = self.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": width,
                    "height": min(int(size["height"]), 16000),
                    "scale": 1,
                },
            },
            session,
        )["data"]
        report = PageReport(url, probe, base64.b64decode(shot))
        if print_view:
            report.pdf = base64.b64decode(
                self.send(
                    "Page.printToPDF",
                    {"printBackground": False, "preferCSSPageSize": True},
                    session,
                )["data"]
            )
            # What a printed page looks like: print media at A4's CSS width.
            self.send("Emulation.setEmulatedMedia", {"media": "print"}, session)
            self.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": 718, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
                session,
            )
            self.settle(session, 0.3)
            report.print_scroll_width = self.send(
                "Runtime.evaluate",
                {
                    "expression": "document.documentElement.scrollWidth",
                    "returnByValue": True,
                },
                session,
            )["result"]["value"]
            metrics = self.send("Page.getLayoutMetrics", {}, session)
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            report.print_screenshot = base64.b64decode(
                self.send(
                    "Page.captureScreenshot",
                    {
                        "format": "png",
                        "captureBeyondViewport": True,
                        "clip": {
                            "x": 0,
                            "y": 0,
                            "width": 718,
                            "height": min(int(size["height"]), 16000),
                            "scale": 1,
                        },
                    },
                    session,
                )["data"]
            )
        self.settle(session, 0.3)
        for e in self._events[first_event:]:
            if e.get("sessionId") != session:
                continue
            method, params = e.get("method"), e.get("params", {})
            if method == "Network.requestWillBeSent":
                report.requests.append(params["request"]["url"][:200])
            elif method == "Fetch.requestPaused":
                report.blocked.append(params["request"]["url"])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "assert",
                "warning",
            ):
                report.console_errors.append(
                    " ".join(
                        str(a.get("value", a.get("description", "")))
                        for a in params.get("args", [])
                    )
                )
            elif method == "Runtime.exceptionThrown":
                report.console_errors.append(
                    params.get("exceptionDetails", {}).get("text", "exception")
                )
            elif method == "Log.entryAdded" and params["entry"]["level"] in (
                "error",
                "warning",
            ):
                report.console_errors.append(params["entry"].get("text", ""))
        self.send("Target.closeTarget", {"targetId": target})
        return report

    # -- lifetime -------------------------------------------------------------

    def log_tail(self, n: int = 2000) -> str:
        """The end of Chromium's own log, D-Bus complaints left out."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(x for x in lines if "dbus" not in x)[-n:]

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
