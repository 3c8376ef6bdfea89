"""The report opened in a real headless Chromium, through the DevTools protocol: nothing is
requested from outside the file, every figure renders, Table 1 has its rows.

The page is written from the committed demo results (metrics/, plots/ of this checkout) into
pytest's tmp folder, opened as a file: URL with the Network domain enabled, and every request
the page makes is recorded (``Network.requestWillBeSent``): only file: and data: URLs may
appear. A page that loads an https:// image or font fails the check (the second test shows it
on a page made to). A screenshot of the viewport is written next to the page;
``CABINLIFT_REPORT_SCREENSHOT=PATH`` saves it there too. Without Chromium (Debian package
``chromium``, ``make install-browser``) the tests are skipped, unless
``CABINLIFT_REQUIRE_CHROMIUM=1`` (``make test``), which fails them.

As a script, for a report already written::

    cabinlift report && python tests/report/test_report_browser.py --screenshot /tmp/report.png
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIFTERS = ("SimpleBL", "SemGCN", "GraFormer", "GraphMLP", "JointFormer")
#: What the page may request: itself and what it holds.
ALLOWED_SCHEMES = ("file:", "data:")
#: The seconds Chromium has to start and the page to load.
TIMEOUT_S = 60
#: What the page reports about itself once loaded (fonts included).
INSPECT_JS = """(async () => {
  await document.fonts.ready;
  const table = document.getElementById("table1");
  return {
    title: document.title,
    images: [...document.images].map(i => ({src: i.currentSrc.slice(0, 32),
                                            complete: i.complete, width: i.naturalWidth})),
    table1_rows: table ? [...table.tBodies[0].rows].map(r => r.cells[0].textContent.trim())
                       : null,
    svgs: document.querySelectorAll("svg").length,
    height: document.documentElement.scrollHeight,
  };
})()"""


def chromium() -> str | None:
    """The Chromium executable on PATH (Debian's ``chromium``), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class DevTools:
    """A DevTools protocol connection to the browser: commands (optionally to a page's
    session) and the events received so far."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0
        self.pending: dict[int, asyncio.Future] = {}
        self.events: list[dict[str, Any]] = []
        self.waiting: list[tuple[str, asyncio.Future]] = []
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
            elif "method" in data:
                self.events.append(data)
                for method, future in list(self.waiting):
                    if method == data["method"] and not future.done():
                        future.set_result(data)

    def event(self, method: str) -> asyncio.Future:
        """A future of the next event ``method`` (ask before causing it)."""
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((method, future))
        return future

    async def send(self, method: str, params: dict[str, Any] | None = None,
                   session: str | None = None) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        future = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        await self.ws.send_str(json.dumps(message))
        reply = await asyncio.wait_for(future, TIMEOUT_S)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]


def _devtools_address(profile: Path, proc: subprocess.Popen, log: Path) -> str:
    """The browser's DevTools WebSocket address, from ``DevToolsActivePort`` in its profile
    folder (the port it chose, then the browser target's path)."""
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if port_file.is_file():
            lines = port_file.read_text().split()
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"Chromium did not open its DevTools port:\n{log.read_text()[-2000:]}")


async def _inspect(url: str, address: str, width: int, full_page: bool
                   ) -> tuple[dict[str, Any], list[str], bytes]:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.ws_connect(address, max_msg_size=0) as ws:
        cdp = DevTools(ws)
        target = await cdp.send("Target.createTarget", {"url": "about:blank"})
        session = (await cdp.send("Target.attachToTarget", {"targetId": target["targetId"],
                                                             "flatten": True}))["sessionId"]
        for domain in ("Network", "Page", "Runtime"):
            await cdp.send(f"{domain}.enable", session=session)
        await cdp.send("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session)
        loaded = cdp.event("Page.loadEventFired")
        await cdp.send("Page.navigate", {"url": url}, session)
        await asyncio.wait_for(loaded, TIMEOUT_S)
        evaluated = await cdp.send("Runtime.evaluate", {
            "expression": INSPECT_JS, "awaitPromise": True, "returnByValue": True}, session)
        if "exceptionDetails" in evaluated:
            raise RuntimeError(f"the inspection script failed: {evaluated['exceptionDetails']}")
        facts = evaluated["result"]["value"]
        shot: dict[str, Any] = {"format": "png"}
        if full_page:
            shot.update(captureBeyondViewport=True, clip={
                "x": 0, "y": 0, "width": width, "height": facts["height"], "scale": 1})
        png = base64.b64decode((await cdp.send("Page.captureScreenshot", shot, session))["data"])
        requests = [e["params"]["request"]["url"] for e in cdp.events
                    if e["method"] == "Network.requestWillBeSent"]
        cdp.reader.cancel()
        return facts, requests, png


def open_in_chromium(page: Path, width: int = 1280, full_page: bool = False
                     ) -> tuple[dict[str, Any], list[str], bytes]:
    """Open ``page`` in a fresh headless Chromium; return what the page reports about itself
    (:data:`INSPECT_JS`), the URL of every request it made, and a PNG screenshot (the viewport,
    or the whole page)."""
    exe = chromium()
    if exe is None:
        raise RuntimeError("chromium is not installed (make install-browser)")
    with tempfile.TemporaryDirectory(prefix="cabinlift-chromium-",
                                     ignore_cleanup_errors=True) as tmp:
        profile, log = Path(tmp) / "profile", Path(tmp) / "chromium.log"
        with log.open("w") as err:
            # --no-sandbox: the page is our own file, and the sandbox cannot start as root or
            # in many containers
            proc = subprocess.Popen(
                [exe, "--headless=new", "--remote-debugging-port=0",
                 f"--user-data-dir={profile}", "--no-sandbox", "--no-first-run",
                 "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
                 "--disable-background-networking", "--disable-component-update",
                 "about:blank"], stdout=subprocess.DEVNULL, stderr=err)
        try:
            address = _devtools_address(profile, proc, log)
            return asyncio.run(_inspect(page.resolve().as_uri(), address, width, full_page))
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def outside(requests: list[str]) -> list[str]:
    """The requests for anything outside the page (not a file: or data: URL)."""
    return [u for u in requests if not u.startswith(ALLOWED_SCHEMES)]


@pytest.fixture(scope="module")
def browser() -> None:
    if chromium() is None:
        if os.environ.get("CABINLIFT_REQUIRE_CHROMIUM") == "1":
            pytest.fail("chromium is not installed and CABINLIFT_REQUIRE_CHROMIUM=1 "
                        "(make install-browser)")
        pytest.skip("chromium is not installed (make install-browser)")


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory) -> Path:
    """The report of the committed demo results, written into pytest's tmp folder."""
    from cabinlift.config import load_config
    from cabinlift.report.stage import run_report

    out = tmp_path_factory.mktemp("report") / "report.html"
    run_report(load_config(ROOT / "params.yaml"), ROOT / "metrics", ROOT / "plots",
               ROOT / "references" / "paper_table1.json", ROOT / "profiles",
               ROOT / "data" / "inputs" / "numerics.json", ROOT / "logs", out, ROOT)
    return out


def test_the_report_renders_offline_in_chromium(browser, demo_report: Path):
    facts, requests, png = open_in_chromium(demo_report)
    (demo_report.parent / "report.png").write_bytes(png)
    if os.environ.get("CABINLIFT_REPORT_SCREENSHOT"):
        Path(os.environ["CABINLIFT_REPORT_SCREENSHOT"]).write_bytes(png)
    assert requests and requests[0] == demo_report.resolve().as_uri()  # it did load the page
    assert outside(requests) == []
    assert len(facts["images"]) == 6
    assert all(i["complete"] and i["width"] > 0 and i["src"].startswith("data:image/png")
               for i in facts["images"]), facts["images"]
    assert facts["svgs"] >= 1  # the convergence figure
    rows = facts["table1_rows"]
    assert rows == [name for lifter in LIFTERS for name in (lifter, f"PT {lifter}")] + [
        "Mean training pose"], rows
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


def test_a_page_that_loads_an_outside_image_or_font_fails_the_check(browser, tmp_path):
    page = tmp_path / "leaky.html"
    page.write_text(
        "<!DOCTYPE html><html><head><style>@font-face { font-family: Leak; src: "
        "url(https://fonts.example.invalid/leak.woff2); } p { font-family: Leak; }</style>"
        "</head><body><p>text</p><img src='https://cdn.example.invalid/figure.png'>"
        "<img src='data:image/gif;base64,R0lGODlhAQABAAAAACw=' alt=''></body></html>")
    facts, requests, _ = open_in_chromium(page)
    assert sorted(outside(requests)) == ["https://cdn.example.invalid/figure.png",
                                         "https://fonts.example.invalid/leak.woff2"]
    assert not all(i["complete"] and i["width"] > 0 for i in facts["images"])


def main(argv: list[str] | None = None) -> int:
    """Open a written report, print what Chromium saw, save a screenshot; exit status 1 when
    the page requests anything outside itself or a figure does not render."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--page", default=str(ROOT / "metrics" / "report.html"))
    parser.add_argument("--screenshot", help="write a PNG screenshot here")
    parser.add_argument("--width", type=int, default=1280, help="viewport width in px")
    parser.add_argument("--full-page", action="store_true", help="the whole page, not the "
                        "first screen")
    args = parser.parse_args(argv)
    facts, requests, png = open_in_chromium(Path(args.page), args.width, args.full_page)
    if args.screenshot:
        Path(args.screenshot).write_bytes(png)
    leaks = outside(requests)
    broken = [i for i in facts["images"] if not (i["complete"] and i["width"] > 0)]
    print(json.dumps({"requests": len(requests), "outside": leaks, "images": len(facts["images"]),
                      "broken_images": broken, "table1_rows": facts["table1_rows"],
                      "height_px": facts["height"]}, indent=1))
    return 1 if leaks or broken else 0


if __name__ == "__main__":
    sys.exit(main())
