"""The leaderboard's two plots, drawn with matplotlib's Agg canvas (no pyplot, no display) as PNG bytes.

The bytes are reproducible: fixed figure size and resolution, and no ``Software`` entry in the PNG metadata.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from harness.grader.leaderboard import Leaderboard

__all__ = ["FIGURE_WIDTH_IN", "FIGURE_HEIGHT_IN", "DPI", "topic_scores_png", "metric_vs_speed_png"]

FIGURE_WIDTH_IN = 9.0
FIGURE_HEIGHT_IN = 4.0
DPI = 100
LABEL_STEP_PT = 10  # vertical offset between labels of points that coincide


def _color(index: int) -> str:
    """The colour of the row at ``index`` in board order: the same in both plots."""
    return f"C{index % 10}"


def _figure(width_in: float = FIGURE_WIDTH_IN, height_in: float = FIGURE_HEIGHT_IN) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def topic_scores_png(board: Leaderboard) -> bytes | None:
    """Grouped bars: each row's score on each topic, in percent of the topic's points (None: nothing to plot)."""
    if not board.rows or not board.topics:
        return None
    figure = _figure()
    axes = figure.add_subplot()
    width = 0.8 / len(board.rows)
    for index, row in enumerate(board.rows):
        cells = [row.cells[topic] for topic in board.topics]
        heights = [100 * c.earned / c.possible if c.earned is not None and c.possible else 0.0 for c in cells]
        positions = [topic_index + (index - (len(board.rows) - 1) / 2) * width for topic_index in range(len(board.topics))]
        label = f"{row.name} (baseline)" if row.baseline else row.name
        axes.bar(positions, heights, width, label=label, color=_color(index), hatch="//" if row.baseline else None)
    axes.set_xticks(range(len(board.topics)), board.topics)
    axes.set_ylim(0, 105)
    axes.set_ylabel("score (% of points)")
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    return _png(figure)


def metric_vs_speed_png(board: Leaderboard) -> bytes | None:
    """One panel per topic with a headline metric: metric against the topic's speed measure, a labelled point per row
    (the baseline a diamond).

    None when no topic has a headline metric.
    """
    topics = board.metric_topics
    if not board.rows or not topics:
        return None
    figure = _figure(width_in=max(FIGURE_WIDTH_IN / 2 * len(topics), FIGURE_WIDTH_IN / 2))
    for index, topic in enumerate(topics, start=1):
        head = board.headlines[topic]
        axes = figure.add_subplot(1, len(topics), index)
        labelled: dict[tuple[float, float], int] = {}
        for row_index, row in enumerate(board.rows):
            cell = row.cells[topic]
            if cell.value is None or cell.speed is None:
                continue
            point = (cell.speed, cell.value)
            axes.scatter([cell.speed], [cell.value], marker="D" if row.baseline else "o", color=_color(row_index))
            offset = LABEL_STEP_PT * labelled.get(point, 0)
            labelled[point] = labelled.get(point, 0) + 1
            axes.annotate(row.name, point, textcoords="offset points", xytext=(5, 5 + offset), fontsize="small")
        axes.set_title(topic)
        axes.set_xlabel(head.speed_label)
        axes.set_ylabel(f"{head.metric} ({'higher' if head.higher_is_better else 'lower'} is better)")
        axes.grid(alpha=0.3)
    return _png(figure)
