"""Pictures of spend and of single jobs (matplotlib, PNG or SVG).

- ``spend_figure(report)``: stacked bars per period and team (compute after
  discount, grader tokens), the budget as a line over its bar;
- ``cumulative_figure(bill, month=...)``: cumulative spend per team over a month
  against each team's budget;
- ``timeline_figure(explanation)``: one job as a Gantt chart: a row per phase,
  billed, lost, accrued and excluded time in distinct colours, billing events and
  checkpoints marked, each charge written at its billing event;
- ``waterfall_figure(bill, job_id=None)``: wall clock → excluded phases → lost
  work → billable → rounding → discount → grader tokens → total, for one job or
  the whole bill (time valued at each job's hourly rate).

Figures are ``matplotlib.figure.Figure`` objects drawn on the Agg canvas: no
pyplot, no global backend switch, so they work in scripts, servers and notebooks
alike. Colours come from the Okabe-Ito palette, which readers with any common
colour-vision deficiency can tell apart; lost time is also hatched, so it reads
in grey print. Amounts are turned into floats only to be drawn: every number
written on a chart is formatted from the exact ``Decimal`` or integer cents.
"""

from __future__ import annotations

import io
import re
import unicodedata
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd
from pydantic import BaseModel, ConfigDict

from rftcost.billing import Bill
from rftcost.errors import InputError, UnknownJobError
from rftcost.money import RoundingMode, cents_to_decimal, format_money, to_minor_units
from rftcost.rules import compute_cents, rate_units, time_value_cents
from rftcost.spend import (
    UNALLOCATED,
    Budgets,
    PeriodKind,
    SpendGroup,
    SpendReport,
    Window,
    period_bounds,
    spend,
)
from rftcost.textsafe import visible_controls

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from rftcost.explain import Explanation

__all__ = [
    "OKABE_ITO",
    "STATUS_COLOURS",
    "WaterfallStep",
    "cumulative_figure",
    "drawable",
    "figure_svg",
    "format_money",
    "missing_glyphs",
    "save_figure",
    "spend_figure",
    "team_colours",
    "timeline_figure",
    "waterfall_figure",
    "waterfall_steps",
]

OKABE_ITO = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "bluish_green": "#009E73",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "sky_blue": "#56B4E9",
    "yellow": "#F0E442",
    "black": "#000000",
}
"""The Okabe-Ito palette (Okabe & Ito 2008), safe for colour-blind readers."""

_TEAM_ORDER = (
    "blue",
    "orange",
    "bluish_green",
    "reddish_purple",
    "sky_blue",
    "vermillion",
    "yellow",
)
_GREY = "#8C8C8C"
_LIGHT_GREY = "#D9D9D9"
_HATCHES = ("", "..", "xx", "\\\\", "++")
_LINE_STYLES: dict[str, Any] = {
    "": "-",
    "..": ":",
    "xx": "-.",
    "\\\\": (0, (3, 1, 1, 1, 1, 1)),
    "++": (0, (1, 3)),
}
"""The line of a group whose colour repeats, as its hatch tells its bars apart (a budget's
line is dashed, ``--``, a style no group has)."""

STATUS_COLOURS = {
    "billed": OKABE_ITO["blue"],
    "lost": OKABE_ITO["vermillion"],
    "accrued": OKABE_ITO["orange"],
    "excluded": "#BBBBBB",
    "idle": "#EEEEEE",
    "unknown": OKABE_ITO["reddish_purple"],
}
"""Colour of each kind of time on a job's timeline."""

_STATUS_HATCHES = {"lost": "///", "unknown": "xx"}
"""Time that is not charged as drawn (lost, or unknown for an invalid job) is hatched too,
so that it reads without colour."""

_STATUS_LABELS = {
    "billed": "billed (charged)",
    "lost": "lost work (not charged, R5/R6)",
    "accrued": "accrued (after last billing event, not charged yet)",
    "excluded": "excluded phase (not billed, R2)",
    "idle": "no phase open",
    "unknown": "billable, amount unknown (invalid job, not charged)",
}


_STYLE = {
    "font.size": 9.5,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.axisbelow": True,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "svg.fonttype": "none",
    "svg.hashsalt": "rftcost",
    # Every text is plain text: team, project and job names come from the logs, and a
    # name like "$^$" must be drawn as it is, not parsed (and crashed on) as math text.
    "text.parse_math": False,
    "text.usetex": False,
}


@contextmanager
def _style() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context(cast(Any, _STYLE)):
        yield


def _num(moments: Any) -> Any:
    """Datetimes → matplotlib date numbers (days since the epoch)."""
    from matplotlib import dates as mdates

    return mdates.date2num(moments)  # type: ignore[no-untyped-call]


def _tuples(frame: pd.DataFrame) -> Iterator[Any]:
    return iter(frame.itertuples(index=False))


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


# --- formatting ---------------------------------------------------------------------------


def _money_formatter(currency: str) -> Any:
    from matplotlib.ticker import Formatter

    class MoneyTicks(Formatter):
        """Ticks of one axis with the same decimals: cents unless every tick is whole
        dollars or above 100 ($0.80, $1.00, $1.20; not $0.80, $1, $1.20)."""

        places = 2

        def set_locs(self, locs: Any) -> None:
            self.places = 0 if all(abs(v) >= 100 or float(v).is_integer() for v in locs) else 2

        def __call__(self, value: float, pos: int | None = None) -> str:
            # Ticks are positions on the axis, not money: a float is fine here.
            rounded = Decimal(repr(round(float(value), 2)))
            return format_money(rounded, currency, places=self.places)

    return MoneyTicks()


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:,.2f} h"


