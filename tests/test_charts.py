"""Charts rendered and inspected: their bars, lines, labels and colours, not only their files."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from builders import JobLog
from matplotlib import dates as mdates
from matplotlib.collections import LineCollection
from matplotlib.container import BarContainer
from matplotlib.image import imread
from test_spend import at, mixed_logs
from typer.testing import CliRunner

import rftcost
from rftcost.charts import (
    OKABE_ITO,
    STATUS_COLOURS,
    cumulative_figure,
    figure_svg,
    format_money,
    save_figure,
    spend_figure,
    team_colours,
    timeline_figure,
    waterfall_figure,
    waterfall_steps,
)
from rftcost.cli import app
from rftcost.errors import InputError
from rftcost.explain import explain
from rftcost.spend import Budget, Budgets, spend

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
runner = CliRunner()


@pytest.fixture(scope="module")
def bill() -> rftcost.Bill:
    return rftcost.bill(mixed_logs())


@pytest.fixture(scope="module")
def budgets() -> Budgets:
    return Budgets(
        items=(
            Budget(team="search", period="2025-06", amount=Decimal("300")),
            Budget(team="ads", period="2025-06", amount=Decimal("1000")),
            Budget(team="search", period="2025-07", amount=Decimal("500")),
        )
    )


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


def rendered(fig: object) -> None:
    fig.canvas.draw()  # type: ignore[attr-defined]


def tick_texts(labels: list[object]) -> list[str]:
    return [label.get_text() for label in labels]  # type: ignore[attr-defined]


# --- palette and formatting -------------------------------------------------------------------


def test_team_colours_are_okabe_ito_distinct_and_unallocated_is_grey() -> None:
    teams = [f"team-{i}" for i in range(9)] + ["unallocated"]
    colours = team_colours(teams)
    okabe = set(OKABE_ITO.values())
    first_seven = [colours[t][0] for t in teams[:7]]
    assert len(set(first_seven)) == 7 and set(first_seven) <= okabe
    assert len(set(colours.values())) == len(teams)  # colour + hatch pairs never repeat
    assert colours["unallocated"][0] not in okabe
    assert len(set(STATUS_COLOURS.values())) == len(STATUS_COLOURS)


def test_money_format() -> None:
    assert format_money(Decimal("1234.5"), "USD") == "$1,234.50"
    assert format_money(Decimal("-0.05"), "USD") == "−$0.05"
    assert format_money(Decimal("10"), "CHF", places=0) == "10 CHF"
    # Fewer places than the amount holds: half up (R15), not the decimal context's half-even.
    assert format_money(Decimal("102.5"), "USD", places=0) == "$103"
    assert format_money(Decimal("0.0025"), "USD", places=3) == "$0.003"
    assert format_money(Decimal("-0.004"), "USD") == "$0.00"


# --- spend --------------------------------------------------------------------------------------


def test_spend_chart_bars_per_team_budget_lines_and_labels(
    bill: rftcost.Bill, budgets: Budgets
) -> None:
    report = spend(bill, by="team", period="month", budgets=budgets)
    fig = spend_figure(report)
    rendered(fig)
    ax = fig.axes[0]
    periods = report.period_range()
    assert periods == ["2025-06", "2025-07"]
    assert tick_texts(ax.get_xticklabels()) == periods
    assert ax.get_title(loc="left") == "RFT spend per team and month"
    # mixed_logs holds an invalid job: said under the axis label, on the picture.
    assert ax.get_xlabel().split("\n") == [
        "month of the billing event (UTC)",
        "not drawn, amount unknown (not $0): 1 invalid job(s); see rftcost validate",
    ]
    assert ax.get_ylabel() == "spend (USD)"
    assert all(t.startswith("$") for t in tick_texts(ax.get_yticklabels()) if t)

    containers = {c.get_label(): c for c in ax.containers if isinstance(c, BarContainer)}
    teams = report.groups()
    assert teams == ["ads", "search", "vision", "unallocated"]
    assert set(containers) == {
        f"{t}: {part}" for t in teams for part in ("compute after discount", "grader tokens")
    }
    table = report.table
    for team in teams:
        net = containers[f"{team}: compute after discount"]
        grader = containers[f"{team}: grader tokens"]
        rows = table[table["group"] == team]
        assert len(net.patches) == len(rows)
        expected_net = sorted(((rows["compute_cents"] - rows["discount_cents"]) / 100).tolist())
        assert sorted(p.get_height() for p in net.patches) == pytest.approx(expected_net)
        assert sorted(p.get_height() for p in grader.patches) == pytest.approx(
            sorted((rows["grader_cents"] / 100).tolist())
        )
        # Grader tokens sit on top of compute.
        for low, high in zip(net.patches, grader.patches, strict=True):
            assert high.get_y() == pytest.approx(low.get_height())
        # One colour per team, the same for both parts.
        assert len({tuple(p.get_facecolor()[:3]) for p in net.patches}) == 1
    face = {
        team: containers[f"{team}: compute after discount"].patches[0].get_facecolor()[:3]
        for team in teams
    }
    assert len(set(face.values())) == len(teams)

    lines = [
        c
        for c in ax.collections
        if isinstance(c, LineCollection) and c.get_label().endswith("budget")
    ]
    levels = sorted(seg[0][1] for line in lines for seg in line.get_segments())
    assert levels == [300.0, 500.0, 1000.0]
    search_budget = next(line for line in lines if line.get_label() == "search: budget")
    for seg in search_budget.get_segments():
        # The budget line spans its bar and stays inside it.
        patches = containers["search: compute after discount"].patches
        bars = [
            p
            for p in patches
            if p.get_x() <= seg[0][0] + 1e-9 and seg[1][0] <= p.get_x() + p.get_width() + 1e-9
        ]
        assert len(bars) == 1

    # Totals written on the bars, from cents, to the cent (R15: a $0.48 team is not "$0").
    texts = {t.get_text() for t in ax.texts}
    assert format_money(Decimal(int(table["total_cents"].max())).scaleb(-2), "USD") in texts
    to_the_cent = re.compile(r"\$[\d,]+\.\d\d(\n\+ unknown)?")
    assert all(to_the_cent.fullmatch(t) for t in texts if t.startswith("$"))

    legend = ax.get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[: len(teams)] == teams and "budget" in labels
    # The legend sits right of the plot: it covers no data.
    renderer = fig.canvas.get_renderer()
    assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1
    save_figure(fig, artifact("spend.png"))


def _six_teams_of_one_dollar(tmp_path: Path) -> Path:
    """Six teams, three months, $1.00 each (36 s), and an invalid job of team2 in June."""
    records = []
    for month in (5, 6, 7):
        for team in range(6):
            job, day = f"ftjob-{month}-{team}", f"2025-0{month}-03T10:00"
            records += [
                {"job_id": job, "ts": f"{day}:00Z", "event": "job_created", "team": f"team{team}"},
                {"job_id": job, "ts": f"{day}:10Z", "event": "phase_start", "phase": "rollout"},
                {"job_id": job, "ts": f"{day}:46Z", "event": "phase_end", "phase": "rollout"},
                {"job_id": job, "ts": f"{day}:46Z", "event": "succeeded"},
            ]
    records += [
        {"job_id": "ftjob-bad", "ts": "2025-06-04T10:00:00Z", "event": "job_created",
         "team": "team2"},
        {"job_id": "ftjob-bad", "ts": "2025-06-04T10:00:10Z", "event": "phase_end",
         "phase": "rollout"},
    ]  # fmt: skip
    path = tmp_path / "six.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize("logs", ["sample", "six teams"])
def test_spend_chart_totals_never_overlap(tmp_path: Path, logs: str) -> None:
    """Five teams a month on the sample logs: totals to the cent are wider than their bars,
    and were drawn over their neighbours' ($724.6… under $733.56); they stand upright, also
    where a total's second line is "+ unknown". The axis ticks share their decimals."""
    source = (
        Path(__file__).resolve().parents[1] / "sample_logs"
        if logs == "sample"
        else _six_teams_of_one_dollar(tmp_path)
    )
    fig = spend_figure(spend(rftcost.bill(source), by="team", period="month"))
    rendered(fig)
    ticks = [t for t in tick_texts(fig.axes[0].get_yticklabels()) if t]
    assert len({len(t.rpartition(".")[2]) if "." in t else 0 for t in ticks}) == 1, ticks
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) > 10
    for i, box in enumerate(boxes):
        assert not any(box.overlaps(other) for other in boxes[i + 1 :]), ax.texts[i].get_text()
        assert box.y1 <= ax.get_window_extent(renderer).y1  # inside the plot


