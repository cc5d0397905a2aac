#!/usr/bin/env python3
"""Browser check of the built docs site, offline.

Serves the site on 127.0.0.1 with Python's http.server (in this process), renders every page in
headless Chromium (Debian's ``chromium`` package) with every other host unresolvable, and checks:

* math was typeset: a page with math has KaTeX output (``.katex``) and no raw ``$$``, ``\\(`` or
  ``\\[`` left in its text;
* every SVG figure (``<img>``/``<object>``) is served (HTTP 200, an ``<svg>`` document);
* every internal link resolves (HTTP 200; ``#fragment`` targets exist on the page);
* nothing was fetched from elsewhere: no ``<script>``, stylesheet, icon, image or CSS ``url()``
  points off the machine, and Chromium's network log shows requests to 127.0.0.1 only;
* the layout fits, with every page loaded again at 1280 and 390 px wide (``LAYOUT_WIDTHS``) and a
  measuring script (``LAYOUT_SCRIPT``) injected by the local server: the page does not scroll
  sideways; no element of the text column reaches past it, unless it sits in a scroll container
  the reader expects (a code block, and at the narrow width a table's scroll wrapper, a display
  equation or a figure shown at its own size); at the wide width only code scrolls; nothing is clipped (an element that
  hides overflow holds no more than it shows); inline code without spaces in a table (a module
  name) is not broken across lines;
* figures are legible: for every SVG figure, its rendered width over its ``viewBox`` width times
  the smallest font size declared in the SVG is at least ``MIN_FIGURE_TEXT_PX``.

``--screenshots DIR`` also saves full-page PNGs of the main pages at 1280 px and of the
figure-by-figure page at both widths.

Usage::

    mkdocs build --strict --site-dir site
    python tools/check_site.py site [--screenshots DIR] [--chromium PATH] [--only PAGE ...]

A full run loads each page three times (about 3 to 4 minutes for this site on two cores).

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
from typing import Any, ClassVar
from urllib.parse import parse_qs, quote, urldefrag, urljoin, urlparse

SCREENSHOT_PAGES = [
    "",
    "getting-started/",
    "lstm-figure-by-figure/",
    "guides/composing/",
    "guides/activations-initializers/",
    "architecture/",
    "performance/",
    "reference/cells/",
]

#: Viewport widths the layout is checked at: a laptop and a phone.
LAYOUT_WIDTHS = (1280, 390)
#: Smallest acceptable rendered text in a figure, in CSS pixels.
MIN_FIGURE_TEXT_PX = 10.0
#: Pages screenshotted at every layout width (the others at the first only).
SCREENSHOT_ALL_WIDTHS = ("lstm-figure-by-figure/",)
SCREENSHOT_PART = 6000  # px of page per PNG
REPORT_ID = "lstmkit-layout-report"
LAYOUT_QUERY = "lstmkit-layout"

# Runs after the page's own scripts (KaTeX included) and writes a JSON report into the DOM, which
# --dump-dom returns. Scroll containers are classed by what the reader sees in them.
LAYOUT_SCRIPT = """
<script>
(function () {
  function name(el) {
    var text = (el.textContent || el.getAttribute("src") || "").replace(/\\s+/g, " ").trim();
    var cls = (el.getAttribute("class") || "").split(/\\s+/).slice(0, 2).join(".");
    return el.tagName.toLowerCase() + (cls ? "." + cls : "") + " '" + text.slice(0, 60) + "'";
  }
  function kind(el) {
    if (el.closest("pre, .highlight")) return "code";
    if (el.closest(".md-typeset__scrollwrap, .md-typeset__table")) return "table";
    if (el.closest(".katex-display, .arithmatex")) return "math";
    if (el.querySelector("img.figure")) return "figure";
    return "other";
  }
  function scroller(el, stop) {
    for (var a = el.parentElement; a && a !== stop; a = a.parentElement) {
      var o = getComputedStyle(a).overflowX;
      if (o === "auto" || o === "scroll") return a;
    }
    return null;
  }
  function textBeyond(box, side) {
    var r = box.getBoundingClientRect(), worst = 0;
    var walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
    for (var node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.textContent.trim() || node.parentElement.closest("annotation, .katex-mathml"))
        continue;
      var range = document.createRange();
      range.selectNodeContents(node);
      var t = range.getBoundingClientRect();
      if (t.height === 0) continue;
      if (side === "left") worst = Math.max(worst, r.left - t.left);
      else worst = Math.max(worst, r.top - t.top, t.bottom - r.bottom);
    }
    return worst;
  }
  function measure() {
    var out = {width: window.innerWidth, scrollWidth: document.documentElement.scrollWidth,
               height: document.documentElement.scrollHeight, overflow: [], scrolls: [],
               clipped: [], broken: [], figures: []};
    var article = document.querySelector("article.md-content__inner") || document.body;
    // The column is the article's container: the theme lets code blocks, tables and display
    // math bleed into the article's margins on narrow screens.
    var box = (article.parentElement || article).getBoundingClientRect();
    var left = box.left, right = box.right;
    out.column = [Math.round(left), Math.round(right)];
    article.querySelectorAll("*").forEach(function (el) {
      var r = el.getBoundingClientRect(), cs = getComputedStyle(el);
      if (r.width === 0 || r.height === 0 || cs.visibility === "hidden") return;
      var held = scroller(el, article);
      if ((r.right > right + 1 || r.left < left - 1) && !held && !el.closest(".katex")) {
        var parent = el.parentElement, pr = parent && parent.getBoundingClientRect();
        if (!(pr && parent !== article && (pr.right > right + 1 || pr.left < left - 1)))
          out.overflow.push({el: name(el), by: Math.round(Math.max(r.right - right, left - r.left))});
      }
      if ((cs.overflowX === "auto" || cs.overflowX === "scroll") && el.clientWidth > 0) {
        // Content left of a scroll box's start cannot be scrolled to (centred wide content).
        var lost = textBeyond(el, "left");
        if (lost > 1) out.clipped.push({el: name(el), axis: "x, left", by: Math.round(lost)});
      }
      if (el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0) {
        if (cs.overflowX === "auto" || cs.overflowX === "scroll")
          out.scrolls.push({el: name(el), kind: kind(el), by: el.scrollWidth - el.clientWidth});
        else if ((cs.overflowX === "hidden" || cs.overflowX === "clip") && !el.closest(".katex"))
          out.clipped.push({el: name(el), axis: "x", by: el.scrollWidth - el.clientWidth});
      }
      if (el.scrollHeight > el.clientHeight + 1 && el.clientHeight > 0 && !el.closest(".katex") &&
          (cs.overflowY === "hidden" || cs.overflowY === "clip")) {
        // Layout overflow alone may be an invisible strut (KaTeX's); clipped means text reaches
        // past the box.
        var by = textBeyond(el);
        if (by > 1) out.clipped.push({el: name(el), axis: "y", by: Math.round(by)});
      }
      if (el.tagName === "CODE" && el.closest("td, th") && !/\\s/.test(el.textContent.trim()) &&
          el.getClientRects().length > 1)
        out.broken.push(name(el));
    });
    article.querySelectorAll("img, object").forEach(function (img) {
      var src = img.getAttribute("src") || img.getAttribute("data") || "";
      if (!/\\.svg(\\?|$)/.test(src)) return;
      out.figures.push({src: src, rendered: img.getBoundingClientRect().width});
    });
    // In FRAME_PATH's frame, the report goes to the top document, which --dump-dom returns.
    var top = window.parent !== window ? window.parent.document : document;
    var pre = top.createElement("pre");
    pre.id = "REPORT_ID";
    pre.textContent = JSON.stringify(out);
    top.body.appendChild(pre);
  }
  window.addEventListener("load", function () { setTimeout(measure, 1000); });
})();
</script>
""".replace("REPORT_ID", REPORT_ID)

FIGURES_PATH = "/__lstmkit_figures__"
# Headless Chromium will not make a window narrower than 500 px, so every page is loaded in an
# <iframe> of the wanted width (its media queries see that width): FRAME_PATH?w=390&h=900&src=URL.
FRAME_PATH = "/__lstmkit_frame__"
# Loads every figure as an <object> (same origin, so its document is readable) and reports, per
# figure, its viewBox width and its smallest text in viewBox units (font size times the text's
# own transforms, tspans included).
FIGURES_SCRIPT = """
<script>
window.addEventListener("load", function () { setTimeout(function () {
  var out = {};
  document.querySelectorAll("object").forEach(function (o) {
    var src = o.getAttribute("data"), d = o.contentDocument;
    if (!d || !d.documentElement || d.documentElement.tagName.toLowerCase() !== "svg") {
      out[src] = null; return;
    }
    var svg = d.documentElement, root = svg.getScreenCTM();
    var vb = svg.viewBox && svg.viewBox.baseVal;
    var width = vb && vb.width ? vb.width : svg.width.baseVal.value;
    var rootScale = Math.hypot(root.a, root.b), smallest = null, texts = 0;
    d.querySelectorAll("text, tspan").forEach(function (t) {
      var own = Array.prototype.some.call(t.childNodes, function (n) {
        return n.nodeType === 3 && n.textContent.trim();
      });
      if (!own) return;
      var m = t.getScreenCTM(), size = parseFloat(d.defaultView.getComputedStyle(t).fontSize);
      var inViewBox = size * Math.hypot(m.a, m.b) / rootScale;
      texts += 1;
      if (smallest === null || inViewBox < smallest) smallest = inViewBox;
    });
    out[src] = {viewBoxWidth: width, smallestText: smallest, texts: texts};
  });
  var pre = document.createElement("pre");
  pre.id = "REPORT_ID";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}, 1000); });
