"""A flow's runs as a server-rendered chart: records created / updated / unchanged / failed per run, one
stacked bar per run, oldest on the left (inline SVG, no JavaScript)."""

from __future__ import annotations

from dataclasses import dataclass

from syncs.models import SyncRun

SERIES = (
    ("created", "Created", "#2f9e44"),
    ("updated", "Updated", "#1c7ed6"),
    ("unchanged", "Unchanged", "#adb5bd"),
    ("failed", "Failed", "#e03131"),
)
WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 600, 180, 36, 22, 8
RUNS_SHOWN = 20


@dataclass(frozen=True)
class Segment:
    key: str
    label: str
    color: str
    value: int
    y: float
    height: float


@dataclass(frozen=True)
class Bar:
    run_id: int
    x: float
    width: float
    label: str  # the x-axis tick: the run's start, "29 Nov 14:05"
    title: str  # the tooltip: every count in words
    segments: tuple[Segment, ...]


def _nice_max(value: int) -> int:
    """The axis top: 1, 2 or 5 × a power of ten, at least the tallest bar."""
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def runs_chart(*, runs: list[SyncRun]) -> dict:
    """Bars for the last runs (oldest first) and the axis, in SVG user units."""
    runs = sorted(runs, key=lambda r: (r.started, r.pk))[-RUNS_SHOWN:]
    peak = max((sum(getattr(r, key) for key, _, _ in SERIES) for r in runs), default=0)
    top = _nice_max(max(peak, 1))
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = (WIDTH - PAD_LEFT) / max(len(runs), 1)
    bars = []
    for i, run in enumerate(runs):
        base = HEIGHT - PAD_BOTTOM
        segments = []
        for key, label, color in SERIES:
            value = getattr(run, key)
            height = plot_h * value / top
            base -= height
            segments.append(Segment(key, label, color, value, round(base, 2), round(height, 2)))
        words = ", ".join(f"{s.value} {s.label.lower()}" for s in segments)
        bars.append(
            Bar(
                run.pk,
                round(PAD_LEFT + i * slot + slot * 0.15, 2),
                round(slot * 0.7, 2),
                f"{run.started:%d %b %H:%M}",
                f"Run #{run.pk} ({run.status_label}): {words}",
                tuple(segments),
            )
        )
    return {
        "bars": bars,
        "top": top,
        "width": WIDTH,
        "height": HEIGHT,
        "pad_left": PAD_LEFT,
        "axis_y": HEIGHT - PAD_BOTTOM,
        "top_y": PAD_TOP,
        "series": SERIES,
    }
