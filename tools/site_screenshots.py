#!/usr/bin/env python3
"""Screenshots of every page of the built site, as four kinds of reader see it, with the network off.

    python tools/site_screenshots.py [--site _build/html] [--out _build/screenshots]
                                     [--widths 1400,400] [--themes light,dark] [--pages GLOB ...]

Every page of the built site (``jupyter-book build .`` first; the redirect ``index.html`` is skipped)
is opened in headless Chromium at each width (1400 px: a desktop; 400 px: a phone) in each of the
theme's colour modes (``light``, ``dark``: set as the theme's own switch does, in ``localStorage``),
with the network off: every host name resolves to nothing, the proxy points nowhere, and every
request that is not for a file of the site is refused and reported. Each view is saved as a
full-page PNG in tiles of at most ``--tile`` pixels (``notebooks-03_optimizers@400-dark-01.png``,
``-02``, ...), and checked for what a reader would miss:

- **outside requests**: anything the page tried to load from outside the site (a CDN script or
  stylesheet: offline, whatever it draws stays blank);
- **page errors** (uncaught JavaScript exceptions) and console errors;
- **widgets not drawn** (a stored ipywidgets view that the widget manager did not render: a blank
  progress bar or slider), **broken images**, **MathJax errors** and math left untypeset;
- **cut off**: content wider than the text column that is neither inside a box that scrolls nor
  inside the page (clipped by a box that hides overflow, or running past the column, so a phone
  reader loses it); the page itself scrolling sideways;
- **low contrast**: text whose colour is too close to the background it is drawn on (ratio below
  ``--min-contrast``, 3 by default: the WCAG minimum for large text), e.g. an HTML output whose
  dark text stays on the dark theme's background.

Equations, outputs and tables that scroll inside their own box are listed as notes when the site marks
them (``book/_static/book.js`` fades the edge with content out of view) and as problems when nothing
shows that they scroll; code cells scroll as code does everywhere and are not listed. ``report.md`` and ``report.json`` in ``--out`` list
every view's findings; the exit status is 1 when any problem was found, 0 otherwise.

Requirements: Playwright for Python (``pip install playwright``; its own browser download is not
needed) and a Chromium (Debian: ``apt-get install chromium``; ``--chromium`` names another binary).
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = (1400, 400)
THEMES = ("light", "dark")
VIEW_HEIGHT = 900
SKIP = ("_static/*", "_sources/*", "_images/*", "_sphinx_design_static/*", "index.html")
# Chromium's own switches: no first-run dialogs, no background traffic, and no network at all.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
    "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
]
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
TIMEOUT_MS = 180_000  # a screenshot of a long page on a loaded 2-core machine can take over 30 s
CHUNK = 12000  # px of page laid out at once for the tiles (Chromium draws up to 16384 px reliably)
UNSTICK_CSS = ".bd-header, .bd-header-article, .header-article { position: static !important; }"

# Runs in the page once it has loaded and settled: returns the findings of the checks above.
CHECKS_JS = r"""
(minContrast) => {
  const out = {theme: document.documentElement.dataset.theme || "", cut: [], scrolls: [],
               lowContrast: [], widgets: {stored: 0, drawn: 0}, brokenImages: [], mathErrors: 0,
               mathUntypeset: 0, pageOverflow: 0};
  const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  const column = article.getBoundingClientRect();
  const describe = (el) => {
    const parts = [];
    for (let e = el; e && e !== article && parts.length < 4; e = e.parentElement) {
      let p = e.tagName.toLowerCase();
      if (e.id) p += "#" + e.id;
      else if (e.classList.length) p += "." + [...e.classList].slice(0, 2).join(".");
      parts.unshift(p);
    }
    return parts.join(" > ");
  };
  const near = (el) => {  // the closest heading above, to find the place on the page
    let e = el;
    while (e && e !== article) {
      let s = e.previousElementSibling;
      while (s) {
        const h = s.matches("h1,h2,h3,h4") ? s : s.querySelector("h1,h2,h3,h4");
        if (h) return h.textContent.replace(/#$/, "").trim().slice(0, 80);
        s = s.previousElementSibling;
      }
      e = e.parentElement;
    }
    return "";
  };
  const text = (el) => (el.textContent || "").replace(/\s+/g, " ").trim().slice(0, 80);
  // where an element that runs past the column ends up: in a box that scrolls, clipped, or outside
  const scroller = (el, rect) => {
    for (let e = el.parentElement; e && e !== document.body; e = e.parentElement) {
      const ox = getComputedStyle(e).overflowX;
      if ((ox === "auto" || ox === "scroll") && e.scrollWidth > e.clientWidth + 1) return ["scroll", e];
      if ((ox === "hidden" || ox === "clip") && rect.right > e.getBoundingClientRect().right + 1) return ["clip", e];
      if (e === article) return ["none", e];
    }
    return ["none", null];
  };
  const visible = (el) => {
    const s = getComputedStyle(el);
    if (s.display === "none" || s.visibility === "hidden" || Number(s.opacity) === 0) return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  // 1. content wider than the column
  out.pageOverflow = Math.max(0, document.documentElement.scrollWidth - window.innerWidth);
  const reported = new Set();
  const seenScrollers = new Set();
  for (const el of article.querySelectorAll("*")) {
    if (el.closest("mjx-assistive-mml, .MathJax_Preview, script, style, template")) continue;
    if ([...reported].some((r) => r.contains(el))) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.right <= column.right + 1) continue;
    if (!visible(el)) continue;
    const [kind, box] = scroller(el, r);
    if (kind === "scroll") {
      if (!seenScrollers.has(box)) {
        seenScrollers.add(box);
        const eq = box.matches("mjx-container[display='true']") || box.querySelector("mjx-container[display='true']");
        if (!eq && box.closest(".cell_input, div.highlight")) continue;  // code scrolls, as everywhere
        const math = box.matches("div.math mjx-container, span.math");
        out.scrolls.push({what: eq ? "display equation" : math ? "inline math" : describe(box), near: near(box),
                          hint: box.classList.contains("book-scrolls"), math: math,
                          top: Math.round(box.getBoundingClientRect().top + window.scrollY),
                          width: box.scrollWidth, visible: box.clientWidth,
                          text: eq ? "" : text(box)});
      }
      continue;
    }
    // a box that scrolls or clips on its own is reported as a whole
    const isMath = el.matches("mjx-container");
    out.cut.push({what: isMath ? (el.getAttribute("display") === "true" ? "display equation" : "inline math")
                               : describe(el),
                  how: kind === "clip" ? "clipped by " + describe(box) : "runs past the column",
                  near: near(el), overflow: Math.round(r.right - column.right), text: text(el),
                  top: Math.round(r.top + window.scrollY)});
    reported.add(el);
  }
  // 2. widgets
  for (const s of document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')) {
    out.widgets.stored += 1;
    const host = s.parentElement;
    const drawn = host && [...host.children].some((c) => c !== s && c.tagName !== "SCRIPT"
      && (c.className || "").toString().includes("widget") && c.getBoundingClientRect().height > 0);
    if (drawn) out.widgets.drawn += 1;
  }
  // 3. images and math
  for (const img of document.querySelectorAll("img")) {
    if (img.complete && img.naturalWidth === 0 && visible(img)) out.brokenImages.push(img.getAttribute("src"));
  }
  out.mathErrors = document.querySelectorAll("mjx-merror").length;
  for (const m of article.querySelectorAll("div.math, span.math")) {
    if (!m.querySelector("mjx-container") && visible(m)) out.mathUntypeset += 1;
  }
  // 4. contrast of every piece of text against what is drawn under it
  const rgba = (c) => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const v = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1];
  };
  const over = (top, under) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + under[i] * (1 - a)).concat([1]);
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) {
        layers.push(c);
        if (c[3] >= 1) break;
      }
    }
    let bg = [255, 255, 255, 1];
    for (const c of layers.reverse()) bg = over(c, bg);
    return bg;
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  const seenPairs = new Map();
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.nodeValue.trim()) continue;
    const el = n.parentElement;
    if (!el || el.closest("mjx-container, svg, script, style, .visually-hidden, .sr-only, .headerlink")) continue;
    if (!visible(el)) continue;
    const bg = background(el);
    const fg = over(rgba(getComputedStyle(el).color) || [0, 0, 0, 1], bg);
    const L1 = lum(fg), L2 = lum(bg);
    const ratio = (Math.max(L1, L2) + 0.05) / (Math.min(L1, L2) + 0.05);
    if (ratio >= minContrast) continue;
    const key = describe(el) + "|" + fg.join() + "|" + bg.join();
    if (seenPairs.has(key)) { seenPairs.get(key).count += 1; continue; }
    const item = {what: describe(el), near: near(el), ratio: Math.round(ratio * 100) / 100,
                  top: Math.round(el.getBoundingClientRect().top + window.scrollY),
                  color: "rgb(" + fg.slice(0, 3).map(Math.round).join(",") + ")",
                  background: "rgb(" + bg.slice(0, 3).map(Math.round).join(",") + ")",
                  text: n.nodeValue.replace(/\s+/g, " ").trim().slice(0, 60), count: 1};
    seenPairs.set(key, item);
    out.lowContrast.push(item);
  }
  return out;
}
"""

SETTLE_JS = r"""
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  // let the widget manager draw (it renders asynchronously after load)
  const stored = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length;
  for (let i = 0; stored && i < 50; i++) {
    const drawn = document.querySelectorAll(".jupyter-widgets, .widget-container, .widget-inline-hbox").length;
    if (drawn >= stored) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // scroll through the page once so that lazily loaded images load
  const step = window.innerHeight;
  for (let y = 0; y < document.documentElement.scrollHeight; y += step) {
    window.scrollTo(0, y);
    await new Promise((r) => setTimeout(r, 20));
  }
  window.scrollTo(0, 0);
  await Promise.all([...document.images].filter((i) => !i.complete)
    .map((i) => new Promise((r) => { i.onload = i.onerror = r; setTimeout(r, 3000); })));
  return document.documentElement.scrollHeight;
}
"""


@dataclass
class View:
    page: str
    width: int
    theme: str
    shots: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    checks: dict = field(default_factory=dict)

    def problems(self) -> list[str]:
        c, found = self.checks, []
        found += [f"loads from outside the site: {u}" for u in self.outside]
        found += [f"error: {e}" for e in self.errors]
        if c and c.get("theme") != self.theme:
            found.append(f"the page shows theme {c.get('theme')!r}, not {self.theme!r}")
        w = c.get("widgets", {})
        if w.get("stored", 0) > w.get("drawn", 0):
            found.append(f"{w['stored'] - w['drawn']} of {w['stored']} widgets not drawn (blank)")
        found += [f"broken image: {src}" for src in c.get("brokenImages", [])]
        if c.get("mathErrors"):
            found.append(f"{c['mathErrors']} MathJax errors")
        if c.get("mathUntypeset"):
            found.append(f"{c['mathUntypeset']} formulas not typeset")
        if c.get("pageOverflow", 0) > 1:
            found.append(f"the page scrolls sideways by {c['pageOverflow']} px")
        for cut in c.get("cut", []):
            found.append(f"cut off: {cut['what']} {cut['how']} by {cut['overflow']} px"
                         f" at y={cut['top']} (near {cut['near']!r}: {cut['text']!r})")
        for s in c.get("scrolls", []):
            if not s.get("hint"):
                found.append(f"scrolls with no hint that it does: {s['what']} {s['width']} px in {s['visible']} px"
                             f" at y={s['top']} (near {s['near']!r})")
        for low in c.get("lowContrast", []):
            found.append(f"low contrast {low['ratio']}: {low['what']} {low['color']} on {low['background']}"
                         f" x{low['count']} at y={low['top']} (near {low['near']!r}: {low['text']!r})")
        return found

    def notes(self) -> list[str]:
        return [f"scrolls: {s['what']} {s['width']} px in {s['visible']} px at y={s['top']} (near {s['near']!r})"
                for s in self.checks.get("scrolls", [])]


def pages(site: Path, patterns: list[str] | None) -> list[str]:
    """The site's HTML pages (relative paths), without the theme's and Sphinx's own files."""
    found = []
    for path in sorted(site.rglob("*.html")):
        rel = path.relative_to(site).as_posix()
        if any(fnmatch.fnmatch(rel, s) for s in SKIP):
            continue
        if patterns and not any(fnmatch.fnmatch(rel, p) for p in patterns):
            continue
        found.append(rel)
    return found