def test_spend_chart_without_charges() -> None:
    log = JobLog("ftjob-running").created(team="a").add("phase_start", phase="rollout").at(hours=1)
    log.add("step_completed", step=1)
    fig = spend_figure(spend(rftcost.bill(log.frame())))
    rendered(fig)
    assert "no charges" in " ".join(t.get_text() for t in fig.axes[0].texts)


# --- cumulative ----------------------------------------------------------------------------------


def test_cumulative_chart_lines_end_at_each_teams_spend(
    bill: rftcost.Bill, budgets: Budgets
) -> None:
    fig = cumulative_figure(bill, month="2025-06", budgets=budgets)
    rendered(fig)
    ax = fig.axes[0]
    assert ax.get_title(loc="left") == "Cumulative RFT spend per team, June 2025"
    assert ax.get_ylabel() == "cumulative spend (USD)"
    # mixed_logs holds an invalid job: said under the axis label, on the picture.
    assert ax.get_xlabel().split("\n") == [
        "day of the billing event (UTC)",
        "not drawn, amount unknown (not $0): 1 invalid job(s); see rftcost validate",
    ]
    lines = {line.get_label(): line for line in ax.get_lines()}
    june = spend(bill, by="team", period="month", window="2025-06-01..2025-07-01").table
    for row in june.itertuples():
        line = lines[row.group]
        assert line.get_ydata()[-1] == pytest.approx(row.total_cents / 100)
        assert np.all(np.diff(line.get_ydata()) >= 0)  # cumulative never falls
        x = line.get_xdata()
        assert x[0] == pytest.approx(mdates.date2num(at("2025-06-01T00:00:00Z")))
        assert x[-1] == pytest.approx(mdates.date2num(at("2025-07-01T00:00:00Z")))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "search budget $300.00" in legend and "ads budget $1,000.00" in legend
    assert lines["search budget"].get_ydata().tolist() == [300.0, 300.0]
    assert lines["ads budget"].get_ydata().tolist() == [1000.0, 1000.0]
    assert "search over budget" in lines  # 403.00 > 300.00
    assert "ads over budget" not in lines
    # search crosses on 30 June (the pause charge of search-2).
    marker = lines["search over budget"]
    assert marker.get_xdata()[0] == pytest.approx(mdates.date2num(at("2025-06-30T00:00:00Z")))
    assert any("search over budget on 30 Jun" in t.get_text() for t in ax.texts)
    # Same colour for a team's line and its budget.
    assert lines["search"].get_color() == lines["search budget"].get_color()
    save_figure(fig, artifact("cumulative.png"))


