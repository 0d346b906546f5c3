"""Small SVG charts drawn on the server: no script, no library, nothing from a CDN. Only
numbers go into the markup, so nothing a task or queue name holds can reach it."""

from __future__ import annotations

from markupsafe import Markup


def sparkline(series: list[list[int]], width: int = 180, height: int = 32) -> Markup:
    """Polylines of equal-length integer series (one per class: ``in`` and ``out``) scaled
    to a common maximum, oldest left, as an inline SVG."""
    top = max([1, *(v for s in series for v in s)])
    lines = []
    for i, values in enumerate(series):
        n = max(1, len(values) - 1)
        points = " ".join(
            f"{x * width / n:.1f},{height - 1 - v * (height - 2) / top:.1f}"
            for x, v in enumerate(values)
        )
        lines.append(f'<polyline class="s{i}" fill="none" points="{points}"/>')
    return Markup(
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="last hour, max {top} per minute">{"".join(lines)}</svg>'
    )
