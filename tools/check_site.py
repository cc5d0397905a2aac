#!/usr/bin/env python3
"""Browser check of the built docs site, offline.

Serves the site on 127.0.0.1 with Python's http.server (in this process), renders every page in
headless Chromium (Debian's ``chromium`` package) with every other host unresolvable, and checks:

* math was typeset: a page with math has KaTeX output (``.katex``) and no raw ``$$``, ``\\(`` or
  ``\\[`` left in its text;
* every SVG figure (``<img>``/``<object>``) is served (HTTP 200, an ``<svg>`` document);
* every internal link resolves (HTTP 200; ``#fragment`` targets exist on the page);
* nothing was fetched from elsewhere: no ``<script>``, stylesheet, icon, image or CSS ``url()``
  points off the machine, and Chromium's network log shows requests to 127.0.0.1 only.

Usage::

    mkdocs build --strict --site-dir site
    python tools/check_site.py site [--screenshots DIR] [--chromium PATH]

Exit status 0 when every check passes; failures are listed one per line.
"""

from __future__ import annotations

import argparse
import functools
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import urldefrag, urljoin, urlparse

SCREENSHOT_PAGES = [
    "",
    "getting-started/",
    "lstm-figure-by-figure/",
    "guides/composing/",
    "guides/activations-initializers/",
    "architecture/",
    "reference/cells/",
]

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--disable-client-side-phishing-detection",
    "--disable-domain-reliability",
    "--no-pings",
    (
        "--disable-features=AutofillServerCommunication,NetworkTimeServiceQuerying,SpellCheck,"
        "OptimizationHints,MediaRouter,Translate"
    ),
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


class _LoggingHandler(SimpleHTTPRequestHandler):
    log: ClassVar[list[tuple[str, int]]] = []

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.log.append((self.path, int(code) if str(code).isdigit() else 0))

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