def test_cumulative_chart_needs_a_month(bill: rftcost.Bill) -> None:
    with pytest.raises(InputError, match="per month"):
        cumulative_figure(bill, month="2025-W23")
    fig = cumulative_figure(bill)  # the latest charge's month
    assert "July 2025" in fig.axes[0].get_title(loc="left")


# --- timeline -----------------------------------------------------------------------------------


def timeline_job() -> rftcost.Bill:
    log = JobLog("ftjob-gantt", clock=at("2025-06-02T08:00:00Z")).created(team="search")
    log.phase("queued", minutes=30)
    log.add("phase_start", phase="rollout").at(minutes=30).add("phase_start", phase="grading")
    log.at(minutes=30).add("checkpoint_saved", step=5).add("phase_end", phase="grading")
    log.at(minutes=20).add("rollback", step=5).at(minutes=40).add("paused")
    log.at(hours=1).add("resumed").add("phase_start", phase="rollout").at(minutes=45)
    log.add("checkpoint_saved", step=9).at(minutes=15).add("failed")
    return rftcost.bill(log.frame())


def bars_of(ax: object, status: str) -> list[tuple[float, float, float]]:
    for container in ax.containers:  # type: ignore[attr-defined]
        if container.get_label() == status:
            return [
                (round(p.get_y() + p.get_height() / 2), p.get_x(), p.get_x() + p.get_width())
                for p in container.patches
            ]
    return []