</script>
""".replace("REPORT_ID", REPORT_ID)

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
    figures_page: ClassVar[bytes] = b""

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == FIGURES_PATH:
            self._send_html(self.figures_page)
            return
        if url.path == FRAME_PATH:
            query = parse_qs(url.query)
            width, height, src = query["w"][0], query["h"][0], query["src"][0]
            top = int(query.get("y", ["0"])[0])
            self._send_html(
                (
                    "<!doctype html><html><head><style>html,body{margin:0;overflow:hidden}"
                    f"iframe{{border:0;display:block;width:{int(width)}px;height:{int(height)}px;"
                    f"margin-top:-{top}px}}</style></head>"
                    f'<body><iframe src="{html.escape(src)}"></iframe></body></html>'
                ).encode()
            )
            return
        if url.query != LAYOUT_QUERY:
            super().do_GET()
            return
        # The page with the measuring script before </body>.
        path = Path(self.translate_path(url.path))
        if path.is_dir():
            path = path / "index.html"
        if not path.is_file():
            self.send_error(404)
            return
        page = path.read_text(encoding="utf-8")
        self._send_html(page.replace("</body>", LAYOUT_SCRIPT + "</body>", 1).encode("utf-8"))

    def _send_html(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

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


def _framed(base: str, path: str, width: int, height: int, top: int = 0) -> str:
    query = f"w={width}&h={height}&y={top}&src={quote(path, safe='')}"
    return f"{base}{FRAME_PATH.lstrip('/')}?{query}"


def _report(dom: str) -> Any:
    match = re.search(rf'<pre id="{REPORT_ID}">(.*?)</pre>', dom, flags=re.DOTALL)
    if match is None:
        raise RuntimeError("the measuring script wrote no report (page did not finish loading?)")
    return json.loads(html.unescape(match.group(1)))


def layout_failures(page: str, width: int, report: dict[str, Any]) -> list[str]:
    """What a layout report of one page at one viewport width shows to be wrong."""
    where = f"{page or '/'} @{width}px"
    failures = []
    if report["width"] != width:
        failures.append(f"{where}: viewport is {report['width']} px, not {width}")
    if report["scrollWidth"] > report["width"] + 1:
        failures.append(f"{where}: the page scrolls sideways ({report['scrollWidth']} px wide)")
    failures += [
        f"{where}: wider than the column by {o['by']} px: {o['el']}" for o in report["overflow"]
    ]
    for scroll in report["scrolls"]:
        # Code may scroll at any width; a table, an equation or a figure only on a narrow
        # screen, where it cannot fit at a legible size.
        expected = scroll["kind"] == "code" or (
            scroll["kind"] in ("table", "math", "figure") and width < max(LAYOUT_WIDTHS)
        )
        if not expected:
            failures.append(
                f"{where}: {scroll['kind']} scrolls sideways by {scroll['by']} px: {scroll['el']}"
            )
    failures += [
        f"{where}: clipped ({c['axis']}) by {c['by']} px: {c['el']}" for c in report["clipped"]
    ]
    failures += [f"{where}: inline code broken across lines: {b}" for b in report["broken"]]
    return failures


def figure_failures(
    page: str, width: int, report: dict[str, Any], metrics: dict[str, Any]
) -> list[str]:
    """Figures whose smallest text renders below MIN_FIGURE_TEXT_PX at this width."""
    failures = []
    for figure in report["figures"]:
        info = metrics.get(figure["abs"])
        if info is None:
            failures.append(f"{page or '/'} @{width}px: figure {figure['src']} did not load")
            continue
        if not info["texts"]:
            continue
        rendered = figure["rendered"] / info["viewBoxWidth"] * info["smallestText"]
        figure["smallest_text_px"] = round(rendered, 1)
        if rendered < MIN_FIGURE_TEXT_PX - 0.05:
            failures.append(
                f"{page or '/'} @{width}px: figure {figure['src']}: smallest text {rendered:.1f} px"
                f" (shown {figure['rendered']:.0f} px wide of {info['viewBoxWidth']:.0f},"
                f" font {info['smallestText']:.1f}); needs >= {MIN_FIGURE_TEXT_PX:.0f} px"
            )
    return failures


def check(
    site: Path, chromium: str, screenshots: Path | None, only: list[str] | None = None
) -> list[str]:
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
    if only:
        pages = [p for p in pages if p in only or p.rstrip("/") in only]
    checked: dict[str, int] = {}
    ids_of: dict[str, set[str]] = {}
    math_pages = 0
    browser_internal: set[str] = set()
    layout_summary: dict[str, Any] = {}
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
            # Layout at each width, and figures' rendered text size.
            heights: dict[tuple[str, int], int] = {}
            reports: list[tuple[str, int, dict[str, Any]]] = []
            for page in pages:
                for width in LAYOUT_WIDTHS:
                    dom = run_chromium(
                        chromium,
                        tmpdir / "profile",
                        [
                            "--dump-dom",
                            "--virtual-time-budget=15000",
                            f"--window-size={max(width, 500)},900",
                        ],
                        _framed(base, "/" + page + "?" + LAYOUT_QUERY, width, 900),
                    )
                    report = _report(dom)
                    for figure in report["figures"]:
                        figure["abs"] = urlparse(urljoin(base + page, figure["src"])).path
                    heights[page, width] = report["height"]
                    reports.append((page, width, report))
                    failures += layout_failures(page, width, report)
            figures = sorted({f["abs"] for _, _, r in reports for f in r["figures"]})
            metrics: dict[str, Any] = {}
            if figures:
                _LoggingHandler.figures_page = (
                    "<!doctype html><html><body>"
                    + "".join(
                        f'<object type="image/svg+xml" data="{html.escape(f)}" '
                        'style="width:400px;height:300px"></object>'
                        for f in figures
                    )
                    + FIGURES_SCRIPT
                    + "</body></html>"
                ).encode("utf-8")
                dom = run_chromium(
                    chromium,
                    tmpdir / "profile",
                    ["--dump-dom", "--virtual-time-budget=30000", "--window-size=1280,900"],
                    base + FIGURES_PATH.lstrip("/"),
                )
                metrics = _report(dom)
            for page, width, report in reports:
                failures += figure_failures(page, width, report, metrics)
            layout_summary = {
                "widths": list(LAYOUT_WIDTHS),
                "figures": len(figures),
                "smallest_figure_text_px": min(
                    (
                        f["smallest_text_px"]
                        for _, _, r in reports
                        for f in r["figures"]
                        if "smallest_text_px" in f
                    ),
                    default=None,
                ),
            }
            if screenshots is not None:
                screenshots.mkdir(parents=True, exist_ok=True)
                for page in SCREENSHOT_PAGES:
                    if page not in pages:
                        continue
                    widths = LAYOUT_WIDTHS if page in SCREENSHOT_ALL_WIDTHS else LAYOUT_WIDTHS[:1]
                    for width in widths:
                        stem = page.strip("/").replace("/", "-") or "index"
                        # The whole page, in parts of at most SCREENSHOT_PART px: the frame is
                        # as tall as the page and shifted up for each part.
                        height = heights.get((page, width), 2400)
                        parts = range(0, height, SCREENSHOT_PART)
                        for number, top in enumerate(parts, start=1):
                            suffix = f"-{number}" if len(parts) > 1 else ""
                            shot = screenshots / f"{stem}-{width}{suffix}.png"
                            window = min(SCREENSHOT_PART, height - top)
                            run_chromium(
                                chromium,
                                tmpdir / "profile",
                                [
                                    "--virtual-time-budget=15000",
                                    f"--window-size={max(width, 500)},{window}",
                                    f"--screenshot={shot}",
                                ],
                                _framed(base, "/" + page, width, height, top),
                            )
    finally:
        server.shutdown()
        server.server_close()
    if math_pages == 0 and not only:
        failures.append("no page with math found: is pymdownx.arithmatex configured?")
    off_machine = [p for p, _ in _LoggingHandler.log if p.startswith("http")]
    failures += [f"proxy-style request reached the server: {p}" for p in off_machine]
    print(
        json.dumps(
            {
                "pages": len(pages),
                "math_pages": math_pages,
                "links_checked": len(checked),
                "layout": layout_summary,
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
    parser.add_argument(
        "--only", nargs="+", metavar="PAGE", help="check only these pages (e.g. architecture/)"
    )
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        print(f"check_site: {args.site} has no index.html; build the site first", file=sys.stderr)
        return 2
    failures = check(args.site.resolve(), find_chromium(args.chromium), args.screenshots, args.only)
    for failure in failures:
        print("FAIL", failure)
    print("check_site:", "OK" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