class _Refs(HTMLParser):
    """Collects what a rendered page refers to."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.figures: list[str] = []
        self.resources: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag == "img" and "src" in a:
            self.resources.append(a["src"])
            if a["src"].split("?")[0].endswith(".svg"):
                self.figures.append(a["src"])
        if tag == "object" and a.get("data", "").endswith(".svg"):
            self.figures.append(a["data"])
            self.resources.append(a["data"])
        if tag == "script" and "src" in a:
            self.resources.append(a["src"])
        if (
            tag == "link"
            and "href" in a
            and not {"canonical", "alternate"} & set(a.get("rel", "").split())
        ):
            self.resources.append(a["href"])


def _visible_text(dom: str) -> str:
    # Drop code, scripts, styles and KaTeX's own MathML/HTML before looking for raw TeX.
    for tag in ("script", "style", "pre", "code", "annotation", "textarea"):
        dom = re.sub(rf"<{tag}\b.*?</{tag}>", " ", dom, flags=re.DOTALL | re.IGNORECASE)
    return html.unescape(re.sub(r"<[^>]+>", " ", dom))


def _fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, b""


def _requests_from_netlog(netlog: Path) -> tuple[set[str], set[str]]:
    """URLs requested on behalf of a page (initiator is an origin) and by the browser itself."""
    page, internal = set(), set()
    if not netlog.is_file():
        raise RuntimeError(f"chromium wrote no network log at {netlog}")
    data = json.loads(netlog.read_text(errors="replace"))
    start_job = data["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    for event in data["events"]:
        params = event.get("params") or {}
        if event["type"] != start_job or "url" not in params:
            continue
        initiator = params.get("initiator", "not an origin")
        top_level = urlparse(params["url"]).hostname == "127.0.0.1" and initiator == "not an origin"
        if initiator != "not an origin" or top_level:
            page.add(params["url"])
        else:
            internal.add(params["url"])
    return page, internal


def find_chromium(explicit: str | None) -> str:
    for name in ([explicit] if explicit else []) + [
        "chromium",
        "chromium-browser",
        "google-chrome",
    ]:
        path = shutil.which(name) if name else None
        if path:
            return path
    raise SystemExit("check_site: chromium not found (Debian: apt-get install -y chromium)")


def run_chromium(chromium: str, profile: Path, args: list[str], url: str) -> str:
    cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url]
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"chromium failed on {url}: {result.stderr[-2000:]}")
    return result.stdout


def check(site: Path, chromium: str, screenshots: Path | None) -> list[str]:
    failures: list[str] = []
    handler = functools.partial(_LoggingHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pages = sorted(
        p.relative_to(site).parent.as_posix() + "/" if p.parent != site else ""
        for p in site.rglob("index.html")
        if "assets" not in p.relative_to(site).parts
    )
    checked: dict[str, int] = {}
    ids_of: dict[str, set[str]] = {}
    math_pages = 0
    browser_internal: set[str] = set()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmpdir = Path(tmp)
            netlog = tmpdir / "netlog.json"
            for page in pages:
                url = base + page
                dom = run_chromium(
                    chromium,
                    tmpdir / "profile",
                    ["--dump-dom", "--virtual-time-budget=15000", f"--log-net-log={netlog}"],
                    url,
                )
                refs = _Refs()
                refs.feed(dom)
                ids_of[url] = refs.ids
                source = (site / page / "index.html").read_text(encoding="utf-8")
                # Math typeset?
                if 'class="arithmatex"' in source:
                    math_pages += 1
                    if 'class="katex"' not in dom:
                        failures.append(f"{page or '/'}: math present but no KaTeX output")
                text = _visible_text(dom)
                for raw in ("$$", "\\(", "\\["):
                    if raw in text:
                        failures.append(f"{page or '/'}: raw {raw!r} left in the rendered text")
                # Nothing from elsewhere.
                for ref in refs.resources:
                    if urlparse(urljoin(url, ref)).hostname not in (None, "127.0.0.1"):
                        failures.append(f"{page or '/'}: external resource {ref}")
                for off in re.findall(r"url\((['\"]?)(https?:[^)'\"]+)\1\)", dom):
                    failures.append(f"{page or '/'}: external url() {off[1]}")
                # Figures served.
                for fig in refs.figures:
                    target = urljoin(url, fig)
                    status, body = _fetch(target)
                    if status != 200 or b"<svg" not in body[:2000]:
                        failures.append(f"{page or '/'}: figure {fig} -> HTTP {status}")
                # Internal links resolve.
                for link in refs.links:
                    target = urljoin(url, link)
                    if urlparse(target).hostname != "127.0.0.1":
                        continue
                    doc, _fragment = urldefrag(target)
                    if doc not in checked:
                        checked[doc] = _fetch(doc)[0]
                    if checked[doc] != 200:
                        failures.append(f"{page or '/'}: link {link} -> HTTP {checked[doc]}")
                # Every request the page made went to the local server.
                page_requests, internal = _requests_from_netlog(netlog)
                browser_internal.update(internal)
                for req in page_requests:
                    if urlparse(req).hostname != "127.0.0.1" and not req.startswith(
                        ("data:", "blob:")
                    ):
                        failures.append(f"{page or '/'}: request left the machine: {req}")
            # Fragment links point at ids that exist.
            for page in pages:
                url = base + page
                refs = _Refs()
                refs.feed((site / page / "index.html").read_text(encoding="utf-8"))
                for link in refs.links:
                    doc, fragment = urldefrag(urljoin(url, link))
                    if fragment and doc in ids_of and fragment not in ids_of[doc]:
                        failures.append(f"{page or '/'}: link {link}: no id {fragment!r} on target")
            if screenshots is not None:
                screenshots.mkdir(parents=True, exist_ok=True)
                for page in SCREENSHOT_PAGES:
                    if page not in pages:
                        continue
                    name = (page.strip("/").replace("/", "-") or "index") + ".png"
                    run_chromium(
                        chromium,
                        tmpdir / "profile",
                        [
                            "--virtual-time-budget=15000",
                            "--window-size=1280,2400",
                            f"--screenshot={screenshots / name}",
                        ],
                        base + page,
                    )
    finally:
        server.shutdown()
    if math_pages == 0:
        failures.append("no page with math found: is pymdownx.arithmatex configured?")
    off_machine = [p for p, _ in _LoggingHandler.log if p.startswith("http")]
    failures += [f"proxy-style request reached the server: {p}" for p in off_machine]
    print(
        json.dumps(
            {
                "pages": len(pages),
                "math_pages": math_pages,
                "links_checked": len(checked),
                "local_requests": len(_LoggingHandler.log),
                # Chromium's own services (updates, time, sign-in), not started by a page;
                # --host-resolver-rules makes every one of them fail to resolve.
                "blocked_browser_requests": sorted(
                    {urlparse(u).hostname for u in browser_internal}
                ),
            }
        )
    )
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path, help="the built site (mkdocs build --site-dir ...)")
    parser.add_argument(
        "--screenshots", type=Path, help="save PNG screenshots of the main pages here"
    )
    parser.add_argument("--chromium", help="path to the Chromium binary")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        print(f"check_site: {args.site} has no index.html; build the site first", file=sys.stderr)
        return 2
    failures = check(args.site.resolve(), find_chromium(args.chromium), args.screenshots)
    for failure in failures:
        print("FAIL", failure)
    print("check_site:", "OK" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
