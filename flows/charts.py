"""Line charts of the daily report as PNG (matplotlib, headless Agg backend)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime


def line_chart_png(
    title: str, series: Mapping[str, Sequence[tuple[datetime, float]]], *, ylabel: str
) -> bytes:
    """Return a PNG with one line per series (steps: values hold until the next point)."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    figure = Figure(figsize=(8, 3), dpi=100)
    axes = figure.add_subplot()
    for name, points in series.items():
        if points:
            # matplotlib's date numbers: days since its epoch, 1970-01-01 UTC
            times = [p[0].timestamp() / 86_400 for p in points]
            axes.step(times, [p[1] for p in points], where="post", label=name)
    if not any(series.values()):
        axes.text(0.5, 0.5, "no fills this day", ha="center", va="center",
                  transform=axes.transAxes)  # fmt: skip
    axes.axhline(0, color="#999", linewidth=0.8, linestyle="--")
    axes.xaxis_date(tz="UTC")
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    if any(series.values()):
        axes.legend(loc="best", fontsize="small")
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