def shot_name(page: str, width: int, theme: str, part: int) -> str:
    return f"{page.removesuffix('.html').replace('/', '-')}@{width}-{theme}-{part:02d}.png"


def find_chromium(name: str | None) -> str:
    for candidate in ([name] if name else ["chromium", "chromium-browser", "google-chrome", "chrome"]):
        path = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
        if path:
            return path
    raise SystemExit("site_screenshots: no Chromium found; install one (Debian: `apt-get install chromium`) "
                     "or name it with --chromium PATH")


def shoot(site: Path, out: Path, page_list: list[str], widths, themes, tile: int, min_contrast: float,
          chromium: str, log=print) -> list[View]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise SystemExit("site_screenshots: needs Playwright for Python: `pip install playwright` "
                         "(into any environment; the browser is the system's Chromium, nothing else is "
                         "downloaded)") from None
    views = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            for width in widths:
                for theme in themes:
                    context = browser.new_context(viewport={"width": width, "height": VIEW_HEIGHT},
                                                  color_scheme=theme, service_workers="block")
                    context.add_init_script(f"localStorage.setItem('mode', '{theme}');"
                                            f"localStorage.setItem('theme', '{theme}');")
                    context.set_default_timeout(TIMEOUT_MS)
                    for page_path in page_list:
                        for attempt in (1, 2):  # a loaded machine can stall one screenshot: try once more
                            try:
                                views.append(_view(context, site, out, page_path, width, theme, tile, min_contrast))
                                break
                            except Exception as exc:  # noqa: BLE001  (one view that fails must not lose the others)
                                if attempt == 2:
                                    views.append(View(page_path, width, theme,
                                                      errors=[f"the view failed twice: {exc}"]))
                        log(_summary_line(views[-1]))
                    context.close()
        finally:
            browser.close()
    return views


