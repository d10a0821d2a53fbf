"""Column contracts of the frames every later stage consumes: ``Bill`` and ``Timeline``.

Each frame's columns are declared once here: name, dtype, unit, whether a value may
be missing, and what it means. ``check_frame(frame, contract)`` raises a
``ContractError`` naming the frame, the column and what is wrong; the tests check
every frame of a bill against its contract, in memory and in buckets.

Units: ``ns`` (integer nanoseconds since the epoch, or a duration), ``cents``
(integer minor units of the policy's currency), ``hour units`` (``10^-hours_decimals``
hours), ``rate units`` (``10^-rate_places`` of the currency per hour, see
``rftcost.rules``), ``pico per token`` (``10^-12`` of the currency per token),
``tokens``, ``code`` (the job's row in ``Timeline.jobs``), ``places`` (a count of
decimals). Names (ids, phases, models) are pandas ``string``: one dtype per column
across frames.

A column's ``dtype`` is the one the kernel produces; ``also`` lists dtypes accepted
besides it, each with its reason (a rate with many digits held as Python integers;
time-line frames whose names ``timeline.py`` still gives as ``str``/``object``).
"""

from __future__ import annotations

import pandas as pd
from pydantic import BaseModel, ConfigDict

__all__ = [
    "BILL_CHARGES",
    "BILL_CONTRACTS",
    "BILL_EXCLUDED",
    "BILL_GRADER_LINES",
    "BILL_JOBS",
    "BILL_PROBLEMS",
    "TIMELINE_ACCRUED",
    "TIMELINE_CHARGES",
    "TIMELINE_CHECKPOINTS",
    "TIMELINE_CONTRACTS",
    "TIMELINE_EXCLUDED",
    "TIMELINE_INTERVALS",
    "TIMELINE_JOBS",
    "TIMELINE_LOSSES",
    "TIMELINE_PIECES",
    "TIMELINE_PROBLEMS",
    "TIMELINE_USAGE",
    "Column",
    "ContractError",
    "FrameContract",
    "check_frame",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Column(BaseModel):
    """One column of a frame: what it holds and in which unit."""

    model_config = _FROZEN

    name: str
    """The column's name."""
    dtype: str
    """The pandas dtype the kernel produces (``str(series.dtype)``)."""
    unit: str = ""
    """The unit of its values (``ns``, ``cents``, ``hour units``…); empty for names and flags."""
    nullable: bool = False
    """Whether a value may be missing (NA)."""
    description: str
    """What the column means."""
    also: tuple[str, ...] = ()
    """Other dtypes accepted, for the reason the contract gives."""


class FrameContract(BaseModel):
    """The columns of one frame, declared once."""

    model_config = _FROZEN

    name: str
    """Where the frame lives (``Bill.charges``)."""
    description: str
    """One row per what."""
    columns: tuple[Column, ...]
    """Its columns, in order."""
    index: str | None = None
    """The name of a meaningful index (``job`` for ``Timeline.jobs``); ``None``: a range."""

    def column(self, name: str) -> Column:
        """The column called ``name``; ``KeyError`` if the contract has none."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        """The columns' names, in order."""
        return tuple(c.name for c in self.columns)


class ContractError(ValueError):
    """A frame breaks its contract: which frame, which column, what is wrong."""

    def __init__(self, frame: str, column: str | None, problem: str) -> None:
        self.frame = frame
        """The contract's frame name (``Bill.charges``)."""
        self.column = column
        """The column at fault (``None``: the frame as a whole)."""
        self.problem = problem
        """What is wrong."""
        where = f"{frame}.{column}" if column else frame
        super().__init__(f"{where}: {problem}")


def check_frame(frame: pd.DataFrame, contract: FrameContract) -> None:
    """Raise ``ContractError`` unless ``frame`` has exactly the contract's columns, dtypes and NAs.

    Column order is not checked (a frame may be built in any order); a missing or an
    undeclared column, a dtype outside ``dtype``/``also``, an NA in a non-nullable
    column, or a wrong index name is an error.
    """
    declared = set(contract.names)
    missing = [name for name in contract.names if name not in frame.columns]
    if missing:
        raise ContractError(contract.name, missing[0], "missing column")
    extra = [str(name) for name in frame.columns if name not in declared]
    if extra:
        raise ContractError(contract.name, extra[0], "column not in the contract")
    if contract.index is not None and frame.index.name != contract.index:
        raise ContractError(
            contract.name, None, f"index is {frame.index.name!r}, expected {contract.index!r}"
        )
    for column in contract.columns:
        values = frame[column.name]
        dtype = str(values.dtype)
        if dtype != column.dtype and dtype not in column.also:
            allowed = " or ".join((column.dtype, *column.also))
            raise ContractError(contract.name, column.name, f"dtype {dtype}, expected {allowed}")
        if not column.nullable and bool(values.isna().any()):
            count = int(values.isna().sum())
            raise ContractError(contract.name, column.name, f"{count} missing value(s)")


def _col(
    name: str,
    dtype: str,
    unit: str,
    description: str,
    *,
    nullable: bool = False,
    also: tuple[str, ...] = (),
) -> Column:
    return Column(
        name=name, dtype=dtype, unit=unit, description=description, nullable=nullable, also=also
    )


_BIG_INT = ("object",)
"""An integer column that holds Python ints (object) when a value passes 64 bits."""
_LEGACY_NAME = ("str", "object")
"""A name column that ``timeline.py`` still gives as ``str`` (or ``object`` when empty)."""

_JOB_CODE = _col("job", "int64", "code", "The job's code: its row in Timeline.jobs.")
_JOB_ID = _col("job_id", "string", "", "The job's id, as the log gives it.")


BILL_JOBS = FrameContract(
    name="Bill.jobs",
    description="One row per job, sorted by job_id; amounts NA for an invalid job.",
    columns=(
        _col(
            "job",
            "int64",
            "code",
            "The job's code (its row in Timeline.jobs); negative for a job seen only"
            " in rejected records.",
        ),
        _JOB_ID,
        _col("team", "string", "", "Who pays; NA: unallocated.", nullable=True),
        _col("project", "string", "", "The job's project.", nullable=True),
        _col(
            "model",
            "string",
            "",
            "Base model billed (the policy's default when the log names none); NA for a"
            " job seen only in rejected records.",
            nullable=True,
        ),
        _col("status", "string", "", "succeeded, failed, cancelled, paused, running or invalid."),
        _col("data_sharing", "bool", "", "Created with data sharing (R12)."),
        _col("wall_ns", "int64", "ns", "First to last event."),
        _col("billable_ns", "Int64", "ns", "Charged billable time, exact (R1).", nullable=True),
        _col(
            "lost_ns",
            "Int64",
            "ns",
            "Billable time lost to failures, rollbacks (R5, R6).",
            nullable=True,
        ),
        _col(
            "unbilled_ns",
            "Int64",
            "ns",
            "Billable time after the last billing event (R8).",
            nullable=True,
        ),
        _col(
            "hour_units", "Int64", "hour units", "Sum of the charges' hours (R11).", nullable=True
        ),
        _col("compute_cents", "Int64", "cents", "Sum of compute amounts.", nullable=True),
        _col("discount_cents", "Int64", "cents", "Sum of discounts (R12).", nullable=True),
        _col("grader_cents", "Int64", "cents", "Sum of grader amounts (R13).", nullable=True),
        _col("total_cents", "Int64", "cents", "compute − discount + grader.", nullable=True),
        _col("accrued_cents", "Int64", "cents", "Provisional amount (R8).", nullable=True),
        _col("n_charges", "int64", "", "Charges of the job (0 when invalid)."),
    ),
)

BILL_CHARGES = FrameContract(
    name="Bill.charges",
    description="One row per charge of a valid job (a billing event, R4), in time order per job.",
    columns=(
        _JOB_CODE,
        _col("charge", "int64", "", "The charge's number in its job, from 0."),
        _col("at", "int64", "ns", "Time of the billing event."),
        _col("event", "category", "", "succeeded, paused, cancelled or failed (R4)."),
        _col("segment_start", "int64", "ns", "Start of the work the charge covers."),
        _col("billable_ns", "int64", "ns", "Exact billable time of the segment (R1)."),
        _col("lost_ns", "int64", "ns", "Billable time lost in the segment (R5, R6)."),
        _col("hour_units", "int64", "hour units", "Hours charged, rounded (R11)."),
        _col("compute_cents", "int64", "cents", "Hours × hourly rate, after any cap (R11)."),
        _col("discount_cents", "int64", "cents", "Data-sharing discount, positive (R12)."),
        _col("grader_cents", "int64", "cents", "Sum of the charge's grader lines (R13)."),
        _col("amount_cents", "int64", "cents", "compute − discount + grader."),
        _col(
            "capped",
            "bool",
            "",
            "The policy's per-job cap cut the charge (its compute, then its grader amount).",
        ),
        _col(
            "compute_cut_cents",
            "int64",
            "cents",
            "What the per-job cap cut from the compute amount (0 unless capped).",
        ),
        _col(
            "grader_cut_cents",
            "int64",
            "cents",
            "What the per-job cap cut from the grader amount once the compute was cut to 0;"
            " the grader lines are cut with it (0 unless capped).",
        ),
        _col(
            "rate_units",
            "int64",
            "rate units",
            "The hourly rate applied (R11), exact in units of 10^-rate_places;"
            " Python ints (object) when a rate passes 2^62 units.",
            also=_BIG_INT,
        ),
        _col("rate_places", "int64", "places", "Decimals of rate_units (rules.rate_places)."),
        _JOB_ID,
    ),
)

BILL_GRADER_LINES = FrameContract(
    name="Bill.grader_lines",
    description="One row per charge and grader model of a valid job (R9, R13);"
    " charge -1: accrued usage after the last billing event (R8).",
    columns=(
        _JOB_CODE,
        _col("charge", "int64", "", "The charge's number in its job; -1: accrued (R8)."),
        _col("grader_model", "string", "", "The grader model as the log names it."),
        _col("input_tokens", "int64", "tokens", "Charged input tokens, cached included."),
        _col("cached_input_tokens", "int64", "tokens", "Charged cached input tokens."),
        _col("output_tokens", "int64", "tokens", "Charged output tokens."),
        _col("lost_input_tokens", "int64", "tokens", "Input tokens used in lost work (R9)."),
        _col("lost_output_tokens", "int64", "tokens", "Output tokens used in lost work (R9)."),
        _col(
            "amount_cents",
            "int64",
            "cents",
            "Charged tokens' amount, rounded once (R13), after any per-job cap.",
        ),
        _col("grader_family", "string", "", "The model's price family (R10)."),
        _col(
            "price_index",
            "Int64",
            "",
            "The price entry applied (its position in the family's list of the policy's"
            " table); the latest when the tokens straddle a price change; NA: no token"
            " was charged.",
            nullable=True,
        ),
        _col(
            "price_entries",
            "int64",
            "",
            "How many price entries the charged tokens were priced at (R10); 0: none charged.",
        ),
        _col(
            "price_effective_ns",
            "Int64",
            "ns",
            "effective_from of the entry price_index.",
            nullable=True,
        ),
        _col("price_source", "string", "", "Source of the entry price_index.", nullable=True),
        _JOB_ID,
    ),
)

BILL_EXCLUDED = FrameContract(
    name="Bill.excluded",
    description="One row per job and non-billable phase (R2).",
    columns=(
        _JOB_ID,
        _col("phase", "string", "", "The non-billable phase."),
        _col("seconds", "float64", "seconds", "Union of the phase's intervals (for display)."),
    ),
)

BILL_PROBLEMS = FrameContract(
    name="Bill.problems",
    description="One row per reason a job is invalid.",
    columns=(
        _JOB_ID,
        _col("problem", "string", "", "Why the job cannot be billed."),
    ),
)

BILL_CONTRACTS: dict[str, FrameContract] = {
    "jobs": BILL_JOBS,
    "charges": BILL_CHARGES,
    "grader_lines": BILL_GRADER_LINES,
    "excluded": BILL_EXCLUDED,
    "problems": BILL_PROBLEMS,
}
"""``Bill`` attribute → its contract."""


# --- the time line (rftcost.timeline.Timeline) ----------------------------------------------

_SETTINGS = (
    _col("grader_model", "string", "", "Grader model from job_created.", nullable=True),
    _col("grader_type", "string", "", "Grader type from job_created.", nullable=True),
    _col("n_train_examples", "Int64", "", "Training examples.", nullable=True),
    _col("n_valid_examples", "Int64", "", "Validation examples.", nullable=True),
    _col("batch_size", "Int64", "", "Batch size.", nullable=True),
    _col("n_epochs", "Int64", "", "Epochs.", nullable=True),
    _col("compute_multiplier", "Float64", "", "Compute multiplier.", nullable=True),
    _col("eval_interval", "Int64", "", "Steps between validations.", nullable=True),
    _col("eval_samples", "Int64", "", "Samples per validation example.", nullable=True),
    _col("reasoning_effort", "string", "", "Grader reasoning effort.", nullable=True),
)

TIMELINE_JOBS = FrameContract(
    name="Timeline.jobs",
    description="One row per job (index job: its code), sorted by job_id.",
    index="job",
    columns=(
        _col("job_id", "string", "", "The job's id.", also=_LEGACY_NAME),
        _col("first_ns", "int64", "ns", "The job's first event."),
        _col("last_ns", "int64", "ns", "The job's last event."),
        _col("team", "string", "", "Who pays.", nullable=True),
        _col("project", "string", "", "The job's project.", nullable=True),
        _col("model", "string", "", "Base model from job_created.", nullable=True),
        _col("data_sharing", "boolean", "", "Data sharing from job_created (R12).", nullable=True),
        *_SETTINGS,
        _col("status", "string", "", "succeeded, failed, cancelled, paused, running or invalid."),
    ),
)

TIMELINE_INTERVALS = FrameContract(
    name="Timeline.intervals",
    description="One row per phase interval [start, end).",
    columns=(
        _JOB_CODE,
        _col("phase", "string", "", "The phase.", also=_LEGACY_NAME),
        _col("start", "int64", "ns", "Start."),
        _col("end", "int64", "ns", "End."),
        _col("billable", "bool", "", "The phase is billable (R1, R2)."),
        _col("closed_by", "string", "", "What closed the interval.", also=_LEGACY_NAME),
    ),
)

TIMELINE_CHARGES = FrameContract(
    name="Timeline.charges",
    description="One row per billing event (R4) of every job, valid or not.",
    columns=BILL_CHARGES.columns[:7],
)

TIMELINE_ACCRUED = FrameContract(
    name="Timeline.accrued",
    description="One row per job: work after its last billing event (R8).",
    columns=(
        _JOB_CODE,
        _col("billable_ns", "int64", "ns", "Billable time after the last billing event."),
        _col("lost_ns", "int64", "ns", "Of it, lost (R6)."),
    ),
)

TIMELINE_LOSSES = FrameContract(
    name="Timeline.losses",
    description="One row per lost interval (start, end] (R5, R6).",
    columns=(
        _JOB_CODE,
        _col("start", "int64", "ns", "The retained checkpoint (or the segment's start)."),
        _col("end", "int64", "ns", "The failure or rollback."),
        _col("cause", "string", "", "failed or rollback.", also=_LEGACY_NAME),
        _col("at", "int64", "ns", "Time of the event that lost the work."),
        _col("segment", "int64", "", "The segment (charge number) of the loss."),
        _col("checkpoint_step", "Int64", "", "Step of the retained checkpoint.", nullable=True),
        _col("checkpoint_ts", "Int64", "ns", "Time of the retained checkpoint.", nullable=True),
    ),
)

TIMELINE_PIECES = FrameContract(
    name="Timeline.pieces",
    description="Elementary pieces of time between every boundary, per job.",
    columns=(
        _JOB_CODE,
        _col("start", "int64", "ns", "Start."),
        _col("end", "int64", "ns", "End."),
        _col("segment", "int64", "", "The segment (charge number)."),
        _col("billable", "bool", "", "Inside a billable phase (R1)."),
        _col("lost", "bool", "", "Inside a lost interval (R5, R6)."),
    ),
)

TIMELINE_EXCLUDED = FrameContract(
    name="Timeline.excluded",
    description="One row per job and non-billable phase (R2).",
    columns=(
        _JOB_CODE,
        _col("phase", "string", "", "The phase.", also=_LEGACY_NAME),
        _col("ns", "int64", "ns", "Union of the phase's intervals."),
    ),
)

TIMELINE_USAGE = FrameContract(
    name="Timeline.usage",
    description="One row per grader usage event (R9), by job and time.",
    columns=(
        _JOB_CODE,
        _col("ts", "int64", "ns", "Time of the usage."),
        _col("segment", "int64", "", "The segment (charge number) it falls in."),
        _col("grader_model", "category", "", "The grader model.", also=("string", *_LEGACY_NAME)),
        _col("input_tokens", "Int64", "tokens", "Input tokens, cached included.", nullable=True),
        _col("cached_input_tokens", "Int64", "tokens", "Cached input tokens.", nullable=True),
        _col("output_tokens", "Int64", "tokens", "Output tokens.", nullable=True),
        _col("lost", "bool", "", "Inside lost work: not charged (R9)."),
    ),
)

TIMELINE_CHECKPOINTS = FrameContract(
    name="Timeline.checkpoints",
    description="One row per checkpoint_saved.",
    columns=(
        _JOB_CODE,
        _col("ts", "int64", "ns", "Time of the checkpoint."),
        _col("step", "Int64", "", "Its step.", nullable=True),
    ),
)

TIMELINE_PROBLEMS = FrameContract(
    name="Timeline.problems",
    description="One row per reason a job's time cannot be reconstructed.",
    columns=(
        _col(
            "job",
            "int64",
            "code",
            "The job's code (float64 when timeline.py builds it empty).",
            also=("float64",),
        ),
        _col("problem", "string", "", "The reason.", also=_LEGACY_NAME),
    ),
)

TIMELINE_CONTRACTS: dict[str, FrameContract] = {
    "jobs": TIMELINE_JOBS,
    "intervals": TIMELINE_INTERVALS,
    "charges": TIMELINE_CHARGES,
    "accrued": TIMELINE_ACCRUED,
    "losses": TIMELINE_LOSSES,
    "pieces": TIMELINE_PIECES,
    "excluded": TIMELINE_EXCLUDED,
    "usage": TIMELINE_USAGE,
    "checkpoints": TIMELINE_CHECKPOINTS,
    "problems": TIMELINE_PROBLEMS,
}
"""``Timeline`` attribute → its contract."""