def test_timeline_segments_match_the_jobs_intervals() -> None:
    bill = timeline_job()
    explanation = explain(bill, "ftjob-gantt")
    fig = timeline_figure(explanation)
    rendered(fig)
    ax = fig.axes[0]
    rows = tick_texts(ax.get_yticklabels())
    assert rows == ["all time", "queued", "rollout", "grading", "paused", "checkpoints"]
    assert ax.get_xlabel() == "time (UTC)"

    def num(moment: object) -> float:
        return float(mdates.date2num(moment))

    # Top row: the wall clock, stretch by stretch (consecutive equal statuses merged).
    expected = []
    for s in explanation.stretches:
        if expected and expected[-1][0] == s.status and expected[-1][2] == num(s.start):
            expected[-1] = (s.status, expected[-1][1], num(s.end))
        else:
            expected.append((s.status, num(s.start), num(s.end)))
    drawn = sorted(
        (status, x0, x1) for status in STATUS_COLOURS for y, x0, x1 in bars_of(ax, status) if y == 0
    )
    assert [d[0] for d in sorted(drawn, key=lambda d: d[1])] == [e[0] for e in expected]
    for (status, x0, x1), (want, w0, w1) in zip(
        sorted(drawn, key=lambda d: d[1]), expected, strict=True
    ):
        assert (
            status == want
            and x0 == pytest.approx(w0, abs=1e-9)
            and x1 == pytest.approx(w1, abs=1e-9)
        )

    # Phase rows: every phase interval covered exactly by its bars.
    for phase, start, end, billable in explanation.phase_intervals:
        y = rows.index(phase)
        pieces = sorted(
            (x0, x1, status) for status in STATUS_COLOURS for row, x0, x1 in bars_of(ax, status)
            if row == y and x0 >= num(start) - 1e-9 and x1 <= num(end) + 1e-9
        )  # fmt: skip
        assert pieces[0][0] == pytest.approx(num(start), abs=1e-9)
        assert pieces[-1][1] == pytest.approx(num(end), abs=1e-9)
        assert sum(x1 - x0 for x0, x1, _ in pieces) == pytest.approx(
            num(end) - num(start), abs=1e-9
        )
        if not billable:
            assert {status for _, _, status in pieces} == {"excluded"}

    # Lost time: the rollback (20 min after checkpoint 5) and the failure (15 min after step 9).
    lost = sorted((x0, x1) for y, x0, x1 in bars_of(ax, "lost") if y == 0)
    assert [(round((x1 - x0) * 24 * 60)) for x0, x1 in lost] == [20, 15]
    assert lost[0][0] == pytest.approx(num(explanation.losses[0].start), abs=1e-9)
    lost_seconds = sum(x1 - x0 for x0, x1 in lost) * 86400
    assert lost_seconds == pytest.approx(explanation.job.lost_seconds, abs=1e-3)
    billed = sum(x1 - x0 for y, x0, x1 in bars_of(ax, "billed") if y == 0) * 86400
    assert billed == pytest.approx(explanation.job.billable_seconds, abs=1e-3)
    # Colours: billed blue, lost vermillion (and hatched), excluded grey.
    containers = {c.get_label(): c for c in ax.containers}
    assert containers["lost"].patches[0].get_hatch() == "///"
    from matplotlib.colors import to_hex

    assert (
        to_hex(containers["billed"].patches[0].get_facecolor()) == STATUS_COLOURS["billed"].lower()
    )
    assert to_hex(containers["lost"].patches[0].get_facecolor()) == STATUS_COLOURS["lost"].lower()

    # Billing events as vertical lines with their charge written on; checkpoints as markers.
    events = [line for line in ax.get_lines() if line.get_label() == "billing event"]
    assert [line.get_xdata()[0] for line in events] == pytest.approx(
        [num(a) for a, _ in explanation.billing_events]
    )
    texts = [t.get_text() for t in ax.texts]
    charges = explanation.job.charges
    assert (
        f"1. paused\n{charges[0].billed_hours} h · {format_money(charges[0].amount, 'USD')}"
        in texts
    )
    assert (
        f"2. failed\n{charges[1].billed_hours} h · {format_money(charges[1].amount, 'USD')}"
        in texts
    )
    marks = next(line for line in ax.get_lines() if line.get_label() == "checkpoint")
    assert marks.get_xdata().tolist() == pytest.approx([num(a) for a, _ in explanation.checkpoints])
    assert {"5", "9"} <= set(texts)
    title = ax.get_title(loc="left")
    assert (
        "ftjob-gantt" in title
        and "search" in title
        and format_money(explanation.job.total_amount, "USD") in title
    )
    legend = fig.legends[0]
    assert "lost work (not charged, R5/R6)" in [t.get_text() for t in legend.get_texts()]
    save_figure(fig, artifact("timeline.png"))
    save_figure(fig, artifact("timeline.svg"))


def test_timeline_of_an_invalid_job_says_amount_unknown(bill: rftcost.Bill) -> None:
    fig = timeline_figure(explain(bill, "ftjob-broken"))
    rendered(fig)
    assert "INVALID: amount unknown" in fig.axes[0].get_title(loc="left")


def test_timeline_of_an_invalid_job_shows_a_control_character_visibly(tmp_path: Path) -> None:
    """An unknown model with a NUL, quoted by the job's problem: written ``\\u0000`` in the
    title, never a NUL in the SVG's text (as in every other output)."""
    import pandas as pd

    path = tmp_path / "log.jsonl"
    log = JobLog("ftjob-n").created(model="o4-mini-2025-04-16\x00").phase("rollout", hours=1)
    pd.concat([log.add("succeeded").frame()]).to_json(path, orient="records", lines=True)
    fig = timeline_figure(explain(rftcost.bill(path), "ftjob-n"))
    title = fig.axes[0].get_title(loc="left")
    assert "INVALID: amount unknown" in title and "o4-mini-2025-04-16\\u0000" in title
    assert "\x00" not in figure_svg(fig)


# --- waterfall ---------------------------------------------------------------------------


def test_waterfall_steps_add_up_for_every_job_and_the_bill(bill: rftcost.Bill) -> None:
    for job_id in [j for j in bill.job_ids() if j != "ftjob-broken"]:
        steps = waterfall_steps(bill, job_id)
        job = bill.job(job_id)
        assert steps[0].name == "wall clock"
        level = Decimal(0)
        for step in steps:
            if step.kind == "total":
                assert level == step.amount or step.name == "wall clock", (job_id, step)
                level = step.amount
            else:
                level += step.amount
        levels = {s.name: s.amount for s in steps if s.kind == "total"}
        assert levels["compute"] == job.compute_amount
        assert levels["total"] == job.total_amount
        changes = {s.name: s.amount for s in steps if s.kind != "total"}
        assert changes["data-sharing discount (R12)"] == -job.discount_amount
        assert changes["grader tokens (R9)"] == job.grader_amount
        assert steps[0].seconds == job.wall_seconds
    whole = waterfall_steps(bill)
    assert whole[-1].amount == bill.totals().total_amount
    assert [s.name for s in whole] == [
        "wall clock", "excluded phases and idle time", "lost work (R5, R6)", "billable time",
        "hour rounding (R11)", "compute", "data-sharing discount (R12)", "grader tokens (R9)",
        "total",
    ]  # fmt: skip