def _view(context, site, out, page_path, width, theme, tile, min_contrast) -> View:
    view = View(page_path, width, theme)
    page = context.new_page()

    def refuse(route):
        view.outside.append(route.request.url)
        route.abort("internetdisconnected")

    page.route(lambda url: not url.startswith(LOCAL_SCHEMES), refuse)
    page.on("request", lambda r: None if r.url.startswith(LOCAL_SCHEMES) or r.url in view.outside
            else view.outside.append(r.url))
    page.on("pageerror", lambda e: view.errors.append(f"page error: {e}"))
    page.on("console", lambda m: view.errors.append(f"console: {m.text}")
            if m.type == "error" and "ERR_INTERNET_DISCONNECTED" not in m.text else None)
    page.goto((site / page_path).resolve().as_uri(), wait_until="load")
    height = page.evaluate(SETTLE_JS)
    page.wait_for_timeout(200)
    view.checks = page.evaluate(CHECKS_JS, min_contrast)
    # Full-page tiles: the viewport is made tall (up to CHUNK px at a time), so the page is laid out
    # once per chunk, and each tile is a clip of it. Headers that stick to the top of the window are
    # let scroll with the page, so they cover nothing in later chunks.
    page.add_style_tag(content=UNSTICK_CSS)
    height = page.evaluate("document.documentElement.scrollHeight") or height
    part = 0
    for chunk_top in range(0, height, CHUNK):
        chunk = min(CHUNK, height - chunk_top)
        page.set_viewport_size({"width": width, "height": chunk})
        page.evaluate(f"window.scrollTo(0, {chunk_top})")
        page.wait_for_timeout(100)
        offset = page.evaluate("window.scrollY") - chunk_top  # the last chunk may not scroll as far
        for top in range(0, chunk, tile):
            part += 1
            name = shot_name(page_path, width, theme, part)
            page.screenshot(path=str(out / name), animations="disabled",
                            clip={"x": 0, "y": top - offset, "width": width, "height": min(tile, chunk - top)})
            view.shots.append(name)
    page.close()
    view.outside = sorted(set(view.outside))
    return view


