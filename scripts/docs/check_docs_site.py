"""Open every page of the built docs in headless Chromium and fail on what a reader sees broken.

``mkdocs build --strict`` checks links, not what a browser shows. This script builds the site
(or takes a built one), serves it on 127.0.0.1 on a free port, loads every page in headless
Chromium through the Chrome DevTools protocol, and reports, per page and viewport width:

- raw math left in the rendered text (``\\(``, ``\\[``, ``$$`` outside code) and KaTeX errors;
- images that did not load, and any request that failed (a missing font, script, stylesheet);
- JavaScript errors: uncaught exceptions, ``console.error``, the browser's own error log;
- requests that leave the site (a CDN, web fonts): the site must work without network (the
  theme's GitHub repository facts, which fail quietly, are allowed: ``ALLOWED_EXTERNAL``);
- pages wider than the viewport (a horizontal scroll bar), naming the elements that stick out.

Chromium runs behind a proxy address where nothing listens, so no request ever leaves the
machine; one that tries is reported. It saves one full-page screenshot per page (at the first
width) to ``--screenshots`` for the person who runs it.

Usage::

    npm ci    # KaTeX for the docs (package.json)
    python scripts/docs/check_docs_site.py --screenshots docs-screenshots
    python scripts/docs/check_docs_site.py --site /tmp/site --widths 1280

Needs Chromium or Chrome (``apt-get install chromium``; ``--chromium`` or ``$CHROMIUM`` for
another path) and ``websocket-client`` (the ``docs`` extra). Exits 1 when a page has a problem.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# The theme's repository header asks GitHub for stars, forks and the latest release; without
# network it shows the repository name alone, so these requests are allowed to fail.
ALLOWED_EXTERNAL = ("https://api.github.com/repos/",)
# The most a full-page screenshot covers, in CSS pixels (results.md is long).
MAX_SCREENSHOT_HEIGHT = 12000

# Runs in the page once it has loaded: waits for images and fonts, then collects what a reader
# would see broken. Text inside code, and KaTeX's own output (which keeps the TeX source for
# copy and paste), is not prose.
_INSPECT_JS = r"""
(async () => {
  for (const img of document.images) img.loading = "eager";
  await Promise.all([...document.images].map((img) => img.complete ? null : new Promise((r) => {
    img.addEventListener("load", r); img.addEventListener("error", r); setTimeout(r, 5000);
  })));
  await document.fonts.ready;
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const skip = "pre, code, script, style, textarea, .katex, .katex-display";
  const raw = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent;
    const hit = ["\\(", "\\[", "$$"].map((d) => text.indexOf(d)).filter((i) => i >= 0);
    if (!hit.length || node.parentElement.closest(skip)) continue;
    const at = Math.min(...hit);
    raw.push(text.slice(Math.max(0, at - 30), at + 50).replace(/\s+/g, " ").trim());
  }
  const katexErrors = [...document.querySelectorAll(".katex-error")].map(
    (el) => (el.getAttribute("title") || "") + ": " + el.textContent);
  const images = [...document.images].filter((img) => !img.complete || img.naturalWidth === 0)
    .map((img) => img.getAttribute("src"));
  const viewport = document.documentElement.clientWidth;
  const overflowing = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.right <= viewport + 1) continue;
    // Report the outermost element that sticks out, not each of its children.
    if (overflowing.length && overflowing[overflowing.length - 1].el.contains(el)) continue;
    let clipped = false;
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (s.overflowX !== "visible" && p.getBoundingClientRect().right <= viewport + 1) {
        clipped = true; break;
      }
    }
    if (!clipped) overflowing.push({el, right: Math.round(box.right)});
  }
  return {
    raw, katexErrors, images, viewport,
    scrollWidth: document.documentElement.scrollWidth,
    height: document.documentElement.scrollHeight,
    overflowing: overflowing.slice(0, 5).map(({el, right}) => {
      const cls = el.className && typeof el.className === "string" ?
        "." + el.className.trim().split(/\s+/).join(".") : "";
      return `<${el.tagName.toLowerCase()}${cls}> reaches ${right}px`;
    }),
  };
})()
"""


@dataclass(frozen=True)
class Problem:
    """One thing a reader would see broken.

    Args:
        page: the page's path in the site, e.g. ``concepts/``.
        width: the viewport width, in CSS pixels, it was seen at.
        kind: ``raw-math``, ``katex-error``, ``image``, ``request-failed``, ``external-request``,
            ``js-error`` or ``too-wide``.
        detail: what exactly, for the person fixing it.
    """

    page: str
    width: int
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.page} @{self.width}px: {self.kind}: {self.detail}"


def find_chromium(explicit: str | None = None) -> str | None:
    """Path of a Chromium or Chrome executable: ``explicit``, ``$CHROMIUM``, else on ``PATH``."""
    for candidate in (explicit, os.environ.get("CHROMIUM")):
        if candidate:
            found = shutil.which(candidate)
            if found is None:
                raise FileNotFoundError(f"Chromium executable {candidate!r} not found")
            return found
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


class DevTools:
    """A minimal Chrome DevTools protocol client: one headless Chromium, pages as sessions."""

    def __init__(self, executable: str, timeout: float = 30.0) -> None:
        try:
            import websocket
        except ImportError as err:
            raise ImportError(
                "check_docs_site.py talks to Chromium with websocket-client: "
                'pip install -e ".[docs]"'
            ) from err

        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="check_docs_site_")
        self._proc = subprocess.Popen(
            [
                executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                f"--user-data-dir={self._profile}", "--remote-debugging-port=0",
                # Nothing listens on the discard port: every request that would leave the
                # machine fails here, and the check reports it.
                "--proxy-server=127.0.0.1:9",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        port_file = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.is_file() and len(port_file.read_text().splitlines()) >= 2):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"{executable} did not start its DevTools endpoint")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self._ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}{path}", timeout=timeout, suppress_origin=True
        )
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        message: dict = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        while True:
            reply = json.loads(self._ws.recv())
            if reply.get("id") != self._next_id:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise RuntimeError(f"{method}: {reply['error'].get('message')}")
            return reply["result"]

    def wait_for(self, method: str, session: str) -> dict:
        """Block until the event ``method`` arrives for ``session``."""
        deadline = time.monotonic() + self.timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method and event.get("sessionId") == session:
                    return event
            seen = len(self.events)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {self.timeout:.0f} s")
            self.events.append(json.loads(self._ws.recv()))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ws.close()
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        shutil.rmtree(self._profile, ignore_errors=True)


@contextlib.contextmanager
def serve(site: Path) -> Iterator[str]:
    """Serve ``site`` on 127.0.0.1 on a free port; yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def site_pages(site: Path) -> list[str]:
    """The pages of a built site, as URL paths (``""`` for the home page, ``concepts/``)."""
    pages = []
    for html in sorted(site.rglob("*.html")):
        rel = html.relative_to(site).as_posix()
        pages.append(rel[: -len("index.html")] if rel.endswith("index.html") else rel)
    return pages


