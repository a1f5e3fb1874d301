"""The metrics page's plots as inline SVG made by matplotlib on the server: monthly counts as
grouped bars, and the time spent in each state as box plots.

Each plot is its own ``matplotlib.figure.Figure`` (never pyplot: no global figure state, so
requests may draw in parallel threads) saved as SVG, then made fit for inlining: the XML
prologue dropped, every ``id`` (and each reference to it) prefixed so that two plots on one
page never share one, and ``role="img"`` with a ``<title>`` and ``<desc>`` so that a screen
reader says what the plot shows. The page puts the same figures beside each plot as a table.
Pure apart from matplotlib; it reads no database.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from html import escape

from matplotlib import ticker
from matplotlib.figure import Figure

# Colour-blind-safe (Okabe–Ito), dark enough against white for the bars' edges.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00")
_WIDTH, _HEIGHT = 7.0, 3.4  # inches at 72 dpi: about 500 × 245 px before CSS scaling

_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r"#([^\s\"')#]+)(?=[)\"'])")


def accessible_svg(svg: str, *, key: str, title: str, desc: str) -> str:
    """``svg`` (matplotlib's output) ready to inline in HTML: no prologue, its ids prefixed
    with ``key`` (letters, digits, ``-``), ``role="img"`` labelled by a ``<title>`` and
    described by a ``<desc>`` (both escaped)."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", key):
        raise ValueError(f"{key!r} is not a plot key (a letter, then letters, digits or -)")
    start = svg.index("<svg")
    body = svg[start:]
    ids = set(_ID.findall(body))
    body = _ID.sub(lambda m: f'id="{key}-{m[1]}"', body)
    # References are url(#id) and xlink:href="#id"; colours (#0072b2) are not ids.
    body = _REF.sub(lambda m: f"#{key}-{m[1]}" if m[1] in ids else m[0], body)
    title_id, desc_id = f"{key}-title", f"{key}-desc"
    head_end = body.index(">") + 1
    opening = body[: head_end - 1]
    opening += f' role="img" aria-labelledby="{title_id}" aria-describedby="{desc_id}"'
    return (
        opening
        + ">"
        + f'<title id="{title_id}">{escape(title)}</title>'
        + f'<desc id="{desc_id}">{escape(desc)}</desc>'
        + body[head_end:]
    )


def _svg(figure: Figure) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", bbox_inches="tight")
    return out.getvalue()


def monthly_bars(
    months: Sequence[str],
    series: Mapping[str, Mapping[str, int]],
    *,
    key: str,
    title: str,
    desc: str,
) -> str:
    """Grouped bars: for each month of ``months``, one bar per series (name → month →
    count), in the order given."""
    figure = Figure(figsize=(_WIDTH, _HEIGHT), layout="constrained")
    axes = figure.add_subplot()
    names = list(series)
    width = 0.8 / max(1, len(names))
    positions = range(len(months))
    for i, name in enumerate(names):
        counts = [series[name].get(m, 0) for m in months]
        axes.bar(
            [p - 0.4 + width * (i + 0.5) for p in positions],
            counts,
            width,
            label=name,
            color=COLOURS[i % len(COLOURS)],
        )
    step = max(1, math.ceil(len(months) / 12))  # at most ~12 month labels
    axes.set_xticks(list(positions)[::step], list(months)[::step], rotation=45, ha="right")
    axes.set_ylabel("releases")
    axes.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    axes.spines[["top", "right"]].set_visible(False)
    if names:
        axes.legend(
            frameon=False, ncols=min(3, len(names)), loc="upper left", bbox_to_anchor=(0, -0.3)
        )
    axes.set_title(title, loc="left", fontsize=11)
    return accessible_svg(_svg(figure), key=key, title=title, desc=desc)


def duration_boxes(
    samples: Mapping[str, Sequence[float]], *, key: str, title: str, desc: str
) -> str:
    """Horizontal box plots of durations in seconds (label → samples), shown in hours on a
    logarithmic axis (stays last from seconds to months); labels without samples are left
    out."""
    shown = {label: [max(s, 1.0) / 3600 for s in values] for label, values in samples.items()
             if values}  # fmt: skip
    figure = Figure(figsize=(_WIDTH, max(1.6, 0.45 * len(shown) + 1.0)), layout="constrained")
    axes = figure.add_subplot()
    if shown:
        labels = list(shown)
        axes.boxplot(
            [shown[label] for label in labels],
            orientation="horizontal",
            tick_labels=labels,
            patch_artist=True,
            boxprops={"facecolor": "#cfe3f3", "edgecolor": "#0072B2"},
            medianprops={"color": "#D55E00", "linewidth": 2},
            flierprops={"marker": ".", "markersize": 3, "markeredgecolor": "#434a54"},
        )
        axes.set_xscale("log")
        axes.invert_yaxis()
    else:
        axes.text(0.5, 0.5, "no stay ended in the period", ha="center", va="center")
        axes.set_yticks([])
    axes.set_xlabel("hours (log scale)")
    axes.spines[["top", "right"]].set_visible(False)
    axes.set_title(title, loc="left", fontsize=11)
    return accessible_svg(_svg(figure), key=key, title=title, desc=desc)