def _summary_line(view: View) -> str:
    problems = view.problems()
    return (f"{view.page} @{view.width} {view.theme}: {len(view.shots)} tiles, "
            f"{len(problems)} problems, {len(view.notes())} scrolling boxes")


def write_report(out: Path, views: list[View], seconds: float) -> int:
    n_problems = sum(len(v.problems()) for v in views)
    lines = ["# Site screenshots", "",
             f"{len(views)} views ({len({v.page for v in views})} pages), {n_problems} problems, "
             f"{seconds:.0f} s. Network off: every outside request refused and listed.", ""]
    for v in views:
        lines.append(f"## {v.page} @ {v.width} px, {v.theme}")
        lines.append("")
        lines.append(f"tiles: {v.shots[0]} ... ({len(v.shots)})" if v.shots else "tiles: none")
        w = v.checks.get("widgets", {})
        if w.get("stored"):
            lines.append(f"widgets: {w['drawn']} of {w['stored']} drawn")
        lines += [f"- PROBLEM {p}" for p in v.problems()]
        lines += [f"- note: {n}" for n in v.notes()]
        lines.append("")
    (out / "report.md").write_text("\n".join(lines))
    (out / "report.json").write_text(json.dumps(
        [dict(page=v.page, width=v.width, theme=v.theme, shots=v.shots, outside=v.outside, errors=v.errors,
              checks=v.checks, problems=v.problems(), notes=v.notes()) for v in views], indent=1))
    return n_problems