def _console_problems(events: list[dict], session: str) -> Iterator[tuple[str, str]]:
    for event in events:
        if event.get("sessionId") != session:
            continue
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            yield "js-error", f"uncaught {text.splitlines()[0]} ({details.get('url', '')})"
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            yield "js-error", f"console.{params['type']}: {args}"
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            if params["entry"].get("source") != "network":  # reported as request-failed
                yield "js-error", params["entry"]["text"]


def _network_problems(
    events: list[dict], session: str, allowed_external: Sequence[str]
) -> Iterator[tuple[str, str]]:
    urls: dict[str, str] = {}
    for event in events:
        if event.get("sessionId") != session:
            continue
        method, params = event.get("method"), event.get("params", {})
        if method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            urls[params["requestId"]] = url
            parts = urlsplit(url)
            outside = parts.scheme in ("http", "https", "ws", "wss")
            if outside and parts.hostname not in LOCAL_HOSTS:
                if not url.startswith(tuple(allowed_external)):
                    yield "external-request", url
        elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
            url = params["response"]["url"]
            # Chromium asks for /favicon.ico by itself when a page names no icon.
            if urlsplit(url).path != "/favicon.ico":
                yield "request-failed", f"{params['response']['status']} {url}"
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            url = urls.get(params["requestId"], "?")
            if urlsplit(url).hostname in LOCAL_HOSTS:
                yield "request-failed", f"{params['errorText']} {url}"


def check_page(
    browser: DevTools, base_url: str, page: str, width: int, height: int = 900,
    screenshot: Path | None = None, allowed_external: Sequence[str] = ALLOWED_EXTERNAL,
) -> list[Problem]:
    """Load one page at one viewport width and return what is broken on it.

    Args:
        browser: the running Chromium.
        base_url: the served site, ending in ``/``.
        page: the page's URL path in the site.
        width: viewport width in CSS pixels.
        height: viewport height in CSS pixels.
        screenshot: where to save a full-page PNG, or ``None``.
        allowed_external: URL prefixes outside the site that the page may ask for.

    Returns:
        The problems found, in the order they were seen.
    """
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
        "sessionId"
    ]
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session=session)
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
            session=session,
        )
        start = len(browser.events)
        browser.send("Page.navigate", {"url": base_url + page}, session=session)
        browser.wait_for("Page.loadEventFired", session)
        found = browser.send(
            "Runtime.evaluate",
            {"expression": _INSPECT_JS, "awaitPromise": True, "returnByValue": True},
            session=session,
        )
        if "exceptionDetails" in found:
            raise RuntimeError(f"inspecting {page}: {found['exceptionDetails']}")
        seen = found["result"]["value"]
        if screenshot is not None:
            shot = browser.send(
                "Page.captureScreenshot",
                {
                    "format": "png", "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": width, "scale": 1,
                             "height": min(seen["height"], MAX_SCREENSHOT_HEIGHT)},
                },
                session=session,
            )
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        events = browser.events[start:]
    finally:
        browser.send("Target.closeTarget", {"targetId": target})
    name = page or "/"
    problems = [Problem(name, width, "raw-math", f"...{text}...") for text in seen["raw"]]
    problems += [Problem(name, width, "katex-error", err) for err in seen["katexErrors"]]
    problems += [Problem(name, width, "image", f"did not load: {src}") for src in seen["images"]]
    for kind, detail in (*_network_problems(events, session, allowed_external),
                         *_console_problems(events, session)):
        problems.append(Problem(name, width, kind, detail))
    if seen["scrollWidth"] > seen["viewport"]:
        culprits = "; ".join(seen["overflowing"]) or "no single element found"
        problems.append(Problem(
            name, width, "too-wide",
            f"page is {seen['scrollWidth']}px wide in a {seen['viewport']}px viewport: {culprits}",
        ))
    return problems


