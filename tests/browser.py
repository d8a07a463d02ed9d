"""Headless Chromium driven over the DevTools protocol on a pipe (no extra packages).

Chromium started with ``--remote-debugging-pipe`` reads protocol commands from
file descriptor 3 and writes replies and events to 4, each a JSON message
ended by a NUL byte. That is all a test needs to load a page, collect console
errors, read values out of the page and print it to PDF.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The flags the issue asks for: no network chatter, no first-run, a fresh profile each time.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageResult:
    errors: list[str] = field(default_factory=list)  # console errors, uncaught exceptions, failed loads
    value: Any = None  # what the evaluated expression returned
    pdf: bytes = b""
    png: bytes = b""


class Browser:
    def __init__(self, timeout: float = 60.0) -> None:
        exe = chromium_path()
        if exe is None:
            raise FileNotFoundError("chromium is not installed")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="ersattning-chromium-")
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # move the child's ends far from 3 and 4 first, so placing them there clobbers nothing
        child_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 100)
        child_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 100)
        os.close(to_browser_r)
        os.close(from_browser_w)

        def place_fds() -> None:
            os.dup2(child_in, 3, inheritable=True)
            os.dup2(child_out, 4, inheritable=True)

        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=place_fds,  # noqa: PLW1509 — the only way to hand a child fds 3 and 4
            pass_fds=(3, 4),
        )
        os.close(child_in)
        os.close(child_out)
        self.w = to_browser_w
        self.r = from_browser_r
        self.buf = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except Exception:  # noqa: BLE001 — the browser may be gone already
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.w)
        os.close(self.r)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the protocol ---------------------------------------------------------------

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        reply = self._read_until(lambda m: m.get("id") == self.next_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_for(self, method: str, session: str) -> dict[str, Any]:
        for i, e in enumerate(self.events):
            if e.get("method") == method and e.get("sessionId") == session:
                return self.events.pop(i)
        return self._read_until(lambda m: m.get("method") == method and m.get("sessionId") == session, keep=False)

    def _read_until(self, wanted: Any, keep: bool = True) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                msg = json.loads(raw)
                if wanted(msg):
                    return msg
                if "method" in msg:
                    self.events.append(msg)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from chromium")
            ready, _, _ = select.select([self.r], [], [], left)
            if ready:
                chunk = os.read(self.r, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self.buf += chunk

    # -- what tests use ----------------------------------------------------------------

    def load(self, path: Path, expression: str, *, width: int = 1280, height: int = 900) -> PageResult:
        """Open a file, wait for it to load, evaluate ``expression`` (JSON-able), print PDF and PNG."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
        nav = self.send("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
        if nav.get("errorText"):
            raise RuntimeError(f"navigation failed: {nav['errorText']}")
        self.wait_for("Page.loadEventFired", session)
        result = PageResult()
        evaluated = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}, session=session)
        if "exceptionDetails" in evaluated:
            result.errors.append(f"evaluate: {evaluated['exceptionDetails'].get('text')}")
        result.value = evaluated.get("result", {}).get("value")
        result.pdf = base64.b64decode(self.send("Page.printToPDF", {"printBackground": True, "preferCSSPageSize": True}, session=session)["data"])
        result.png = base64.b64decode(self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session)["data"])
        result.errors += _errors(e for e in self.events if e.get("sessionId") == session)
        self.send("Target.closeTarget", {"targetId": target})
        return result


def _errors(events: Any) -> list[str]:
    out = []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            out.append("exception: " + p.get("exceptionDetails", {}).get("text", ""))
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.append(f"log ({p['entry'].get('source')}): {p['entry'].get('text')} {p['entry'].get('url', '')}".strip())
        elif method == "Network.loadingFailed" and not p.get("canceled"):
            out.append(f"network: {p.get('errorText')}")
    return out
