"""What a person would notice on a page, measured in the browser: layout, console errors, requests that leave
this machine, and accessibility (axe-core, run in the page by axe-playwright-python, which bundles it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from axe_playwright_python.sync_playwright import Axe

LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
# axe's impact levels that fail a page; "moderate" and "minor" findings are reported, not failed.
FAILING_IMPACTS = {"serious", "critical"}

# Elements whose text is a link or a heading: each must show whole words on its lines (the admin index once
# rendered "Sync-health dashboard" one letter per line). Returns [selector-ish description, text, lines, words].
BROKEN_WORDS_JS = """
() => {
  const out = [];
  const nodes = document.querySelectorAll("#container a, #container h1, #container h2, #container h3, "
    + "#container th, #container caption, #container button, #container label, #container legend");
  for (const el of nodes) {
    const text = (el.innerText || "").trim();
    if (!text) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || style.display === "none" || el.getClientRects().length === 0) continue;
    if (style.textOverflow === "ellipsis") continue;
    // Line boxes of the element's own text (a Range over the element would add the boxes of its children).
    const tops = [];
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.textContent.trim()) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      for (const rect of range.getClientRects()) {
        if (rect.width > 0 && rect.height > 0) tops.push(rect.top);
      }
    }
    tops.sort((a, b) => a - b);
    const lines = tops.filter((top, i) => i === 0 || top - tops[i - 1] > 4).length;
    const words = Math.max(1, text.split(/[\\s\\-\\u2010/]+/).filter(Boolean).length);
    if (lines > words) {
      const cls = typeof el.className === "string" && el.className ? "." + el.className.split(" ")[0] : "";
      const id = el.id ? "#" + el.id : cls;
      out.push([el.tagName.toLowerCase() + id, text.slice(0, 60), lines, words]);
    }
  }
  return out;
}
"""

# Horizontal overflow of the page, and of every box that scrolls or clips sideways (Django's changelist wraps
# its table in `.results`, which scrolls instead of the page: columns hidden off screen all the same).
OVERFLOW_JS = """
() => {
  const out = [];
  const root = document.scrollingElement;
  if (root.scrollWidth > root.clientWidth + 1) out.push(["the page", root.scrollWidth, root.clientWidth]);
  // In the admin (#container); the API docs' own code boxes scroll sideways by design.
  for (const box of document.querySelectorAll("#container *")) {
    if (box.matches("input, textarea, select, button")) continue;  // their text scrolls within them
    if (!box.clientWidth || box.scrollWidth <= box.clientWidth + 1) continue;
    const overflow = getComputedStyle(box).overflowX;
    if (overflow === "visible") continue;
    if (box.clientWidth <= 1 || box.closest(".visually-hidden")) continue;  // text for screen readers only
    if (box.closest("pre, textarea, .cf-json")) continue;  // code and JSON scroll inside their own box
    const name = box.tagName.toLowerCase() + (box.id ? "#" + box.id : "")
      + (typeof box.className === "string" && box.className ? "." + box.className.split(" ")[0] : "");
    out.push([name, box.scrollWidth, box.clientWidth]);
  }
  return out;
}
"""


@dataclass
class PageReport:
    """Problems found on one page."""

    url: str
    problems: list[str] = field(default_factory=list)


@dataclass
class PageWatcher:
    """Collects console errors, uncaught exceptions and requests to other hosts for the page it watches."""

    page: Any
    console_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.console_errors.append(f"uncaught: {exc}"))
        self.page.on("request", self._request)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _request(self, request: Any) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("data", "blob", "about"):
            return
        if parts.hostname not in LOOPBACK:
            self.outside_requests.append(request.url)

    def reset(self) -> None:
        self.console_errors.clear()
        self.outside_requests.clear()


def block_outside_requests(context: Any) -> None:
    """Nothing may leave loopback, so nothing does: a request elsewhere is aborted (and still reported)."""

    def route(route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if host in LOOPBACK or urlsplit(route.request.url).scheme in ("data", "blob"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", route)


def check_page(page: Any, watcher: PageWatcher, url: str, *, screenshot: str, axe: Axe) -> PageReport:
    """Open `url`, keep a full-page screenshot, and report what is wrong with it."""
    watcher.reset()
    report = PageReport(url=url)
    response = page.goto(url, wait_until="load")
    if "/admin/" not in url:
        page.wait_for_load_state("networkidle")  # the API docs render the schema they fetch
    if response is None or response.status != 200:
        report.problems.append(f"answered {response.status if response else 'nothing'}")
    page.screenshot(path=screenshot, full_page=True)
    for where, scroll_width, client_width in page.evaluate(OVERFLOW_JS):
        report.problems.append(f"scrolls sideways: {where} is {scroll_width}px wide in {client_width}px")
    for element, text, lines, words in page.evaluate(BROKEN_WORDS_JS):
        report.problems.append(f"{element} {text!r} breaks words: {lines} lines for {words} word(s)")
    for error in watcher.console_errors:
        report.problems.append(f"console error: {error}")
    for outside in watcher.outside_requests:
        report.problems.append(f"request leaves this machine: {outside}")
    results = axe.run(page)
    for violation in results.response["violations"]:
        if violation["impact"] in FAILING_IMPACTS:
            targets = ", ".join(" ".join(node["target"]) for node in violation["nodes"][:3])
            report.problems.append(f"axe {violation['impact']} {violation['id']}: {violation['help']} ({targets})")
    return report