def screenshot_name(page: str) -> str:
    """A page's screenshot file: ``concepts/`` -> ``concepts.png``, home -> ``index.png``."""
    stem = page.strip("/").removesuffix(".html").replace("/", "_")
    return f"{stem or 'index'}.png"


def check_site(
    site: Path, chromium: str, widths: Sequence[int] = (1280, 390),
    screenshots: Path | None = None, pages: Sequence[str] | None = None,
    allowed_external: Sequence[str] = ALLOWED_EXTERNAL,
) -> list[Problem]:
    """Serve a built site and check every page at every width.

    Args:
        site: the built site folder (``mkdocs build -d``).
        chromium: the Chromium or Chrome executable.
        widths: viewport widths in CSS pixels; screenshots are taken at the first.
        screenshots: folder for one PNG per page, or ``None`` for none.
        pages: URL paths to check; default every HTML file in ``site``.
        allowed_external: URL prefixes outside the site that pages may ask for.

    Returns:
        Every problem found; empty when the site reads as it should.
    """
    if not (site / "index.html").is_file():
        raise FileNotFoundError(f"{site} is not a built site: it has no index.html")
    if not widths or any(w < 200 for w in widths):
        raise ValueError(f"widths must be CSS pixel widths of at least 200, got {list(widths)}")
    pages = site_pages(site) if pages is None else list(pages)
    problems: list[Problem] = []
    browser = DevTools(chromium)
    try:
        with serve(site) as base_url:
            for page in pages:
                for i, width in enumerate(widths):
                    shot = screenshots / screenshot_name(page) if screenshots and i == 0 else None
                    problems += check_page(
                        browser, base_url, page, width, screenshot=shot,
                        allowed_external=allowed_external,
                    )
    finally:
        browser.close()
    return problems


def build_site(config: Path, site: Path) -> None:
    """``mkdocs build --strict`` of ``config`` into ``site``; raises with mkdocs' output."""
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(config),
         "-d", str(site)],
        capture_output=True, text=True,
    )
    if run.returncode:
        raise RuntimeError(f"mkdocs build --strict -f {config} failed:\n{run.stdout}{run.stderr}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "mkdocs.yml",
                        help="mkdocs.yml to build (default: the project's)")
    parser.add_argument("--site", type=Path,
                        help="check this already-built site instead of building one")
    parser.add_argument("--screenshots", type=Path,
                        help="save one full-page PNG per page here")
    parser.add_argument("--widths", type=int, nargs="+", default=[1280, 390],
                        help="viewport widths in CSS pixels (default: 1280 390)")
    parser.add_argument("--allow-external", nargs="*", default=list(ALLOWED_EXTERNAL),
                        metavar="PREFIX", help="URL prefixes outside the site that pages may "
                        "ask for (default: the theme's GitHub repository facts)")
    parser.add_argument("--chromium", help="Chromium/Chrome executable (default: $CHROMIUM, PATH)")
    args = parser.parse_args(argv)

    chromium = find_chromium(args.chromium)
    if chromium is None:
        parser.error(f"no Chromium found (tried {', '.join(CHROMIUM_NAMES)}); pass --chromium")
    with tempfile.TemporaryDirectory() as tmp:
        site = args.site
        if site is None:
            site = Path(tmp) / "site"
            build_site(args.config, site)
        pages = site_pages(site)
        problems = check_site(
            site, chromium, args.widths, args.screenshots, pages, args.allow_external
        )
    for problem in problems:
        print(problem)
    shots = f"; screenshots in {args.screenshots}" if args.screenshots else ""
    print(f"{len(pages)} pages at {', '.join(map(str, args.widths))}px: "
          f"{len(problems)} problems{shots}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