def _csv(kind):
    def parse(text: str):
        try:
            return tuple(kind(x) for x in text.split(",") if x)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}") from None
    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="site_screenshots", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--site", type=Path, default=ROOT / "_build" / "html", help="the built site")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "screenshots",
                        help="where the PNGs and the report go (emptied first)")
    parser.add_argument("--widths", type=_csv(int), default=WIDTHS, help="viewport widths in px (1400,400)")
    parser.add_argument("--themes", type=_csv(str), default=THEMES, help="light,dark")
    parser.add_argument("--pages", nargs="*", help="only pages matching these globs (e.g. 'notebooks/03*')")
    parser.add_argument("--tile", type=int, default=1500,
                        help="height of one PNG tile in px (1500: an image viewer shows it unscaled)")
    parser.add_argument("--min-contrast", type=float, default=3.0, help="smallest acceptable contrast ratio")
    parser.add_argument("--chromium", help="the Chromium binary (default: chromium on PATH)")
    args = parser.parse_args(argv)
    bad = [t for t in args.themes if t not in THEMES]
    if bad:
        parser.error(f"--themes: unknown {bad}; choose from {', '.join(THEMES)}")
    if any(w < 200 for w in args.widths):
        parser.error(f"--widths: {args.widths} has a width under 200 px; give e.g. 1400,400")
    if not (args.site / "book").is_dir() and not list(args.site.glob("*.html")):
        parser.error(f"--site: {args.site} holds no built site; run `jupyter-book build .` first")
    page_list = pages(args.site, args.pages)
    if not page_list:
        parser.error(f"--pages: no page of {args.site} matches {args.pages}")
    chromium = find_chromium(args.chromium)
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    start = time.perf_counter()
    views = shoot(args.site, args.out, page_list, args.widths, args.themes, args.tile, args.min_contrast, chromium)
    n_problems = write_report(args.out, views, time.perf_counter() - start)
    print(f"{len(views)} views of {len(page_list)} pages; {n_problems} problems; report: {args.out / 'report.md'}")
    return 1 if n_problems else 0


if __name__ == "__main__":
    sys.exit(main())