def test_waterfall_of_a_failed_job_shows_its_lost_work() -> None:
    bill = timeline_job()
    steps = {s.name: s for s in waterfall_steps(bill, "ftjob-gantt")}
    lost = steps["lost work (R5, R6)"]
    assert lost.seconds == 35 * 60 and lost.amount == Decimal("-58.33")  # 35 min at $100/h
    assert steps["excluded phases and idle time"].seconds == 90 * 60  # queued 30 min + paused 1 h
    with pytest.raises(KeyError):
        waterfall_steps(bill, "ftjob-nope")


def test_waterfall_shows_a_cap_when_the_policy_caps_jobs() -> None:
    log = JobLog("ftjob-long").created(team="a").phase("rollout", hours=51).add("succeeded")
    bill = rftcost.bill(log.frame(), policy="azure-rft")
    steps = {s.name: s for s in waterfall_steps(bill)}
    assert steps["per-job cap"].amount == Decimal("-100.00")
    assert steps["total"].amount == Decimal("5000.00")


def test_waterfall_chart_bars_and_labels(bill: rftcost.Bill) -> None:
    steps = waterfall_steps(bill)
    fig = waterfall_figure(bill)
    rendered(fig)
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [c.get_label() for c in bars] == [s.name for s in steps]
    for container, step in zip(bars, steps, strict=True):
        patch = container.patches[0]
        assert patch.get_height() == pytest.approx(float(step.amount))
        if step.kind == "total":
            assert patch.get_y() == 0
    texts = [t.get_text() for t in ax.texts]
    assert any(t.startswith(format_money(bill.totals().total_amount, "USD")) for t in texts)
    assert ax.get_ylabel().startswith("amount (USD)")
    assert "All 5 valid jobs (1 invalid" in ax.get_title(loc="left")
    assert tick_texts(ax.get_xticklabels())[0] == "wall clock"
    save_figure(fig, artifact("waterfall.png"))


# --- files ---------------------------------------------------------------------------------------


def test_save_png_and_svg(tmp_path: Path, bill: rftcost.Bill) -> None:
    fig = waterfall_figure(bill, "ftjob-search-1")
    png = save_figure(fig, tmp_path / "w.png")
    pixels = imread(png)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 600
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 20  # not blank
    svg = save_figure(fig, tmp_path / "w.SVG").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "wall clock" in svg  # text kept as text
    inline = figure_svg(fig)
    assert inline.startswith("<svg") and "<?xml" not in inline
    # Ids are made the figure's own in the tags, never in text drawn as text (a team named
    # like markup was shown as 'ops url(#fig-…-blue) id="fig-…-x"').
    fig.axes[0].set_title('ops url(#blue) id="x"')
    inline = figure_svg(fig, id_prefix="p")
    assert 'ops url(#blue) id="x"' in inline.replace("&#34;", '"').replace("&quot;", '"')
    assert 'clip-path="url(#p-' in inline
    with pytest.raises(InputError, match=r"\.png or \.svg"):
        save_figure(fig, tmp_path / "w.pdf")


# --- command line ---------------------------------------------------------------------------------


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    mixed_logs().to_json(path, orient="records", lines=True)
    return path


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["spend", "--by", "project", "--period", "week"], "spend.svg"),
        (["cumulative", "--month", "2025-06"], "cumulative.png"),
        (["timeline", "--job", "ftjob-vision"], "timeline.png"),
        (["waterfall"], "waterfall.svg"),
        (["waterfall", "--job", "ftjob-ads"], "waterfall.png"),
    ],
)
def test_cli_chart_commands(log_file: Path, tmp_path: Path, args: list[str], name: str) -> None:
    out = tmp_path / name
    result = runner.invoke(app, ["chart", args[0], str(log_file), "-o", str(out), *args[1:]])
    assert result.exit_code == 0, result.output
    if name.endswith(".png"):
        assert imread(out).shape[-1] in (3, 4)
    else:
        assert "<svg" in out.read_text()


def test_cli_chart_errors(log_file: Path, tmp_path: Path) -> None:
    unknown = runner.invoke(
        app, ["chart", "timeline", str(log_file), "--job", "nope", "-o", str(tmp_path / "t.png")]
    )
    assert unknown.exit_code == 2 and "not in the logs" in unknown.output
    suffix = runner.invoke(
        app, ["chart", "waterfall", str(log_file), "-o", str(tmp_path / "w.jpg")]
    )
    assert suffix.exit_code == 2 and ".png or .svg" in suffix.output
    assert not (tmp_path / "t.png").exists()


