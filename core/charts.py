"""Bar charts as inline SVG, for the admin dashboard: pure functions from numbers to markup.

No Django and no JavaScript: the page is drawn on the server and works under the strict CSP
(presentation attributes and CSS classes only, no style attributes, no script). Every chart
is an image to assistive technology (role="img", a <title> and a <desc> that reads out every
value); the page puts the same numbers in a table beside it, with the links.
Every text that goes into the markup is escaped here, so the result may be marked safe.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# Tones a bar may have; the stylesheet colours them (portal/static/portal/dashboard.css).
TONES = ("", "good", "warn", "bad", "muted")
_CHART_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")

# Geometry of the drawing (viewBox units; the SVG scales to the width of its box).
_VERTICAL_HEIGHT = 160
_VERTICAL_SLOT = 48
_LABEL_BAND = 22
_VALUE_BAND = 16
_ROW_HEIGHT = 26
# One width for every horizontal chart, so that all of them scale alike on the page (same text size).
_HORIZONTAL_WIDTH = 480
_CHAR_WIDTH = 7.5  # a generous character of the 12-unit label font
_VALUE_ROOM = 40


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    tone: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int) or self.value < 0:
            raise ValueError(f"a bar's value is a count (an int >= 0), not {self.value!r}")
        if self.tone not in TONES:
            raise ValueError(f"unknown tone {self.tone!r}; one of {TONES}")


def chart_summary(bars: Sequence[Bar]) -> str:
    """The values as one sentence, for the chart's <desc> (what a screen reader reads out)."""
    return "; ".join(f"{bar.label}: {bar.value}" for bar in bars) + "." if bars else "No data."


def _check(chart_id: str, bars: Sequence[Bar]) -> None:
    if not _CHART_ID.fullmatch(chart_id):
        raise ValueError(f"chart_id {chart_id!r} is not a plain HTML id (a letter, then letters, digits, - or _)")
    if not bars:
        raise ValueError("a chart needs at least one bar")


def _bar_class(bar: Bar) -> str:
    return f"chart-bar chart-bar-{bar.tone}" if bar.tone else "chart-bar"


def _open(
    chart_id: str, title: str, description: str, bars: Sequence[Bar], *, width: int, height: int, kind: str
) -> list[str]:
    ident = escape(chart_id)
    desc = f"{description} {chart_summary(bars)}".strip()
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{kind}" id="{ident}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="{ident}-title {ident}-desc" '
        'preserveAspectRatio="xMinYMin meet" focusable="false">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(desc)}</desc>',
    ]


def vertical_bar_chart(*, chart_id: str, title: str, bars: Sequence[Bar], description: str = "") -> str:
    """Columns side by side (a time series: one per week), the value above each, the label below."""
    _check(chart_id, bars)
    width = _VERTICAL_SLOT * len(bars)
    plot = _VERTICAL_HEIGHT - _LABEL_BAND - _VALUE_BAND
    top = max(bar.value for bar in bars) or 1
    parts = _open(chart_id, title, description, bars, width=width, height=_VERTICAL_HEIGHT, kind="vertical")
    baseline = _VALUE_BAND + plot
    parts.append(f'<line class="chart-axis" x1="0" y1="{baseline}" x2="{width}" y2="{baseline}"/>')
    for index, bar in enumerate(bars):
        x = index * _VERTICAL_SLOT
        height = round(plot * bar.value / top)
        centre = x + _VERTICAL_SLOT // 2
        parts.append(
            f'<rect class="{_bar_class(bar)}" x="{x + 6}" y="{baseline - height}" '
            f'width="{_VERTICAL_SLOT - 12}" height="{height}"/>'
        )
        parts.append(
            f'<text class="chart-value" x="{centre}" y="{baseline - height - 4}" text-anchor="middle">{bar.value}</text>'
        )
        parts.append(
            f'<text class="chart-label" x="{centre}" y="{_VERTICAL_HEIGHT - 6}" text-anchor="middle">'
            f"{escape(bar.label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def horizontal_bar_chart(*, chart_id: str, title: str, bars: Sequence[Bar], description: str = "") -> str:
    """One row per category (a state, a reason): the label, the bar, its value."""
    _check(chart_id, bars)
    label_width = min(round(_CHAR_WIDTH * max(len(bar.label) for bar in bars)) + 16, _HORIZONTAL_WIDTH * 3 // 5)
    width = _HORIZONTAL_WIDTH
    bar_area = width - label_width - _VALUE_ROOM
    height = _ROW_HEIGHT * len(bars)
    top = max(bar.value for bar in bars) or 1
    parts = _open(chart_id, title, description, bars, width=width, height=height, kind="horizontal")
    for index, bar in enumerate(bars):
        y = index * _ROW_HEIGHT
        length = round(bar_area * bar.value / top)
        middle = y + _ROW_HEIGHT // 2 + 4
        parts.append(
            f'<text class="chart-label" x="{label_width - 8}" y="{middle}" text-anchor="end">{escape(bar.label)}</text>'
        )
        parts.append(
            f'<rect class="{_bar_class(bar)}" x="{label_width}" y="{y + 5}" width="{length}" height="{_ROW_HEIGHT - 10}"/>'
        )
        parts.append(f'<text class="chart-value" x="{label_width + length + 6}" y="{middle}">{bar.value}</text>')
    parts.append("</svg>")
    return "".join(parts)
