"""A bar chart as inline SVG, drawn in Python: no script, no style attribute, nothing fetched.

The console's CSP (``default-src 'self'; script-src 'none'``) refuses scripts
and inline styles; SVG elements with classes (coloured by the console's own
stylesheet) and ``<title>`` tooltips need neither. Every text in the chart
is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence

from .html import esc

WIDTH = 720
HEIGHT = 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 40, 10, 20, 30


def bar_chart(
    labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[int]]], title: str, every: int = 3
) -> str:
    """Grouped bars: one group per label, one bar per ``(name, css class, values)`` series.

    Every ``every``-th label is written under its group; each bar's ``<title>`` says its
    label, series and value.
    """
    groups = max(len(labels), 1)
    top = max((v for _, _, values in series for v in values), default=0)
    scale = max(top, 1)
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    group_w = plot_w / groups
    bar_w = max((group_w - 2) / max(len(series), 1), 1.0)
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{esc(title)}"><title>{esc(title)}</title>',
        f'<line class="axis" x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{WIDTH - _RIGHT}" y2="{_TOP + plot_h}"/>',
        f'<line class="axis" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + plot_h}"/>',
        f'<text x="{_LEFT - 4}" y="{_TOP + 4}" text-anchor="end">{top}</text>',
        f'<text x="{_LEFT - 4}" y="{_TOP + plot_h}" text-anchor="end">0</text>',
    ]
    for i, label in enumerate(labels):
        x0 = _LEFT + i * group_w + 1
        for j, (name, css, values) in enumerate(series):
            value = values[i] if i < len(values) else 0
            height = plot_h * value / scale
            x = x0 + j * bar_w
            y = _TOP + plot_h - height
            parts.append(
                f'<rect class="{esc(css)}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{height:.1f}">'
                f"<title>{esc(label)}: {value} {esc(name)}</title></rect>"
            )
        if i % every == 0:
            parts.append(
                f'<text x="{x0 + group_w / 2:.1f}" y="{HEIGHT - 10}" text-anchor="middle">{esc(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
