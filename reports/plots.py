"""The report's plots, drawn on the server with matplotlib as inline SVG.

Text stays text (``svg.fonttype = none``): it is searchable on the page and in the PDF,
and the SVG scales to its box. Every figure is drawn at a fixed size and shown at the
width of its column; nothing here reads the database.
"""

import hashlib
import io
import re
import textwrap
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on a server

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

STYLE: dict[str, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "verdict",  # the same report gives the same bytes
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e4e4e4",
    "grid.linewidth": 0.6,
}
INK, ACCENT, WARN = "#264b73", "#2f7ebc", "#c0392b"


def _svg(figure: Figure) -> str:
    """The figure as an SVG element to inline: no XML prolog, no fixed size (it scales
    to its box), a title for screen readers."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    plt.close(figure)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    # Several plots share one page: give this one's ids (and the references to them) a
    # prefix of their own, or a marker of one plot would be drawn from another's.
    prefix = "p" + hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:8] + "-"
    ids = set(re.findall(r'\bid="([^"]+)"', text))
    text = re.sub(
        r'(\bid="|#)([A-Za-z_][\w.\-]*)',
        lambda m: m.group(1) + prefix + m.group(2) if m.group(2) in ids else m.group(0),
        text,
    )
    text = re.sub(r'(<svg[^>]*?) width="[^"]*" height="[^"]*"', r"\1", text, count=1)
    return text.replace("<svg", '<svg class="plot" role="img"', 1)


def _styled() -> Any:
    return plt.rc_context(STYLE)  # type: ignore[arg-type]  # rcParams keys typed as literals


def _figure(width: float, height: float) -> tuple[Figure, plt.Axes]:
    with _styled():
        figure, axes = plt.subplots(figsize=(width, height), layout="constrained")
    return figure, axes


def scores(
    systems: Sequence[str],
    elo: Sequence[float | None],
    low: Sequence[float | None],
    high: Sequence[float | None],
) -> str:
    """Each system's score with its interval, best at the top; an open bound is drawn as
    an arrow to the edge of the plot."""
    with _styled():
        figure, axes = _figure(6.4, 0.45 * len(systems) + 0.9)
        known = [v for v in (*elo, *low, *high) if v is not None]
        span = (max(known) - min(known)) if known else 1.0
        left, right = (
            (min(known) - 0.1 * span - 5, max(known) + 0.1 * span + 5) if known else (0, 1)
        )
        for y, (value, lo, hi) in enumerate(zip(elo, low, high, strict=True)):
            if value is None:
                continue
            a = lo if lo is not None else left
            b = hi if hi is not None else right
            axes.plot([a, b], [y, y], color=ACCENT, linewidth=2.5, solid_capstyle="butt")
            for bound, edge, marker in ((lo, left, "<"), (hi, right, ">")):
                if bound is None:
                    axes.plot([edge], [y], marker=marker, color=ACCENT)
            axes.plot([value], [y], "o", color=INK, markersize=5)
        axes.set_yticks(range(len(systems)), list(systems))
        axes.set_ylim(len(systems) - 0.5, -0.5)
        axes.set_xlim(left, right)
        axes.set_xlabel("Bradley–Terry score (Elo scale)")
        axes.grid(axis="y", visible=False)
        return _svg(figure)


def heat_colours(p: float) -> tuple[str, str]:
    """Background and text colour of a win-probability cell (red below ½, blue above)."""
    background = to_hex(matplotlib.colormaps["RdBu"](p))
    return background, "#ffffff" if abs(p - 0.5) > 0.3 else "#1d2733"


def agreement_histogram(shares: Sequence[float]) -> str:
    """Per rater, the share of their votes that agreed with the others' majority."""
    with _styled():
        figure, axes = _figure(6.4, 2.4)
        axes.hist(shares, bins=[k / 10 for k in range(11)], color=ACCENT, edgecolor="white")
        axes.set_xlim(0, 1)
        axes.set_xlabel("share of a rater's votes that agree with the majority of the others")
        axes.set_ylabel("raters")
        return _svg(figure)


def metric_scatter(
    *,
    metric: str,
    lower_is_better: bool,
    systems: Sequence[str],
    elo: Sequence[float],
    elo_err: Sequence[tuple[float, float] | None],
    values: Sequence[float],
    value_err: Sequence[tuple[float, float] | None],
    disagreements: Sequence[tuple[str, str]],
) -> str:
    """A metric against the human score, intervals as error bars, each pair people and
    the metric order differently joined in red. Lower-is-better metrics run downwards,
    so up is better on every plot."""
    with _styled():
        figure, axes = _figure(4.2, 2.9)
        where = {}
        for system, x, xe, y, ye in zip(systems, elo, elo_err, values, value_err, strict=True):
            where[system] = (x, y)
            axes.errorbar(
                [x], [y],
                xerr=None if xe is None else [[x - xe[0]], [xe[1] - x]],
                yerr=None if ye is None else [[y - ye[0]], [ye[1] - y]],
                fmt="o", color=INK, ecolor=ACCENT, elinewidth=1, capsize=2,
            )  # fmt: skip
            axes.annotate(system, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
        for preferred, other in disagreements:
            if preferred in where and other in where:
                (x1, y1), (x2, y2) = where[preferred], where[other]
                axes.plot([x1, x2], [y1, y2], color=WARN, linewidth=1.2, linestyle="--")
        if lower_is_better:
            axes.invert_yaxis()
        axes.set_xlabel("human score (Elo scale)")
        label = f"{metric}" + (" (lower is better, drawn up)" if lower_is_better else "")
        # Wrapped to the plot's height: the layout fits the axes to their labels, and a
        # label longer than the axis would run off the figure.
        axes.set_ylabel(textwrap.fill(label, 34))
        return _svg(figure)


def pareto(
    *,
    systems: Sequence[str],
    score: Sequence[float],
    figure_of_merit: Sequence[float],
    front: Sequence[bool],
    axis: str,
) -> str:
    """Human score against a cost (lower is better along x), the Pareto front joined."""
    with _styled():
        figure, axes = _figure(4.4, 2.9)
        for system, x, y, on in zip(systems, figure_of_merit, score, front, strict=True):
            axes.plot([x], [y], "o", color=INK if on else "#9aa7b4", markersize=6)
            axes.annotate(system, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
        line = sorted((x, y) for x, y, on in zip(figure_of_merit, score, front, strict=True) if on)
        if len(line) > 1:
            axes.step(
                [p[0] for p in line], [p[1] for p in line], where="post",
                color=ACCENT, linewidth=1.2, label="Pareto front",
            )  # fmt: skip
            axes.legend(loc="best", frameon=False)
        axes.xaxis.set_major_locator(MaxNLocator(5))
        axes.set_xlabel(axis)
        axes.set_ylabel("human score (Elo scale)")
        return _svg(figure)