def test_explain_chart_option_draws_the_timeline(log_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "explain.png"
    result = runner.invoke(
        app, ["explain", str(log_file), "--job", "ftjob-search-2", "--chart", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert imread(out).shape[0] > 300


# --- names are plain text (hostile/names/dollar-signs.jsonl) ----------------------------------


HOSTILE = Path(__file__).resolve().parent / "fixtures" / "hostile"  # copies of the shared cases


def _dollar_team_log(tmp_path: Path) -> Path:
    """A team named ``$^$`` (math text for matplotlib), a job ``$x$`` and a project ``\\$``."""
    path = tmp_path / "dollar-signs.jsonl"
    logs = [
        JobLog("$x$").created(team="$^$", project=r"a\$b").phase("rollout", hours=1),
        JobLog("ftjob-m").created(team="_hidden", project="$").phase("rollout", hours=2),
    ]
    frames = [log.add("succeeded").frame() for log in logs]
    import pandas as pd

    pd.concat(frames).to_json(path, orient="records", lines=True)
    return path


def _texts(fig: Any) -> list[Any]:
    from matplotlib.text import Text

    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text()]


def test_names_are_drawn_as_plain_text_not_math(tmp_path: Path) -> None:
    log = _dollar_team_log(tmp_path)
    result = rftcost.bill(log)
    figures = {
        "spend": spend_figure(spend(result, by="team", period="month")),
        "cumulative": cumulative_figure(result),
        "timeline": timeline_figure(explain(result, "$x$")),
        "waterfall": waterfall_figure(result, "$x$"),
    }
    for name, fig in figures.items():
        target = save_figure(fig, artifact(f"dollar-names-{name}.png"))
        image = imread(target)
        assert image.shape[0] > 100 and image.shape[1] > 100, name
        # Not a blank picture: many distinct colours (text, bars).
        assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 20, name
        svg = figure_svg(fig)
        assert "<text" in svg  # text kept as text, escaped, in the report's SVG
    # The legend of the spend chart writes the team's name, dollar signs and all, as
    # three glyphs: math text would have raised (matplotlib's parser) or drawn one "^".
    fig = figures["spend"]
    fig.canvas.draw()
    labels = {t.get_text(): t for t in _texts(fig)}
    assert "$^$" in labels and "_hidden" in labels
    for figure in figures.values():
        assert not any(t.get_parse_math() for t in _texts(figure))
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    from matplotlib.text import Text

    drawn = labels["$^$"].get_window_extent(renderer).width
    plain = Text(0, 0, "$^$", figure=fig, parse_math=False, fontproperties=labels["$^$"]
                 .get_fontproperties()).get_window_extent(renderer).width  # fmt: skip
    caret = Text(0, 0, "^", figure=fig, parse_math=False, fontproperties=labels["$^$"]
                 .get_fontproperties()).get_window_extent(renderer).width  # fmt: skip
    assert drawn == plain and drawn > 2 * caret
    assert "$x$" in " ".join(t.get_text() for t in _texts(figures["timeline"]))


def test_cli_charts_and_report_of_dollar_names(tmp_path: Path) -> None:
    log = HOSTILE / "names" / "dollar-signs.jsonl"
    for args in (
        ["chart", "spend", str(log), "-o", str(tmp_path / "spend.png")],
        ["chart", "cumulative", str(log), "-o", str(tmp_path / "cumulative.png")],
        ["chart", "waterfall", str(log), "-o", str(tmp_path / "waterfall.svg")],
        ["report", str(log), "-o", str(tmp_path / "report.html")],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output, result.exception)
    assert imread(tmp_path / "spend.png").shape[0] > 100
    assert "$^$" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_long_and_multi_line_names_keep_every_chart_laid_out(tmp_path: Path) -> None:
    """A 300-character or multi-line team or job id is cut to one short line in legends and
    titles: the axes keep their size (matplotlib warns, an error here, when they collapse)."""
    import warnings

    job_id = "ftjob-" + "x" * 300
    team = "line one\nline two " + "t" * 300
    log = JobLog(job_id).created(team=team).phase("rollout", hours=1).add("succeeded")
    result = rftcost.bill(log.frame())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figures = [
            spend_figure(spend(result, by="team", period="month")),
            cumulative_figure(result),
            timeline_figure(explain(result, job_id)),
            waterfall_figure(result, job_id),
        ]
        for fig in figures:
            fig.canvas.draw()
    for fig in figures:
        for text in _texts(fig):
            if "t" * 40 in text.get_text() or "x" * 40 in text.get_text():
                assert "…" in text.get_text() and "\n" not in text.get_text()
                assert "x" * 60 not in text.get_text() and "t" * 60 not in text.get_text()


# --- names the fonts cannot draw ----------------------------------------------------------------

UNDRAWABLE = {"ＡＢＣ": "ABC", "日本": "\\u65e5\\u672c", "🚀 rocket": "\\U0001f680 rocket"}
"""Team names with characters DejaVu Sans lacks, and how a PNG draws them."""


def _undrawable_bill() -> rftcost.Bill:
    logs = []
    for i, team in enumerate(UNDRAWABLE):
        log = JobLog(f"ftjob-{i}-{team}").created(team=team, project=team)
        logs.append(log.phase("rollout", hours=1).add("succeeded"))
    import pandas as pd

    return rftcost.bill(pd.concat([log.frame() for log in logs]))


def test_names_without_glyphs_are_drawn_without_a_warning(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    """Fullwidth letters, CJK and emoji in team, job and phase names: every chart is
    written as PNG and SVG, no warning escapes (matplotlib's "Glyph missing from font"
    is not passed on), the PNG draws each name readably and distinctly, the SVG keeps
    it as text, and the figure keeps its names."""
    from rftcost.charts import drawable, missing_glyphs

    result = _undrawable_bill()
    job = "ftjob-1-日本"
    figures = {
        "spend": spend_figure(spend(result, by="team", period="month")),
        "cumulative": cumulative_figure(result),
        "timeline": timeline_figure(explain(result, job)),
        "waterfall": waterfall_figure(result, job),
    }
    for name, fig in figures.items():
        assert {"日", "本"} <= missing_glyphs(fig)  # drawn once: every text is made
        before = [t.get_text() for t in _texts(fig)]
        png = save_figure(fig, tmp_path / f"{name}.png")
        image = imread(png)
        assert image.shape[0] > 100 and len(np.unique(image.reshape(-1, 4), axis=0)) > 20
        svg_file = save_figure(fig, tmp_path / f"{name}.svg").read_text(encoding="utf-8")
        assert "日本" in svg_file and "日本" in figure_svg(fig)  # text stays text
        assert [t.get_text() for t in _texts(fig)] == before  # put back after saving
    assert not recwarn.list, [str(w.message) for w in recwarn.list]
    missing = missing_glyphs(figures["spend"])
    for team, drawn in UNDRAWABLE.items():
        assert drawable(team, missing) == drawn
    assert missing_glyphs(spend_figure(spend(rftcost.bill(mixed_logs()), by="team"))) == set()


def test_tick_labels_without_glyphs_are_drawn_too(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    """Fixed tick labels (phase rows, periods, steps) are made again at each draw from
    their formatter: a PNG draws them escaped as well, and they are put back."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rftcost.charts import missing_glyphs

    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.barh([0, 1], [1, 2])
    ax.set_yticks([0, 1], ["研究", "rollout"])
    assert missing_glyphs(fig) == {"研", "究"}
    save_figure(fig, tmp_path / "ticks.png")
    drawn = [t.get_text() for t in ax.get_yticklabels()]
    assert drawn == ["研究", "rollout"]  # the figure keeps its labels
    assert not recwarn.list, [str(w.message) for w in recwarn.list]


def test_cli_charts_of_names_without_glyphs_write_a_note_not_a_warning(tmp_path: Path) -> None:
    import subprocess
    import sys

    log = tmp_path / "names.jsonl"
    logs = [
        JobLog(f"ftjob-{i}").created(team=team).phase("rollout", hours=1).add("succeeded")
        for i, team in enumerate(UNDRAWABLE)
    ]
    import pandas as pd

    pd.concat([x.frame() for x in logs]).to_json(
        log, orient="records", lines=True, force_ascii=False
    )
    for args, out in (
        (["chart", "spend", str(log), "-o"], "spend.png"),
        (["chart", "cumulative", str(log), "-o"], "cumulative.svg"),
        (["report", str(log), "-o"], "report.html"),
    ):
        done = subprocess.run(
            [sys.executable, "-W", "default", "-m", "rftcost", *args, str(tmp_path / out)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "Warning" not in done.stderr and "Glyph" not in done.stderr, done.stderr
        assert (tmp_path / out).stat().st_size > 1000
        notes = [line for line in done.stderr.splitlines() if line.startswith("note:")]
        if out.endswith(".png"):
            assert notes == [
                f"note: {tmp_path / out}: the chart's fonts have no glyph for 6 character(s)"
                " of its names, drawn as A, B, C, \\U0001f680, \\u65e5, \\u672c"
            ]
        else:
            assert notes == []  # an SVG keeps names as text


def test_a_control_character_in_a_team_is_drawn_visibly_in_the_legend() -> None:
    log = JobLog("j").created(team="te\x1b]8;;x\x07am\u202e").phase("rollout", hours=1)
    fig = spend_figure(spend(rftcost.bill(log.add("succeeded").frame())))
    legend = fig.axes[0].get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    assert "te\\u001b]8;;x\\u0007am\\u202e" in labels, labels


def _invalid_only() -> rftcost.Bill:
    broken = JobLog("ftjob-inv1").created(team="a").add("phase_end", phase="rollout").at(hours=1)
    broken.add("succeeded")
    return rftcost.bill(broken.frame())


def test_charts_of_invalid_jobs_only_say_so_on_the_picture() -> None:
    """What is shared is the image: unknown amounts are said there, not only on stderr; a
    log of no charge is drawn in its own month, not today's; no window, no 'window'."""
    bill = _invalid_only()
    month = (
        f"{datetime.fromtimestamp(int(bill.timeline.jobs['last_ns'].max()) // 10**9, UTC):%B %Y}"
    )
    for fig in (spend_figure(spend(bill)), cumulative_figure(bill)):
        rendered(fig)
        ax = fig.axes[0]
        assert "not drawn, amount unknown (not $0): 1 invalid job(s)" in ax.get_xlabel()
        assert "window" not in " ".join(t.get_text() for t in ax.texts)
    assert ax.get_title(loc="left").endswith(month)


def test_a_crowded_spend_chart_still_marks_a_bar_of_unknown_amount() -> None:
    """Above 24 bars no total is written; a bar whose only job is invalid was then drawn as
    nothing, read as $0. It is marked unknown however many bars there are."""
    logs = [JobLog(f"ftjob-w{week}").created(team="a") for week in range(30)]
    for week, log in enumerate(logs):
        log.at(hours=24 * 7 * week).add("phase_start", phase="rollout").at(hours=1)
        log.add("phase_end", phase="rollout").add("succeeded")
    broken = JobLog("ftjob-inv1").created(team="b").add("phase_end", phase="rollout").at(hours=1)
    broken.add("succeeded")
    frame = pd.concat([log.frame() for log in [*logs, broken]], ignore_index=True)
    fig = spend_figure(spend(rftcost.bill(frame), period="week"))
    rendered(fig)
    written = [text.get_text() for text in fig.axes[0].texts]
    assert "unknown" in written and not any(text.startswith("$") for text in written)


def test_the_waterfall_of_an_invalid_job_is_refused_in_one_line(tmp_path: Path) -> None:
    bill = _invalid_only()
    with pytest.raises(InputError, match="'ftjob-inv1' is invalid: its amount is unknown"):
        waterfall_steps(bill, "ftjob-inv1")
    with pytest.raises(KeyError):
        waterfall_steps(bill, "ftjob-nope")
    log = tmp_path / "log.jsonl"
    _invalid_log_text(log)
    result = CliRunner().invoke(
        app, ["chart", "waterfall", str(log), "-j", "ftjob-inv1", "-o", str(tmp_path / "w.png")]
    )
    # An RftcostError: the command line's entry point prints it as one line, exit 2.
    assert isinstance(result.exception, InputError), result.exception
    # The whole bill's waterfall, no job of known amount: refused too, never 0.00 h and
    # $0.00 as if nothing ran (what it drew).
    with pytest.raises(InputError, match="no job of known amount to draw"):
        waterfall_steps(bill)


def _invalid_log_text(path: Path) -> None:
    path.write_text(
        '{"job_id":"ftjob-inv1","ts":"2025-06-01T00:00:00Z","event":"job_created"}\n'
        '{"job_id":"ftjob-inv1","ts":"2025-06-01T01:00:00Z","event":"phase_end","phase":"rollout"}\n'
        '{"job_id":"ftjob-inv1","ts":"2025-06-01T02:00:00Z","event":"succeeded"}\n'
    )


def test_many_teams_are_drawn_as_the_largest_and_one_bar_of_the_rest() -> None:
    """200 teams side by side are bars no one tells apart and a legend taller than the
    picture: the largest 11 are drawn, the rest as one group that says how many it holds,
    and every cent is still drawn."""
    from rftcost.charts import MAX_GROUPS_DRAWN

    logs = []
    for n in range(30):
        log = JobLog(f"ftjob-{n:03d}").created(team=f"team-{n:03d}")
        log.phase("rollout", minutes=6 * (n + 1)).add("succeeded")
        logs.append(log.frame())
    report = spend(rftcost.bill(pd.concat(logs, ignore_index=True)))
    for fig in (spend_figure(report), cumulative_figure(rftcost.bill(pd.concat(logs)))):
        rendered(fig)
        labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        groups = [label for label in labels if not label.startswith("lighter")]
        assert len(groups) == MAX_GROUPS_DRAWN
        assert groups[-1].startswith("19 other teams")
        drawn = {g.split(":")[0] for g in groups[:-1]}
        assert drawn == {f"team-{n:03d}" for n in range(19, 30)}  # the 11 largest
    heights = sum(p.get_height() for p in spend_figure(report).axes[0].patches)
    assert round(heights, 2) == float(report.totals.total_amount)


def test_cumulative_lines_of_a_repeated_colour_differ_in_style() -> None:
    """Beyond seven teams the colours repeat: the bars tell them apart by a hatch, the
    lines were the same solid line (two teams drawn alike). They differ in style now."""
    logs = []
    for number in range(9):
        log = JobLog(f"ftjob-t{number}").created(team=f"team{number}")
        log.at(hours=24 * (number + 1)).add("phase_start", phase="rollout").at(hours=1)
        logs.append(log.add("phase_end", phase="rollout").add("succeeded"))
    frame = pd.concat([log.frame() for log in logs], ignore_index=True)
    figure = cumulative_figure(rftcost.bill(frame), month="2025-06")
    rendered(figure)
    drawn = {
        line.get_label(): (line.get_color(), line.get_linestyle())
        for line in figure.axes[0].get_lines()
        if str(line.get_label()).startswith("team")
    }
    assert len(set(drawn.values())) == 9
