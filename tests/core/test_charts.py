"""core/charts.py: numbers to inline SVG, pure (no database, no Django)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from core.charts import Bar, chart_summary, horizontal_bar_chart, vertical_bar_chart

SVG = "{http://www.w3.org/2000/svg}"


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # well-formed XML, or this raises


def _rects(svg: ET.Element) -> list[ET.Element]:
    return svg.findall(f"{SVG}rect")


@pytest.mark.parametrize("draw", [vertical_bar_chart, horizontal_bar_chart])
def test_a_chart_is_an_accessible_image_that_reads_out_every_value(draw):
    bars = [Bar("pending", 3, "warn"), Bar("issued", 12), Bar("failed", 0, "bad")]
    svg = _parse(draw(chart_id="chart-requests", title="Requests by state", bars=bars, description="All time."))

    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "chart-requests-title chart-requests-desc"
    assert svg.find(f"{SVG}title").text == "Requests by state"
    assert svg.find(f"{SVG}title").get("id") == "chart-requests-title"
    assert svg.find(f"{SVG}desc").text == "All time. pending: 3; issued: 12; failed: 0."
    assert svg.get("style") is None  # the strict CSP refuses style attributes: classes only
    assert [rect.get("class") for rect in _rects(svg)] == [
        "chart-bar chart-bar-warn",
        "chart-bar",
        "chart-bar chart-bar-bad",
    ]
    texts = [text.text for text in svg.iter(f"{SVG}text")]
    for bar in bars:
        assert bar.label in texts and str(bar.value) in texts


def test_vertical_bars_are_proportional_to_the_values_and_share_one_baseline():
    svg = _parse(vertical_bar_chart(chart_id="weeks", title="Issued", bars=[Bar("a", 10), Bar("b", 5), Bar("c", 0)]))
    heights = [int(rect.get("height")) for rect in _rects(svg)]
    bottoms = {int(rect.get("y")) + int(rect.get("height")) for rect in _rects(svg)}

    assert heights[0] > 0 and heights[1] * 2 == heights[0] and heights[2] == 0
    assert len(bottoms) == 1
    xs = [int(rect.get("x")) for rect in _rects(svg)]
    assert xs == sorted(xs) and len(set(xs)) == 3  # side by side, in order


def test_horizontal_bars_are_proportional_and_leave_room_for_the_longest_label():
    svg = _parse(
        horizontal_bar_chart(chart_id="r", title="Reasons", bars=[Bar("key compromise", 4), Bar("superseded", 1)])
    )
    widths = [int(rect.get("width")) for rect in _rects(svg)]
    assert widths[0] > 0 and abs(widths[0] - 4 * widths[1]) <= 2  # rounded to whole units
    label_end = int(svg.find(f"{SVG}text").get("x"))
    assert all(int(rect.get("x")) > label_end for rect in _rects(svg))
    view_width = int(svg.get("viewBox").split()[2])
    assert all(int(rect.get("x")) + int(rect.get("width")) < view_width for rect in _rects(svg))


def test_all_zero_values_draw_empty_bars_without_dividing_by_zero():
    svg = _parse(horizontal_bar_chart(chart_id="z", title="Nothing", bars=[Bar("a", 0), Bar("b", 0)]))
    assert [rect.get("width") for rect in _rects(svg)] == ["0", "0"]


def test_every_text_is_escaped():
    hostile = '<script>alert("x")</script> & "quotes"'
    markup = horizontal_bar_chart(chart_id="x", title=hostile, bars=[Bar(hostile, 1)], description=hostile)
    assert "<script>" not in markup
    svg = _parse(markup)
    assert svg.find(f"{SVG}title").text == hostile  # escaped in the markup, the same text when read


@pytest.mark.parametrize("chart_id", ["", "1chart", 'a" onload="x', "a b", "x" * 65])
def test_an_id_that_is_not_a_plain_html_id_is_refused(chart_id):
    with pytest.raises(ValueError, match="chart_id"):
        vertical_bar_chart(chart_id=chart_id, title="t", bars=[Bar("a", 1)])


@pytest.mark.parametrize("value", [-1, 1.5, True, "3", None])
def test_a_bar_is_a_count(value):
    with pytest.raises(ValueError, match="count"):
        Bar("a", value)


def test_unknown_tone_and_empty_chart_are_refused():
    with pytest.raises(ValueError, match="tone"):
        Bar("a", 1, "purple")
    with pytest.raises(ValueError, match="at least one bar"):
        horizontal_bar_chart(chart_id="e", title="Empty", bars=[])


def test_summary():
    assert chart_summary([Bar("a", 1), Bar("b", 2)]) == "a: 1; b: 2."
    assert chart_summary([]) == "No data."


def test_charts_import_no_django():
    import ast
    from pathlib import Path

    import core.charts

    tree = ast.parse(Path(core.charts.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not {
        name for name in imported if name.split(".")[0] in ("django", "audit", "enrollment", "escrow", "portal")
    }