def _cents_float(cents: Any) -> Any:
    """Integer cents → currency units as floats, for drawing only."""
    return pd.Series(cents, dtype="float64") / 100


def team_colours(groups: Sequence[str]) -> dict[str, tuple[str, str]]:
    """A (colour, hatch) per group label, in order; ``unallocated`` is grey.

    Seven Okabe-Ito colours first; beyond that the colours repeat with a hatch so
    that every team stays distinct.
    """
    mapping: dict[str, tuple[str, str]] = {}
    index = 0
    for group in groups:
        if group == UNALLOCATED:
            mapping[group] = (_GREY, "")
            continue
        colour = OKABE_ITO[_TEAM_ORDER[index % len(_TEAM_ORDER)]]
        hatch = _HATCHES[(index // len(_TEAM_ORDER)) % len(_HATCHES)]
        mapping[group] = (colour, hatch)
        index += 1
    return mapping


_LABEL_CHARS = 48
"""Longest legend entry drawn in full; a longer name (from a log) is cut with an ellipsis."""


def _label(text: str, limit: int = _LABEL_CHARS) -> str:
    """A name as one short line of plain text: control characters written visibly
    (``\u001b``, as every output writes them), line breaks and other invisible characters
    as spaces, and a name longer than ``limit`` cut, so that a hostile or long team name
    can neither break the layout (the legend would squeeze the axes to nothing) nor hide."""
    flat = "".join(c if c.isprintable() else " " for c in visible_controls(str(text)))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _legend_outside(fig: Figure, ax: Axes, handles: list[Any], labels: list[str]) -> None:
    """A legend to the right of the plot, never over the data."""
    ax.legend(
        handles,
        [_label(label) for label in labels],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0.0,
    )


# --- spend ----------------------------------------------------------------------------------

MAX_GROUPS_DRAWN = 12
"""Most groups a spend chart draws apart: beyond, the largest 11 and one bar of the rest (200
teams side by side are bars no one can tell apart and a legend taller than the picture)."""


def _largest_groups(
    table: pd.DataFrame, groups: list[str], by: SpendGroup
) -> tuple[pd.DataFrame, list[str]]:
    """``table`` with every group but the ``MAX_GROUPS_DRAWN - 1`` largest (total spend, then
    name) summed into one, named for how many it holds; its budget line is not drawn (the
    teams' budgets are theirs, the table and rftcost spend have them)."""
    totals = table.groupby("group")["total_cents"].sum()
    ranked = sorted(groups, key=lambda g: (-int(totals.get(g, 0)), g))
    kept = ranked[: MAX_GROUPS_DRAWN - 1]
    rest = len(groups) - len(kept)
    other = f"{rest} other {by.value}s"
    label = table["group"].where(table["group"].isin(kept), other)
    # The counts too: a bar of the rest with an invalid job says its total is unknown.
    sums = [
        "compute_cents",
        "discount_cents",
        "grader_cents",
        "total_cents",
        "jobs",
        "unknown_jobs",
    ]
    keys = ["period", *(["period_start"] if "period_start" in table else []), "group"]
    summed = table.assign(group=label).groupby(keys, as_index=False, sort=False)[sums].sum()
    budgets = table.set_index(["period", "group"])["budget_cents"]
    index = pd.MultiIndex.from_frame(summed[["period", "group"]])
    summed["budget_cents"] = budgets.reindex(index).to_numpy()
    return summed, [g for g in groups if g in kept] + [other]


def spend_figure(report: SpendReport, *, title: str | None = None) -> Figure:
    """Stacked bars per period and group: compute after discount, then grader tokens.

    Each bar is one group (team) in one period; its budget, where the report has
    one for that row, is a black dashed line across the bar. With many bars the
    totals are not written on them (the table has them).
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    table = report.table
    periods = report.period_range()
    groups = report.groups()
    if len(groups) > MAX_GROUPS_DRAWN:
        table, groups = _largest_groups(table, groups, report.by)
    colours = team_colours(groups)
    doubt = {(b.team, b.period) for b in report.budgets if b.in_doubt}
    n_bars = max(1, len(groups))
    width = min(0.8 / n_bars, 0.35)
    fig_width = max(7.0, 1.2 + len(periods) * min(0.5 + 0.35 * n_bars, 3.0)) + 2.2
    crowded = len(periods) * n_bars > 24
    # Totals wider than their bar would run into their neighbours' ($724.6… under
    # $733.56): then every total is written upright. Widths are estimated (digits of an
    # 8 pt font about 5 pt wide; the axes the figure less its legend and y labels).
    longest = max(
        (
            len(format_money(cents_to_decimal(int(c)), report.currency))
            for c in table["total_cents"]
        ),
        default=0,
    )
    if (table["unknown_jobs"] > 0).any() or doubt:
        longest = max(longest, len("+ unknown"))  # a total's second line
    label_points = 5.0 * longest
    bar_points = width * (fig_width - 3.1) * 72 / max(len(periods), 1)
    upright = crowded or label_points + 4 > bar_points  # 4 pt apart at least
    with _style():
        fig = _figure(fig_width, 4.8)
        ax = fig.add_subplot()
        position = {p: i for i, p in enumerate(periods)}
        handles: list[Any] = []
        labels: list[str] = []
        for j, group in enumerate(groups):
            rows = table[table["group"] == group]
            x = rows["period"].map(position).astype(float) + (j - (n_bars - 1) / 2) * width
            net = _cents_float(rows["compute_cents"].to_numpy() - rows["discount_cents"].to_numpy())
            grader = _cents_float(rows["grader_cents"].to_numpy())
            colour, hatch = colours[group]
            ax.bar(
                x,
                net,
                width,
                color=colour,
                hatch=hatch,
                edgecolor="white",
                linewidth=0.6,
                label=f"{group}: compute after discount",
            )
            ax.bar(
                x,
                grader,
                width,
                bottom=net,
                color=colour,
                alpha=0.45,
                hatch=hatch + "//",
                edgecolor=colour,
                linewidth=0.6,
                label=f"{group}: grader tokens",
            )
            handles.append(Patch(facecolor=colour, hatch=hatch, edgecolor="white"))
            labels.append(group)
            budgets = rows[rows["budget_cents"].notna()]
            if len(budgets):
                bx = budgets["period"].map(position).astype(float) + (j - (n_bars - 1) / 2) * width
                level = _cents_float(budgets["budget_cents"].astype("int64").to_numpy())
                ax.hlines(
                    level,
                    bx - width * 0.48,
                    bx + width * 0.48,
                    colors=OKABE_ITO["black"],
                    linestyles="--",
                    linewidth=1.6,
                    label=f"{group}: budget",
                )
            for xi, row in zip(x, _tuples(rows), strict=True):
                unknown = bool(row.unknown_jobs) or (str(row.group), str(row.period)) in doubt
                if crowded and not unknown:
                    continue  # too many bars to write every total (the table has them)
                top = (
                    int(row.compute_cents) - int(row.discount_cents) + int(row.grader_cents)
                ) / 100
                known = format_money(cents_to_decimal(int(row.total_cents)), report.currency)
                ax.annotate(
                    # A row's invalid jobs (or a budget charges of unknown amount may count
                    # against): never drawn as $0, however many bars (upright when crowded).
                    # Two lines: as wide as the bar's figure, not spilling over its neighbour.
                    ("+ unknown" if crowded else known + "\n+ unknown")
                    if unknown and row.jobs
                    else "unknown"
                    if unknown
                    else known,
                    (xi, top),
                    xytext=(0, 2),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    rotation=90 if upright else 0,
                    fontsize=8,
                    zorder=5,  # above a budget line crossing it, on a white ground
                    bbox={
                        "boxstyle": "square,pad=0.1",
                        "fc": "white",
                        "ec": "none",
                        "alpha": 0.85,
                    },
                )
        handles.append(Patch(facecolor="white", edgecolor=_GREY, hatch="//", alpha=0.8))
        labels.append("lighter, hatched: grader tokens")
        if table["budget_cents"].notna().any():
            handles.append(Line2D([], [], color=OKABE_ITO["black"], linestyle="--", linewidth=1.6))
            labels.append("budget")
        ax.set_xticks(range(len(periods)), periods)
        if len(periods) > 8:
            ax.tick_params(axis="x", labelrotation=45)
        ax.yaxis.set_major_formatter(_money_formatter(report.currency))
        # Room above the tallest bar for its total, upright ones being taller (axes about
        # 250 pt high).
        headroom = 1.1 + label_points / 250 if upright and not crowded else 1.15
        ax.set_ylim(0, _top(table) * headroom or 1.0)
        ax.grid(axis="y", color=_LIGHT_GREY, linewidth=0.8)
        ax.set_xlabel(f"{report.period.value} of the billing event (UTC)")
        ax.set_ylabel(f"spend ({report.currency})")
        group_name = report.by.value
        window = f", {report.window.label()}" if report.window is not None else ""
        ax.set_title(
            title or f"RFT spend per {group_name} and {report.period.value}{window}", loc="left"
        )
        legend_title = group_name if report.by is not SpendGroup.job else "job"
        _legend_outside(fig, ax, handles, labels)
        legend = ax.get_legend()
        if legend is not None:
            legend.set_title(legend_title)
        if not len(table):
            empty = "no charges in this window" if report.window is not None else "no charges"
            ax.text(0.5, 0.5, empty, transform=ax.transAxes, ha="center")
        _note_unknown(ax, len(report.invalid_jobs), report.orphan_records)
    return fig


def _note_unknown(ax: Any, invalid_jobs: int, orphan_records: int) -> None:
    """Say on the picture itself (what people share) what it cannot draw: amounts that are
    unknown are no bar and no line, never $0 (a line under the axis label, which the
    layout makes room for)."""
    parts = [f"{invalid_jobs} invalid job(s)"] if invalid_jobs else []
    if orphan_records:
        parts.append(f"{orphan_records} rejected record(s) of no known job")
    if parts:
        ax.set_xlabel(
            f"{ax.get_xlabel()}\nnot drawn, amount unknown (not $0): {' and '.join(parts)};"
            " see rftcost validate"
        )


def _top(table: pd.DataFrame) -> float:
    """Highest bar or budget of a spend table, in currency units (for the axis only)."""
    if table.empty:
        return 0.0
    bars = (table["compute_cents"] - table["discount_cents"] + table["grader_cents"]).max()
    budgets = table["budget_cents"].dropna()
    return float(max(int(bars), int(budgets.max()) if len(budgets) else 0)) / 100


# --- cumulative -------------------------------------------------------------------------------


def cumulative_figure(
    bill: Bill,
    *,
    month: str | None = None,
    budgets: Budgets | str | Path | None = None,
    by: SpendGroup | str = SpendGroup.team,
) -> Figure:
    """Cumulative spend per team over one month (UTC days) against each team's monthly budget.

    ``month`` is ``"2025-06"``; by default the month of the latest charge. A team
    that crosses its budget gets a marker on the day it did.
    """
    from matplotlib import dates as mdates

    if month is None:
        month = _latest_month(bill)
    try:
        kind, start, end = period_bounds(month)
    except ValueError as error:  # 2025-13: a bad month is the caller's input, said in one line
        raise InputError(
            f"not a month ({error})", path="--month", value=month, hint="for example 2025-06"
        ) from error
    if kind is not PeriodKind.month:
        raise InputError("cumulative charts are per month", value=month, hint="for example 2025-06")
    report = spend(
        bill, by=by, period=PeriodKind.day, window=Window(start=start, end=end), budgets=budgets
    )
    monthly = (
        {b.team: b for b in report.budgets if b.period == month}
        if SpendGroup(by) is SpendGroup.team
        else {}
    )
    groups = _ordered(set(report.table["group"]) | set(monthly))
    table = report.table
    if len(groups) > MAX_GROUPS_DRAWN:
        table, groups = _largest_groups(table, groups, SpendGroup(by))
        monthly = {group: budget for group, budget in monthly.items() if group in groups}
    colours = team_colours(groups)
    days = pd.date_range(start, end, freq="D", inclusive="left")
    edges = [*days, pd.Timestamp(end)]
    currency = report.currency
    with _style():
        fig = _figure(10.0, 5.0)
        ax = fig.add_subplot()
        handles: list[Any] = []
        labels: list[str] = []
        for group in groups:
            rows = table[table["group"] == group]
            daily = (
                pd.Series(
                    rows["total_cents"].to_numpy(dtype="int64"),
                    index=rows["period_start"].to_numpy(),
                )
                .groupby(level=0)
                .sum()
            )
            per_day = daily.reindex([int(d.value) for d in days], fill_value=0)
            cumulative = per_day.cumsum().to_numpy()
            colour, hatch = colours[group]
            # Each day shows what was spent up to the end of that day (a step at day start).
            values = [*cumulative.tolist(), int(cumulative[-1])]
            (line,) = ax.step(
                _num(edges),
                _cents_float(values),
                where="post",
                color=colour,
                linestyle=_LINE_STYLES.get(hatch, "-"),
                linewidth=2.0,
                label=group,
            )
            handles.append(line)
            status = monthly.get(group)
            spent = format_money(cents_to_decimal(int(cumulative[-1])), currency)
            # Invalid jobs (or records of no known job) of the group: never drawn as $0.
            if int(rows["unknown_jobs"].sum()) or (status is not None and status.in_doubt):
                spent = f"{spent} + unknown" if int(rows["jobs"].sum()) else "unknown"
                if not int(rows["jobs"].sum()):
                    line.set_data([], [])  # no known charge: no line along $0, its legend says
            labels.append(f"{group}: {spent}")
            if status is not None:
                level = float(status.amount)
                (budget_line,) = ax.plot(
                    _num([edges[0], edges[-1]]),
                    [level, level],
                    color=colour,
                    linestyle="--",
                    linewidth=1.3,
                    label=f"{group} budget",
                )
                handles.append(budget_line)
                labels.append(f"{group} budget {format_money(status.amount, currency)}")
                over = cumulative > to_minor_units(status.amount, RoundingMode.HALF_UP)
                if over.any():
                    first = int(over.argmax())
                    ax.plot(
                        _num([edges[first]]),
                        [cumulative[first] / 100],
                        marker="X",
                        markersize=9,
                        color=colour,
                        markeredgecolor="black",
                        linestyle="none",
                        label=f"{group} over budget",
                    )
                    ax.annotate(
                        f"{_label(group)} over budget on {days[first]:%d %b}",
                        (_num(edges[first]), cumulative[first] / 100),
                        xytext=(-8, 6) if first >= len(days) // 2 else (8, 6),
                        textcoords="offset points",
                        ha="right" if first >= len(days) // 2 else "left",
                        fontsize=8,
                    )
        ax.set_xlim(_num(edges[0]), _num(edges[-1]))
        ax.xaxis.set_major_locator(mdates.DayLocator(bymonthday=[1, 8, 15, 22], tz=UTC))  # type: ignore[no-untyped-call]
        ax.xaxis.set_minor_locator(mdates.DayLocator(tz=UTC))  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b", tz=UTC))  # type: ignore[no-untyped-call]
        ax.yaxis.set_major_formatter(_money_formatter(currency))
        highest = max([float(b.amount) for b in monthly.values()] + [0.0])
        sums = table.groupby("group")["total_cents"].sum()
        highest = max(highest, float(sums.max()) / 100 if len(sums) else 0.0)
        ax.set_ylim(0, highest * 1.12 or 1.0)
        ax.grid(axis="y", color=_LIGHT_GREY, linewidth=0.8)
        ax.set_xlabel("day of the billing event (UTC)")
        ax.set_ylabel(f"cumulative spend ({currency})")
        ax.set_title(f"Cumulative RFT spend per {SpendGroup(by).value}, {start:%B %Y}", loc="left")
        if handles:
            _legend_outside(fig, ax, handles, labels)
        else:
            ax.text(0.5, 0.5, "no charges in this month", transform=ax.transAxes, ha="center")
        _note_unknown(ax, len(report.invalid_jobs), report.orphan_records)
    return fig


def _ordered(groups: set[str]) -> list[str]:
    names = sorted(groups - {UNALLOCATED})
    return names + ([UNALLOCATED] if UNALLOCATED in groups else [])


def _latest_month(bill: Bill) -> str:
    """The month of the latest charge; without one, of the latest event read (a log of
    invalid jobs is drawn in its own month, not today's), else today's."""
    if not bill.charges.empty:
        latest = int(bill.charges["at"].max())
    elif not bill.timeline.jobs.empty and bill.timeline.jobs["last_ns"].notna().any():
        latest = int(bill.timeline.jobs["last_ns"].max())
    else:
        return datetime.now(UTC).strftime("%Y-%m")
    return datetime.fromtimestamp(latest // 1_000_000_000, tz=UTC).strftime("%Y-%m")


# --- timeline ---------------------------------------------------------------------------------


def timeline_figure(explanation: Explanation, *, currency: str | None = None) -> Figure:
    """One job as a Gantt chart: the picture that makes an audit finding believable.

    The top row shows the whole wall clock classified (billed, lost, accrued,
    excluded, idle); below it one row per phase: billable phases coloured by
    what happened to their time, non-billable phases grey. Checkpoints are
    diamonds on their own row; each billing event is a dashed line with its
    charge written above it.
    """
    from matplotlib import dates as mdates
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    job = explanation.job
    money = currency or _policy_currency(explanation.policy)
    phases = _phase_rows(explanation)
    rows = ["all time", *phases]
    has_checkpoints = bool(explanation.checkpoints)
    if has_checkpoints:
        rows.append("checkpoints")
    row_of = {name: i for i, name in enumerate(rows)}
    bars: dict[str, list[tuple[float, float, float]]] = {s: [] for s in STATUS_COLOURS}

    for status, start, end in _merged(explanation):
        bars[status].append(_bar(row_of["all time"], start, end))
    for phase, start, end, billable in explanation.phase_intervals:
        y = row_of[phase]
        if not billable:
            bars["excluded"].append(_bar(y, start, end))
            continue
        for stretch in explanation.stretches:
            lo, hi = max(start, stretch.start), min(end, stretch.end)
            if lo < hi and phase in stretch.phases:
                status = (
                    stretch.status
                    if stretch.status in ("billed", "lost", "accrued", "unknown")
                    else "excluded"
                )
                bars[status].append(_bar(y, lo, hi))

    first = min([s.start for s in explanation.stretches], default=None)
    last = max([s.end for s in explanation.stretches], default=None)
    with _style():
        fig = _figure(12.0, 2.2 + 0.42 * len(rows))
        ax = fig.add_subplot()
        for status, items in bars.items():
            if not items:
                continue
            rows_y, lefts, widths = zip(*items, strict=True)
            ax.barh(
                list(rows_y),
                list(widths),
                left=list(lefts),
                height=0.62,
                color=STATUS_COLOURS[status],
                edgecolor="black" if status in _STATUS_HATCHES else "white",
                linewidth=0.5,
                hatch=_STATUS_HATCHES.get(status),
                label=status,
            )
        if has_checkpoints:
            times = [_num(at) for at, _ in explanation.checkpoints]
            ax.plot(
                times,
                [row_of["checkpoints"]] * len(times),
                linestyle="none",
                marker="D",
                markersize=6,
                color=OKABE_ITO["bluish_green"],
                markeredgecolor="black",
                label="checkpoint",
            )
            if len(times) <= 30:
                for t, (_, step) in zip(times, explanation.checkpoints, strict=True):
                    ax.annotate(
                        str(step),
                        (t, row_of["checkpoints"]),
                        xytext=(0, -11),
                        textcoords="offset points",
                        ha="center",
                        fontsize=7,
                    )
        charges = job.charges
        for number, (at, event) in enumerate(explanation.billing_events, start=1):
            x = _num(at)
            ax.axvline(
                x, color=OKABE_ITO["black"], linestyle="--", linewidth=1.0, label="billing event"
            )
            text = f"{number}. {event}"
            if number <= len(charges):
                charge = charges[number - 1]
                text += f"\n{charge.billed_hours} h · {format_money(charge.amount, money)}"
            ax.annotate(
                text,
                (x, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
            )
        ax.set_yticks(range(len(rows)), rows)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.xaxis_date(tz=UTC)
        locator = mdates.AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))  # type: ignore[no-untyped-call]
        if first is not None and last is not None:
            pad = (last - first) * 0.01 or timedelta(minutes=1)
            ax.set_xlim(_num(first - pad), _num(last + pad))
        ax.grid(axis="x", color=_LIGHT_GREY, linewidth=0.8)
        ax.set_xlabel("time (UTC)")
        ax.set_ylabel("phase")
        ax.set_title(
            _timeline_title(explanation, money),
            loc="left",
            pad=30 if explanation.billing_events else 6,
        )
        handles: list[Any] = [
            Patch(
                facecolor=STATUS_COLOURS[s],
                edgecolor="black" if s in _STATUS_HATCHES else _GREY,
                hatch=_STATUS_HATCHES.get(s),
                linewidth=0.5,
            )
            for s in STATUS_COLOURS
            if bars[s]
        ]
        labels = [_STATUS_LABELS[s] for s in STATUS_COLOURS if bars[s]]
        if explanation.billing_events:
            handles.append(Line2D([], [], color="black", linestyle="--", linewidth=1.0))
            labels.append("billing event: charge (hours, amount)")
        if has_checkpoints:
            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="none",
                    marker="D",
                    color=OKABE_ITO["bluish_green"],
                    markeredgecolor="black",
                )
            )
            labels.append("checkpoint (step)")
        fig.legend(handles, labels, loc="outside lower center", ncols=3)
    return fig


def _policy_currency(name: str) -> str:
    """The currency of the policy an explanation names (USD if it cannot be loaded again)."""
    from rftcost.errors import RftcostError
    from rftcost.policy import load_policy

    try:
        return load_policy(name).currency
    except (RftcostError, OSError):
        return "USD"


def _merged(explanation: Explanation) -> list[tuple[str, datetime, datetime]]:
    """Consecutive stretches of the same status joined (the top row shows status only)."""
    merged: list[tuple[str, datetime, datetime]] = []
    for stretch in explanation.stretches:
        if merged and merged[-1][0] == stretch.status and merged[-1][2] == stretch.start:
            merged[-1] = (stretch.status, merged[-1][1], stretch.end)
        else:
            merged.append((stretch.status, stretch.start, stretch.end))
    return merged


def _phase_rows(explanation: Explanation) -> list[str]:
    seen: dict[str, datetime] = {}
    for phase, start, _, _ in explanation.phase_intervals:
        seen[phase] = min(seen.get(phase, start), start)
    return sorted(seen, key=lambda p: (seen[p], p))


def _bar(y: int, start: datetime, end: datetime) -> tuple[float, float, float]:

    left = float(_num(start))
    return (float(y), left, float(_num(end)) - left)


def _timeline_title(explanation: Explanation, currency: str) -> str:
    job = explanation.job
    # A job none of whose records could be read: its team is unknown, not unallocated.
    team_unknown = UNALLOCATED if explanation.records_read else "unknown"
    head = (  # names cut to one short line: a long or multi-line id cannot squeeze the axes
        f"Job {_label(job.job_id, 28)} · team {_label(job.team or team_unknown, 28)}"
        f" · {_label(job.model or 'unknown')} · {job.status}"
    )
    if job.status == "invalid":
        # Every problem, wrapped to the figure's width (a long path or message is
        # never cut off at the edge); past three lines, a count of the rest.
        import textwrap

        lines = textwrap.wrap(
            # A problem quotes names from the log: a control character in one (a NUL in a
            # model) is written visibly, never into the picture's text (``textsafe``).
            "INVALID: amount unknown (not $0): " + "; ".join(map(visible_controls, job.problems)),
            width=95,
            break_long_words=True,
            break_on_hyphens=False,
        )
        if len(lines) > 3:
            lines = [*lines[:2], lines[2][:60] + " … (see rftcost explain for the rest)"]
        return head + "\n" + "\n".join(lines)
    billed = job.billable_seconds or 0.0
    parts = [
        f"{_hours(billed)} billable of {_hours(job.wall_seconds)} wall clock"
        f" → {job.billed_hours} h charged"
    ]
    if job.lost_seconds:
        parts.append(f"{_hours(job.lost_seconds)} lost")
    if job.unbilled_seconds:
        parts.append(f"{_hours(job.unbilled_seconds)} accrued")
    total = job.total_amount if job.total_amount is not None else Decimal(0)
    parts.append(f"total {format_money(total, currency)}")
    return head + "\n" + "; ".join(parts) + f" (policy {explanation.policy})"


# --- waterfall --------------------------------------------------------------------------------


class WaterfallStep(BaseModel):
    """One bar of a waterfall: a level (``total``) or a change (``decrease``/``increase``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """What the bar is."""
    kind: str
    """``total`` (a level), ``decrease`` or ``increase`` (a change)."""
    amount: Decimal
    """The level, or the signed change, in the policy's currency."""
    seconds: float | None = None
    """The time behind a time step (valued at the hourly rate)."""
    note: str | None = None
    """Why this step differs from the bill's figure of the same name, if it does."""


def waterfall_steps(bill: Bill, job_id: str | None = None) -> tuple[WaterfallStep, ...]:
    """From wall clock to total for one job (or every valid job of ``bill``).

    Time steps are valued at each job's hourly rate, each level rounded half up
    to the cent; "rounding" is what the hour rounding (R11) adds on top of the
    exact billable time; a "cap" step appears when a per-job cap applied. The
    changes add up: the last level is the bill's total to the cent. ``UnknownJobError`` (a
    ``KeyError`` too) for a job not in the bill, ``InputError`` for an invalid one (its
    amount is unknown), or for a whole bill with no job of known amount.
    """
    jobs = bill.jobs[bill.jobs["status"] != "invalid"]
    charges = bill.charges
    if job_id is not None:
        if not (bill.jobs["job_id"] == job_id).any():
            raise UnknownJobError(job_id, known=len(bill.jobs))
        jobs = jobs[jobs["job_id"] == job_id]
        if jobs.empty:
            raise InputError(
                f"job {job_id!r} is invalid: its amount is unknown (not $0), so there is no "
                "waterfall from its wall clock to a total; rftcost explain --job says why",
                path="--job",
            )
        charges = charges[charges["job_id"] == job_id]
    elif jobs.empty and (len(bill.jobs) or bill.orphan_records()):
        # Every job's amount unknown: a waterfall of 0.00 h and $0.00 would say nothing ran.
        raise InputError(
            f"no job of known amount to draw ({len(bill.jobs)} invalid, "
            f"{bill.orphan_records()} rejected record(s) of no known job): the amount is "
            "unknown (not $0); rftcost validate says why",
            path="waterfall",
        )
    policy = bill.policy
    # Time valued exactly at each job's hourly rate (R11's rate, in exact units).
    rate = rate_units(jobs["model"], policy)

    def level(ns: pd.Series) -> int:
        return time_value_cents(ns.astype("int64"), rate, policy)

    billable = jobs["billable_ns"].astype("int64")
    lost = jobs["lost_ns"].astype("int64")
    unbilled = jobs["unbilled_ns"].astype("int64")
    wall_c = level(jobs["wall_ns"])
    worked_c = level(billable + lost + unbilled)
    kept_c = level(billable + unbilled)
    billable_c = level(billable)

    # What the charges' rounded hours cost at the rate the bill applied, before any cap.
    uncapped = compute_cents(charges["hour_units"].astype("int64"), charges["rate_units"], policy)
    uncapped_c = int(uncapped.sum())
    compute_c = int(charges["compute_cents"].sum())
    discount_c = int(charges["discount_cents"].sum())
    grader_c = int(charges["grader_cents"].sum())
    total_c = int(charges["amount_cents"].sum())

    def seconds(ns: pd.Series) -> float:
        return int(ns.sum()) / 1e9

    excluded_s = seconds(jobs["wall_ns"]) - seconds(billable + lost + unbilled)
    steps = [
        _total("wall clock", wall_c, seconds(jobs["wall_ns"])),
        _change("excluded phases and idle time", worked_c - wall_c, excluded_s),
        _change("lost work (R5, R6)", kept_c - worked_c, seconds(lost)),
    ]
    if billable_c != kept_c:
        accrued = _change("accrued, not charged yet (R8)", billable_c - kept_c, seconds(unbilled))
        # The step is the accrued time valued exactly at the rate, so that the levels add up
        # from wall clock to billable time; the bill's accrued amount rounds that time's
        # hours (R11) and adds its grader tokens. Say so when the two differ.
        bill_accrued_c = int(jobs["accrued_cents"].fillna(0).astype("int64").sum())
        if bill_accrued_c != kept_c - billable_c:
            accrued = accrued.model_copy(
                update={
                    "note": f"accrued: the bill's accrued amount is"
                    f" {format_money(cents_to_decimal(bill_accrued_c), policy.currency)}"
                    " (its hours rounded, R11, plus its grader tokens); this step values"
                    " the accrued time exactly at the hourly rate"
                }
            )
        steps.append(accrued)
    steps += [
        _total("billable time", billable_c, seconds(billable)),
        _change("hour rounding (R11)", uncapped_c - billable_c, None),
    ]
    if compute_c != uncapped_c:
        steps.append(_change("per-job cap", compute_c - uncapped_c, None))
    grader = _change("grader tokens (R9)", grader_c, None)
    grader_cut_c = int(charges["grader_cut_cents"].sum())
    if grader_cut_c:
        # The charge that reaches the cap is cut compute first, then grader ("Policy").
        grader = grader.model_copy(
            update={
                "note": "grader tokens after the per-job cap: the cap also cut"
                f" {format_money(cents_to_decimal(grader_cut_c), policy.currency)} of grader"
                f" tokens (worth"
                f" {format_money(cents_to_decimal(grader_c + grader_cut_c), policy.currency)})"
                " once the compute was cut to 0"
            }
        )
    steps += [
        _total("compute", compute_c, None),
        _change("data-sharing discount (R12)", -discount_c, None),
        grader,
        _total("total", total_c, None),
    ]
    return tuple(steps)


def _total(name: str, cents: int, seconds: float | None) -> WaterfallStep:
    return WaterfallStep(name=name, kind="total", amount=cents_to_decimal(cents), seconds=seconds)


def _change(name: str, cents: int, seconds: float | None) -> WaterfallStep:
    kind = "decrease" if cents < 0 else "increase"
    return WaterfallStep(name=name, kind=kind, amount=cents_to_decimal(cents), seconds=seconds)


def waterfall_figure(bill: Bill, job_id: str | None = None) -> Figure:
    """``waterfall_steps`` drawn: levels blue, decreases vermillion (hatched), increases green."""
    steps = waterfall_steps(bill, job_id)
    currency = bill.policy.currency
    colours = {
        "total": OKABE_ITO["blue"],
        "decrease": OKABE_ITO["vermillion"],
        "increase": OKABE_ITO["bluish_green"],
    }
    with _style():
        fig = _figure(max(9.0, 1.3 * len(steps)), 5.2)
        ax = fig.add_subplot()
        running = Decimal(0)
        for i, step in enumerate(steps):
            if step.kind == "total":
                bottom, height = Decimal(0), step.amount
                running = step.amount
            else:
                bottom, height = running, step.amount
                running = running + step.amount
            ax.bar(
                i,
                float(height),
                0.62,
                bottom=float(bottom),
                color=colours[step.kind],
                hatch="//" if step.kind == "decrease" else None,
                edgecolor="white",
                label=step.name,
            )
            sign = "+" if step.amount > 0 and step.kind == "increase" else ""
            text = sign + format_money(step.amount, currency) + (" *" if step.note else "")
            if step.seconds is not None:
                text += f"\n{_hours(abs(step.seconds))}"
            top = float(max(bottom, bottom + height))
            ax.annotate(
                text,
                (i, top),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
            )
            if i + 1 < len(steps):
                ax.plot([i + 0.31, i + 0.69], [float(running)] * 2, color=_GREY, linewidth=0.8)
        ax.set_xticks(range(len(steps)), [_wrap(s.name) for s in steps])
        ax.yaxis.set_major_formatter(_money_formatter(currency))
        ax.axhline(0, color=_GREY, linewidth=0.8)
        levels = [float(s.amount) for s in steps if s.kind == "total"]
        ax.set_ylim(min(0.0, *levels), max(1.0, *levels) * 1.2)
        ax.grid(axis="y", color=_LIGHT_GREY, linewidth=0.8)
        ax.set_ylabel(f"amount ({currency}); time valued at the hourly rate")
        notes = [f"* {s.note}" for s in steps if s.note]
        ax.set_xlabel("\n".join(["from wall clock to what is charged", *notes]))
        if job_id is None:
            n_invalid = int((bill.jobs["status"] == "invalid").sum())
            subject = f"All {len(bill.jobs) - n_invalid} valid jobs"
            if n_invalid:
                subject += f" ({n_invalid} invalid, amount unknown, not included)"
        else:
            subject = f"Job {_label(job_id)}"
        ax.set_title(
            f"{subject}: from wall clock to total (policy {_label(bill.policy.name)})", loc="left"
        )
        from matplotlib.patches import Patch

        ax.legend(
            [
                Patch(facecolor=c, hatch="//" if k == "decrease" else None, edgecolor="white")
                for k, c in colours.items()
            ],
            ["level", "decrease", "increase"],
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            borderaxespad=0.0,
        )
    return fig


def _wrap(text: str, width: int = 14) -> str:
    words, lines, current = text.split(), [], ""
    for word in words:
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    lines.append(current)
    return "\n".join(lines)


# --- output -----------------------------------------------------------------------------------


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG or SVG, chosen by the file's suffix.

    A name from a log may hold characters the fonts have no glyph for (fullwidth
    letters, CJK, emoji). In a PNG each such character is written as its
    compatibility form when that is plain ASCII (``ＡＢＣ`` → ``ABC``), else as its
    escape (``日`` → ``\\u65e5``), so that two names never look alike as a row of
    boxes; an SVG keeps every name as text, for the viewer's fonts to draw. Either
    way matplotlib's "Glyph missing" warning is not passed on (``missing_glyphs``
    says which characters were concerned).
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise InputError(
            "a chart is written as .png or .svg",
            path=target,
            hint="name the file chart.png or chart.svg",
        )
    with _style():
        if suffix == ".png":
            with _drawable_text(fig, missing_glyphs(fig)), _quiet_glyphs():
                fig.savefig(target, format="png", dpi=150, metadata={"Software": None})
        else:
            with _quiet_glyphs():
                fig.savefig(target, format="svg", metadata={"Date": None})
    return target


def figure_svg(fig: Figure, *, id_prefix: str = "rftcost") -> str:
    """``fig`` as an inline ``<svg>`` element (no XML prolog), text kept as text.

    Every id in the SVG (and every reference to one) is prefixed with
    ``id_prefix``, so that several figures inlined in one HTML page never share an
    id and each clip path stays its own figure's. A name is kept as it is, even when
    the fonts matplotlib has lack its glyphs: the browser draws the text.
    """
    buffer = io.StringIO()
    with _style(), _quiet_glyphs():
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]

    def prefixed(tag: re.Match[str]) -> str:
        markup = re.sub(r'\bid="([^"]+)"', rf'id="{id_prefix}-\1"', tag.group(0))
        markup = re.sub(r"url\(#([^)]+)\)", rf"url(#{id_prefix}-\1)", markup)
        return re.sub(r'href="#([^"]+)"', rf'href="#{id_prefix}-\1"', markup)

    # In the tags only: a name drawn as text (``ops url(#blue) id="x"``) stays as it is
    # (its < and > are escaped, so no tag is found inside it).
    return re.sub(r"<[^>]*>", prefixed, text)


_GLYPH_WARNING = r"Glyph \d+ \(.*\) missing from font"
"""matplotlib's warning for a character its fonts cannot draw (the text is still drawn)."""
_GLYPH_CODE = re.compile(r"Glyph (\d+) \(")


@contextmanager
def _quiet_glyphs() -> Iterator[None]:
    """matplotlib's "Glyph missing from font" warning is not passed on: it speaks of
    the library's fonts to a person who named a team, and ``save_figure`` has already
    made the PNG's text drawable (an SVG's text is drawn by its viewer)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_GLYPH_WARNING, category=UserWarning)
        yield


def missing_glyphs(fig: Figure) -> frozenset[str]:
    """The characters of ``fig``'s text that its fonts have no glyph for.

    Found by drawing the figure once (matplotlib says which glyphs it lacked), and
    only when some text is not ASCII: every font matplotlib may use draws ASCII.
    """
    if all(text.isascii() for text in _texts(fig)):
        return frozenset()
    with _style(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.canvas.draw()
    missing = set()
    for warning in caught:
        found = _GLYPH_CODE.match(str(warning.message))
        if found and issubclass(warning.category, UserWarning):
            missing.add(chr(int(found.group(1))))
        else:  # any other warning is the caller's, as if not caught
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return frozenset(missing)


def _texts(fig: Figure) -> list[str]:
    """Every text of the figure, fixed tick labels (phase names, periods) included."""
    from matplotlib.text import Text
    from matplotlib.ticker import FixedFormatter

    found = [artist.get_text() for artist in fig.findobj(Text)]
    for axis in _axes(fig):
        formatter = axis.get_major_formatter()
        if isinstance(formatter, FixedFormatter):
            found += [str(label) for label in formatter.seq]
    return found


def _axes(fig: Figure) -> list[Any]:
    return [axis for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)]


def drawable(text: str, missing: frozenset[str]) -> str:
    """``text`` with every character of ``missing`` (no glyph in the fonts) written as
    its compatibility form when that is plain ASCII (fullwidth ``Ａ`` → ``A``, math
    ``𝔘`` → ``U``), else as its escape (``\\u65e5``, ``\\U0001f680``)."""
    if not missing.intersection(text):
        return text
    return "".join(_drawable_character(c) if c in missing else c for c in text)


def _drawable_character(character: str) -> str:
    plain = unicodedata.normalize("NFKC", character)
    if plain.isascii() and plain.isprintable() and plain.strip():
        return plain
    code = ord(character)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


@contextmanager
def _drawable_text(fig: Figure, missing: frozenset[str]) -> Iterator[None]:
    """Every text of ``fig`` made drawable (``drawable``) while it is saved, then put
    back: the figure stays the caller's, with its names as they were."""
    from matplotlib.text import Text
    from matplotlib.ticker import FixedFormatter

    if not missing:
        yield
        return
    texts = [(artist, artist.get_text()) for artist in fig.findobj(Text)]
    # Tick labels are made again from their formatter at each draw: change it too.
    formatters = [
        (formatter, formatter.seq)
        for formatter in (axis.get_major_formatter() for axis in _axes(fig))
        if isinstance(formatter, FixedFormatter)
    ]
    try:
        for artist, text in texts:
            artist.set_text(drawable(text, missing))
        for formatter, labels in formatters:
            formatter.seq = [drawable(str(label), missing) for label in labels]
        yield
    finally:
        for artist, text in texts:
            artist.set_text(text)
        for formatter, labels in formatters:
            formatter.seq = labels
