"""axe-core in the browser tests: inject it into a page, collect what it finds; and the phone-width check.

axe-core comes from the npm registry (package.json at the repository's root, pinned by
package-lock.json; `make setup-dev` runs `npm ci`). A missing copy fails the test: an
accessibility check that silently does not run proves nothing.

The page's Content-Security-Policy does not get in the way: Playwright's add_script_tag(path=...)
inserts the file's text as an inline script, which the policy would refuse, so the source is
evaluated through DevTools instead (page.evaluate runs outside the page's policy).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AXE_SOURCE = REPO / "node_modules" / "axe-core" / "axe.min.js"

# What the checks hold the pages to: WCAG 2.x A and AA, and axe's best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def axe_source() -> str:
    if not AXE_SOURCE.is_file():
        raise AssertionError(
            f"axe-core is missing ({AXE_SOURCE.relative_to(REPO)}): run `make setup-dev` (npm ci) first."
        )
    return AXE_SOURCE.read_text(encoding="utf-8")


def axe_violations(page, impacts=("serious", "critical")) -> list[dict]:
    """axe-core's violations on the page as it is now, of the given impacts (all when `impacts` is empty)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # evaluate(), not add_script_tag(): an inline <script> would be blocked by the page's CSP.
        page.evaluate(axe_source() + "\n;undefined")
    assert page.evaluate("typeof window.axe !== 'undefined'"), "axe-core did not load into the page"
    # resultTypes: axe still runs every rule, but keeps every element only for the violations (a
    # third of a page's check went to collecting the passes); only the violations come back.
    violations = page.evaluate(
        "async (tags) => JSON.parse(JSON.stringify((await axe.run(document,"
        " {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})).violations))",
        AXE_TAGS,
    )
    if impacts:
        violations = [v for v in violations if v.get("impact") in impacts]
    return violations


def describe(violations: list[dict]) -> str:
    """One line per violation and element, for an assertion message."""
    lines = []
    for violation in violations:
        for node in violation["nodes"][:5]:
            lines.append(f"{violation['impact']} {violation['id']}: {violation['help']} at {node['target']}")
    return "\n".join(lines)


def assert_accessible(page, where: str, impacts=("serious", "critical")) -> None:
    violations = axe_violations(page, impacts=impacts)
    assert violations == [], f"{where}:\n{describe(violations)}"


def horizontal_overflow(page) -> tuple[int, int]:
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


def assert_fits(page, width: int = 390) -> None:
    """No horizontal scrolling: the document is no wider than the window (the viewport `width`)."""
    scroll_width, inner_width = horizontal_overflow(page)
    assert inner_width == width, f"the viewport is {inner_width} px wide, not {width}"
    if scroll_width > inner_width:
        culprits = page.evaluate(
            """(limit) => Array.from(document.querySelectorAll('body *'))
                 .filter((e) => e.getBoundingClientRect().right > limit + 1)
                 .slice(0, 8)
                 .map((e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}${e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\\s+/).join('.') : ''} (${Math.round(e.getBoundingClientRect().right)} px)`)""",
            inner_width,
        )
        raise AssertionError(f"{page.url}: {scroll_width} px wide in a {inner_width} px window; too wide: {culprits}")


def screenshot_dir(tmp_path: Path) -> Path:
    """Where the screenshots go: E2E_SCREENSHOT_DIR (kept as CI artifacts) or the test's tmp_path."""
    directory = Path(os.environ.get("E2E_SCREENSHOT_DIR") or tmp_path / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def save_screenshot(page, directory: Path, name: str) -> Path:
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    return path
