"""How the audit says things: amounts, times and quantities in words, one template per finding.

Detection (``matching``, ``compute``, ``discount``, ``grader``, ``costs``) decides what
a finding is and with which figures; the sentences an auditor pastes into a ticket
are written here, grouped by finding kind, so that wording changes in one place.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rftcost.audit.model import Evidence, micro_to_decimal
from rftcost.audit.pricing import MICRO, NS_PER_HOUR
from rftcost.money import format_amount

__all__ = [
    "REEXPORT",
    "at",
    "beyond_cap",
    "billed_quantity_text",
    "cell_day_total",
    "cell_invalid",
    "cell_mismatch",
    "cell_price",
    "cell_quantities",
    "cell_rounding",
    "cell_unbilled",
    "cell_unknown_project",
    "clock",
    "count_not_price",
    "day_total_agrees",
    "discount_follows",
    "discount_rounding",
    "duplicate_line",
    "duplicate_unchecked_line",
    "duration_text",
    "earlier_price_billed",
    "exact_time",
    "explained_time",
    "grader_causes",
    "grader_rounding",
    "grader_unexplained",
    "hours_rounding",
    "hours_text",
    "invalid_job",
    "job_rounding",
    "line_arithmetic",
    "lost_tokens_billed",
    "micro_hours_text",
    "missing_discount",
    "money_text",
    "no_grader_line",
    "no_grader_usage",
    "not_charged_yet",
    "orphan_note",
    "overbilled_time",
    "phase_name",
    "price_entry_evidence",
    "price_not_count",
    "price_text",
    "project_map_hint",
    "quantity_note",
    "quantity_text",
    "r11_clause",
    "rate_mismatch",
    "seconds_text",
    "span",
    "token_count_mismatch",
    "token_price_mismatch",
    "tokens_billed_twice",
    "total_mismatch",
    "typed_rounding",
    "typed_unexplained",
    "unbilled_job",
    "underbilled_time",
    "unknown_job",
    "unpriced_note",
    "unreadable_line",
    "which_entry_gives",
    "written_amount",
]

REEXPORT = (
    "re-export with group_by=line_item,project_id (GET /v1/organization/costs?bucket_width=1d"
    "&group_by=line_item&group_by=project_id) to compare compute, grader tokens and discounts "
    "each on its own"
)
"""How to get a Costs API export the audit can compare category by category."""

_PHASE_NAMES = {
    "queued": "queue",
    "validating_files": "file validation",
    "safety_check": "safety check",
    "safety_eval": "safety evaluation",
    "paused": "pause",
}


# --- figures in words ------------------------------------------------------------------------


def at(ns: int) -> datetime:
    """Nanoseconds since the epoch → a UTC datetime (microseconds kept)."""
    seconds, rest = divmod(int(ns), 10**9)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=rest // 1000)


def clock(ns: int) -> str:
    """``2025-06-01 10:00`` (UTC)."""
    return at(ns).strftime("%Y-%m-%d %H:%M")


def span(start: int, end: int) -> str:
    """``between 2025-06-01 10:00 and 10:30 UTC`` (the date once when both are on it)."""
    a, b = at(start), at(end)
    second = b.strftime("%H:%M") if a.date() == b.date() else b.strftime("%Y-%m-%d %H:%M")
    return f"between {a.strftime('%Y-%m-%d %H:%M')} and {second} UTC"


def hours_text(ns: int) -> str:
    """Nanoseconds → ``0.50 h`` (two decimals, for reading; not a billed quantity); a
    stretch too short to show in hundredths of an hour in seconds (``17.5 s``)."""
    hours = (Decimal(int(ns)) / Decimal(NS_PER_HOUR)).quantize(Decimal("0.01"))
    if hours == 0 and int(ns) != 0:
        return seconds_text(ns)
    return f"{hours} h"


def seconds_text(ns: int) -> str:
    """Nanoseconds → ``1,201 s`` or ``17.5 s`` (to the millisecond, as measured)."""
    seconds = (Decimal(int(ns)) / Decimal(10**9)).quantize(Decimal("0.001")).normalize()
    whole, _, fraction = f"{seconds:f}".partition(".")
    return f"{int(whole):,}{'.' + fraction if fraction else ''} s"


def duration_text(ns: int) -> str:
    """A gap in words: ``45 min``, ``24 h 0 min``, ``36 d 14 h``."""
    minutes = int(ns) // (60 * 10**9)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def micro_hours_text(micro: int) -> str:
    """Millionths of an hour → ``1.5 h`` with at least two decimals (``1.50 h``)."""
    value = Decimal(int(micro)).scaleb(-6)
    text = f"{value.normalize():f}"
    if "." not in text:
        text += ".00"
    elif len(text.split(".")[1]) < 2:
        text += "0"
    return f"{text} h"


def quantity_text(micro: int, unit: str, places: int) -> str:
    """Micro-units → hours with at least ``places`` decimals ("0.50 h") or whole tokens."""
    if unit == "tokens":
        return f"{micro // MICRO:,} tokens"
    value = Decimal(micro).scaleb(-6).normalize()
    if value.as_tuple().exponent > -places:  # type: ignore[operator]
        value = value.quantize(Decimal(1).scaleb(-places))
    return f"{value:f} h"


def billed_quantity_text(micro: int, unit: str) -> str:
    """The vendor's quantity as it wrote it ("0.5 h", not "0.50 h")."""
    if unit == "tokens":
        return quantity_text(micro, unit, 0)
    return f"{Decimal(micro).scaleb(-6).normalize():f} h"


def price_text(value: Decimal) -> str:
    """A rate for reading: two decimals, more only when it has them (0.275)."""
    return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else f"{value.normalize():f}"


def money_text(micro: int, currency: str) -> str:
    """Millionths → ``12.50 USD``."""
    return f"{format_amount(micro_to_decimal(micro))} {currency}"


def phase_name(phase: str) -> str:
    """A phase as a person names it (``queued`` → queue)."""
    return _PHASE_NAMES.get(phase, phase)


def price_entry_evidence(
    family: str, entry: Any, amount_micro: int, currency: str, *, in_force: bool
) -> Evidence:
    """A price entry as evidence: its rates and what they give for the line's tokens (R10)."""
    return Evidence(
        type="price_entry",
        description=(
            f"{family} from {entry.effective_from.date()}: {price_text(entry.input)} / "
            f"{price_text(entry.cached_input)} / {price_text(entry.output)} per 1M gives "
            f"{money_text(amount_micro, currency)}" + (" (in force)" if in_force else "")
        ),
        price=entry.input,
        effective_from=entry.effective_from,
        source=entry.source,
        grader_model=family,
    )


def which_entry_gives(family: str, match: Any, current: Any, on_day: str | None = None) -> str:
    """The billed amount is what an earlier (or later) price entry gives, not the one in force."""
    return (
        f"The billed amount is what the {family} price entry from "
        f"{match.effective_from.date()} gives ({price_text(match.input)} / "
        f"{price_text(match.cached_input)} / {price_text(match.output)} per 1M input / cached / "
        "output), not the one in force"
        + (f" on {on_day}" if on_day is not None else "")
        + (f" (from {current.effective_from.date()})" if current else "")
        + "."
    )


# --- arithmetic_error, unknown_job, invalid_job, unbilled_job, duplicate_line ---------------


def total_mismatch(said: int, added: int, currency: str) -> str:
    """arithmetic_error of a ``total`` line."""
    return (
        f"The invoice states a total of {money_text(said, currency)} but its lines "
        f"add up to {money_text(added, currency)}: {money_text(said - added, currency)} "
        f"{'more' if said > added else 'less'}."
    )


def line_arithmetic(line: int, product: str, computed: int, amount: int, currency: str) -> str:
    """arithmetic_error of a line: quantity × unit price ≠ amount."""
    return (
        f"Line {line}: {product} = {money_text(computed, currency)}, but the line says "
        f"{written_amount(amount, currency)}."
    )


def written_amount(micro: int, currency: str) -> str:
    """An invoice's amount as written: ``1.004 USD`` stays 1.004, not a rounded 1.00."""
    if int(micro) % 10**4 == 0:
        return money_text(micro, currency)
    return f"{Decimal(int(micro)).scaleb(-6).normalize():f} {currency}"


def unknown_job(
    line: int, amount: int, line_type: str, job_id: str, n_jobs: int, currency: str
) -> str:
    """unknown_job: a line for a job with no events."""
    return (
        f"Line {line} bills {money_text(amount, currency)} ({line_type}) "
        f"for job {job_id}, which has no events in the logs ({n_jobs} jobs read)."
    )


def invalid_job(job_id: str, reasons: list[str], n_lines: int, amount: int, currency: str) -> str:
    """invalid_job: the logs of a billed job cannot be reconstructed."""
    return (
        f"The logs of job {job_id} cannot be reconstructed "
        f"({reasons[0] if reasons else 'invalid'}"
        f"{f'; {len(reasons) - 1} more problem(s)' if len(reasons) > 1 else ''}), "
        "so its "
        f"{n_lines} line(s) totalling {money_text(amount, currency)} cannot "
        "be checked."
    )


def unpriced_note(jobs: list[str]) -> tuple[str, ...]:
    """The note on invalid jobs no line bills (none when there are none)."""
    if not jobs:
        return ()
    named = ", ".join(jobs[:5]) + (f" and {len(jobs) - 5} more" if len(jobs) > 5 else "")
    return (
        f"{len(jobs)} job(s) whose logs are invalid have no line on the invoice ({named}): "
        "their charges are unknown and in no expected total; that the invoice bills them "
        "nothing cannot be checked (rftcost bill says why their logs are invalid).",
    )


def orphan_note(records: int) -> tuple[str, ...]:
    """The note on rejected records of no known job (none when there are none)."""
    if not records:
        return ()
    return (
        f"{records} record(s) of the logs were rejected before their job could be read: they "
        "may belong to any job (a billing event of a job the invoice bills, or of one it "
        "does not), so the expected total covers the records read and some charges may be "
        "missing from it; findings on the jobs involved may come from it (rftcost validate "
        "names the records).",
    )


def unreadable_line(
    where: str,
    column: str,
    value: str | None,
    reason: str,
    amount: int | None,
    job_id: str | None,
    held: tuple[int, int],
    currency: str,
) -> str:
    """unreadable_line: a line of the invoice set aside, and what it leaves unchecked."""
    cell = "is empty" if value is None else f"holds {value!r}"
    text = f"Invoice line {where} cannot be read: its {column} {cell} ({reason}). "
    text += (
        "Its amount is unknown"
        if amount is None
        else f"It bills {money_text(amount, currency)} as written"
    )
    text += ", in neither the expected nor the billed total"
    n_held, held_amount = held
    if job_id is not None and n_held:
        text += (
            f"; job {job_id}'s {n_held} other line(s) ({money_text(held_amount, currency)}) "
            "are not checked either"
        )
    elif job_id is not None:
        text += f"; job {job_id} is not checked"
    return text + ". Correct the line (or ask the vendor for a corrected invoice) and audit again."


def unbilled_job(job_id: str, status: str, n_charges: int, total: int, currency: str) -> str:
    """unbilled_job: a job with charges and no line."""
    return (
        f"Job {job_id} ({status}, {n_charges} charge(s), {money_text(total, currency)} "
        "in the logs) has no line on the invoice; it may be billed later or was missed."
    )


def duplicate_line(
    line: int,
    first: int | None,
    line_type: str,
    amount: int,
    job_id: str,
    currency: str,
    invoices: tuple[str, str] | None = None,
    file_lines: tuple[int, int] | None = None,
) -> str:
    """duplicate_line: a line that repeats another (``invoices``: the copy's and the
    original's invoice ids, named when a file holds several invoices; ``file_lines``: the
    lines of the file they are on, named when both have the same line number)."""
    copy, original = f"Line {line}", f"line {first}"
    if file_lines is not None and line == first:
        copy, original = (
            f"{copy} (file line {file_lines[0]})",
            f"{original} (file line {file_lines[1]})",
        )
    if invoices is not None and invoices[0] != invoices[1]:
        copy, original = f"{copy} of invoice {invoices[0]}", f"{original} of invoice {invoices[1]}"
    return (
        f"{copy} repeats {original} ({line_type}, "
        f"{money_text(amount, currency)}) "
        f"for job {job_id}: the same charge appears to be billed twice."
    )


def duplicate_unchecked_line(
    line: int, first: int, line_type: str, amount: int, currency: str, description: str
) -> str:
    """duplicate_line of a line the logs do not bill (tax, credit, adjustment, other)."""
    what = f"{line_type} line" + (f" {description!r}" if description else "")
    return (
        f"Line {line} repeats line {first} (the same {what}, {money_text(amount, currency)}):"
        f" if it is the same charge written twice, {money_text(abs(amount), currency)} is"
        f" {'billed' if amount >= 0 else 'credited'} twice. The logs do not bill such lines,"
        " so this is not counted in the difference; ask the vendor."
    )


# --- rate_mismatch ---------------------------------------------------------------------------


def rate_mismatch(
    line: int,
    hours: str,
    model: str,
    price: Decimal,
    policy: str,
    rate: Decimal,
    rate_part: int,
    currency: str,
) -> str:
    """rate_mismatch: a compute line priced at another rate than the policy's."""
    return (
        f"Line {line} prices {hours} of {model} training at {format_amount(price)} "
        f"{currency}/h; policy {policy} gives {format_amount(rate)} "
        f"{currency}/h: {money_text(rate_part, currency)} "
        f"{'more' if rate_part > 0 else 'less'}."
    )


# --- hours: rounding, overbilled_time, underbilled_time, queue_time_billed, lost_work_billed --


def job_rounding(
    job_id: str,
    billed_micro_hours: int,
    billable_ns: int,
    policy: str,
    places: int,
    rounding: Any,
    total: int,
    currency: str,
) -> str:
    """rounding of a job's hours: its total lies between its charges rounded down and up."""
    return (
        f"Job {job_id}: {micro_hours_text(billed_micro_hours)} billed for "
        f"{exact_time(billable_ns)} of exact billable time, which lies between "
        "the exact time of each charge rounded down and up; policy "
        f"{policy} rounds to {places} decimals "
        f"({rounding.hours_mode}, scope {rounding.scope}): "
        f"{money_text(total, currency)}, which only rounding explains."
    )


def hours_rounding(
    billed_micro_hours: int,
    job_id: str,
    scope: str,
    expected_micro_hours: int,
    billable_ns: int,
    why: str,
    hours_part: int,
    currency: str,
) -> str:
    """rounding of one charge's (or job's) hours."""
    return (
        f"{micro_hours_text(billed_micro_hours)} billed for {job_id} ({scope}) where the logs "
        f"give {micro_hours_text(expected_micro_hours)} for "
        f"{exact_time(billable_ns)} of exact billable time: {why} "
        f"({money_text(hours_part, currency)})."
    )


def beyond_cap(
    job_id: str, policy: str, cap: Decimal | None, hours_part: int, currency: str
) -> str:
    """overbilled_time / underbilled_time of a capped job."""
    return (
        f"Job {job_id} reaches policy {policy}'s cap of "
        f"{format_amount(cap) if cap is not None else '?'} {currency} per job; "
        f"the invoice bills {money_text(hours_part, currency)} "
        f"{'beyond' if hours_part > 0 else 'short of'} it."
    )


def exact_time(ns: int) -> str:
    """Exact billable time as measured: ``1,201 s = 0.3336 h``, ``17.5 s = 0.0049 h``."""
    hours = (Decimal(int(ns)) / Decimal(NS_PER_HOUR)).quantize(Decimal("0.0001"))
    return f"{seconds_text(ns)} = {hours} h"


def r11_clause(ns: int, mode: str, expected_micro_hours: int) -> str:
    """`` (exact 1,201 s = 0.3336 h, rounded half up to 0.33 h by R11)``; a time of a
    fraction of a second says that R11 rounds it to whole seconds first."""
    if int(ns) % 10**9:
        return (
            f" (exact {seconds_text(ns)}; R11 rounds it to whole seconds, then {mode} to "
            f"{micro_hours_text(expected_micro_hours)})"
        )
    return (
        f" (exact {exact_time(ns)}, rounded {mode} to "
        f"{micro_hours_text(expected_micro_hours)} by R11)"
    )


def overbilled_time(
    delta: int,
    expected_micro_hours: int,
    job_id: str,
    scope: str,
    window: tuple[int, int],
    hours_part: int,
    currency: str,
    exact: tuple[int, str] | None = None,
    note: str = "",
) -> str:
    """overbilled_time that no interval of the job explains; ``exact``: the exact billable
    time in nanoseconds and how the policy rounds it (R11), to show where the hours come
    from."""
    rounded = "" if exact is None else r11_clause(exact[0], exact[1], expected_micro_hours)
    return (
        f"{micro_hours_text(delta)} billed beyond the "
        f"{micro_hours_text(expected_micro_hours)} of billable time in the logs{rounded} for "
        f"{job_id} ({scope}, {span(*window)}): {money_text(hours_part, currency)}; "
        f"no excluded or lost interval of the job explains it{note}."
    )


def not_charged_yet(
    billed_micro_hours: int,
    job_id: str,
    status: str,
    accrued_ns: int,
    hours_part: int,
    currency: str,
) -> str:
    """overbilled_time of a job that has reached no billing event: its time is accrued."""
    return (
        f"{micro_hours_text(billed_micro_hours)} billed for {job_id} ({status}), which has "
        f"not reached a billing event: its {exact_time(accrued_ns)} of billable time so far "
        f"are accrued, not charged (R8): {money_text(hours_part, currency)} billed before "
        "it is due."
    )


def underbilled_time(
    delta: int,
    expected_micro_hours: int,
    job_id: str,
    scope: str,
    hours_part: int,
    hint: str,
    currency: str,
    exact: tuple[int, str] | None = None,
) -> str:
    """underbilled_time: fewer hours billed than the logs give (``exact``: as in
    ``overbilled_time``)."""
    rounded = "" if exact is None else r11_clause(exact[0], exact[1], expected_micro_hours)
    return (
        f"{micro_hours_text(-delta)} less than the {micro_hours_text(expected_micro_hours)} of "
        f"billable time in the logs{rounded} is billed for {job_id} ({scope}): "
        f"{money_text(-hours_part, currency)} in your favour{hint}."
    )


def explained_time(
    kind: str,
    text: str,
    job_id: str,
    scope: str,
    hours_part: int,
    same: list[str],
    others: list[str],
    currency: str,
) -> str:
    """queue_time_billed / lost_work_billed: the stretch of time that explains the hours,
    the ones that fit as well, and other causes that explain the same difference."""
    sentence = (
        f"{text} appears to be billed for {job_id} ({scope}): {money_text(hours_part, currency)}"
    )
    if kind == "lost_work_billed":
        sentence += " (R5/R6: only captured forward progress is billed)"
    if kind == "queue_time_billed":
        sentence += " (R2: excluded phases are never billed)"
    if same:
        sentence += "; " + " or ".join(same) + " fits as well"
    if others:
        sentence += "; the same difference is also explained by " + " or ".join(others)
    return sentence + "."


# --- missing_discount (and the discount that follows a compute finding) ----------------------


def discount_follows(job_id: str, rate_text: str, cause_kind: str, diff: int, currency: str) -> str:
    """A discount that differs only because it follows a compute finding (R12)."""
    return (
        f"The discount follows the compute billed for {job_id}: {rate_text} of the "
        f"{cause_kind.replace('_', ' ')} above is {money_text(-diff, currency)} of "
        "extra discount, which offsets part of that finding."
    )


def discount_rounding(job_id: str, rate_text: str, diff: int, currency: str) -> str:
    """rounding of a data-sharing discount."""
    return (
        f"The data-sharing discount of {job_id} differs from {rate_text} of its compute by "
        f"{money_text(diff, currency)}, which only rounding explains."
    )


def missing_discount(
    job_id: str,
    policy: str,
    rate_text: str,
    scope_text: str,
    sharing: bool,
    expected: int,
    billed: int,
    currency: str,
) -> str:
    """missing_discount: no discount, a discount not due, or another amount than R12 gives."""
    if expected != 0 and billed == 0:
        return (
            f"Job {job_id} was created with data sharing, but no data-sharing discount is "
            f"billed: policy {policy} gives {rate_text} off {scope_text}, "
            f"{money_text(-expected, currency)}."
        )
    if expected == 0:
        return f"A discount of {money_text(-billed, currency)} is billed for {job_id}, " + (
            f"but policy {policy} gives "
            + (
                "no training discount (audit under openai-rft if your contract grants one)."
                if sharing
                else "no discount to a job created without data sharing."
            )
        )
    if billed > 0:
        return (
            f"The data-sharing discount of {job_id} is billed as +{money_text(billed, currency)}"
            ", a charge where a discount is a negative line; policy "
            f"{policy} gives {rate_text} off {scope_text}, {money_text(expected, currency)} "
            "on the line."
        )
    return (
        f"The data-sharing discount of {job_id} is {money_text(-billed, currency)}; "
        f"policy {policy} gives {rate_text} off {scope_text}, {money_text(-expected, currency)}."
    )


# --- grader_tokens_mismatch, grader_price_mismatch, grader rounding --------------------------


def grader_rounding(family: str, job_id: str, scope: str, diff: int, currency: str) -> str:
    """rounding of a grader amount (lines without token types)."""
    return (
        f"The {family} grader amount of {job_id} ({scope}) differs by "
        f"{money_text(diff, currency)}, which only rounding explains."
    )


def lost_tokens_billed(lost_cost: int, family: str, currency: str) -> str:
    """A grader cause: tokens used in lost work appear to be billed (R9)."""
    return (
        f"the {money_text(lost_cost, currency)} of {family} tokens used in lost work "
        "(R9: not charged) appear to be billed"
    )


def tokens_billed_twice(family: str) -> str:
    """A grader cause: the tokens appear to be billed twice."""
    return f"the {family} tokens appear to be billed twice"


def earlier_price_billed(family: str, old_cost: int, currency: str) -> str:
    """A grader cause: tokens priced at an entry no longer in force (R10)."""
    return (
        f"the {family} tokens appear to be priced at a rate no longer in force on their usage "
        f"date ({money_text(old_cost, currency)} at the earlier price)"
    )


def price_not_count(
    tokens: int, family: str, billed: int, expected: int, said: str, currency: str
) -> str:
    """A grader cause: the invoice's token count is the logs', so the price differs."""
    return (
        f"{tokens:,} {family} tokens are billed, the logs' count, at "
        f"{money_text(billed, currency)} where the prices in force give "
        f"{money_text(expected, currency)}: the difference is in the price. {said}"
    )


def count_not_price(billed_tokens: int, family: str, tokens: int) -> str:
    """A grader cause: the invoice's token count is not the logs'."""
    return (
        f"{billed_tokens:,} {family} tokens are billed where the logs count "
        f"{tokens:,} charged tokens"
    )


def no_grader_line(family: str, job_id: str, scope: str, expected: int, currency: str) -> str:
    """grader_tokens_mismatch: no grader line where the logs charge tokens."""
    return (
        f"No {family} grader line is billed for {job_id} ({scope}); the logs give "
        f"{money_text(expected, currency)} of grader tokens."
    )


def no_grader_usage(billed: int, family: str, job_id: str, scope: str, currency: str) -> str:
    """grader_tokens_mismatch: grader tokens billed where the logs show no usage."""
    return (
        f"{money_text(billed, currency)} of {family} grader tokens billed for {job_id} "
        f"({scope}), where the logs show no charged {family} usage."
    )


def grader_causes(job_id: str, scope: str, causes: list[str], diff: int, currency: str) -> str:
    """grader_tokens_mismatch / grader_price_mismatch: the first cause, and the others that
    explain the same difference."""
    text = f"{job_id} ({scope}): " + causes[0]
    if len(causes) > 1:
        text += "; the same difference is also explained if " + " or ".join(causes[1:])
    return text + f" ({money_text(diff, currency)})."


def grader_unexplained(
    family: str, job_id: str, scope: str, billed: int, expected: int, currency: str
) -> str:
    """grader_tokens_mismatch of lines without a token breakdown, no cause found."""
    return (
        f"The {family} grader amount of {job_id} ({scope}) is {money_text(billed, currency)}; "
        f"the logs give {money_text(expected, currency)}. The invoice gives no token "
        "breakdown, so the token count and the price cannot be told apart."
    )


def typed_rounding(family: str, job_id: str, rest: int, currency: str) -> str:
    """rounding of token lines rounded one by one where the bill rounds their sum (R13)."""
    return (
        f"The {family} token lines of {job_id} are rounded one by one; "
        f"the bill rounds their sum once (R13): {money_text(rest, currency)}, which "
        "only rounding explains."
    )


def typed_unexplained(
    family: str, job_id: str, rest: int, lines: int, priced: str, currency: str
) -> str:
    """grader_price_mismatch / grader_tokens_mismatch of token lines whose sum no rounding
    explains (each line's price in force for some of the usage, not for all it bills)."""
    return (
        f"The {family} token lines of {job_id} bill {money_text(rest, currency)} more than "
        f"the logs' usage at the prices in force (R10), beyond what rounding {lines} line(s) "
        f"one by one can explain (at most {money_text(lines * MICRO // 100, currency)}). The "
        f"usage was priced: {priced or 'none'}; a line bills more tokens at a price than "
        "were used while it was in force."
        if rest > 0
        else f"The {family} token lines of {job_id} bill {money_text(-rest, currency)} less "
        f"than the logs' usage at the prices in force (R10), beyond what rounding {lines} "
        f"line(s) one by one can explain. The usage was priced: {priced or 'none'}."
    )


def token_price_mismatch(
    line: int,
    tokens: int,
    family: str,
    token_type: str,
    price: Decimal,
    in_force: str,
    old: str,
    diff: int,
    currency: str,
) -> str:
    """grader_price_mismatch of a token line: a price not in force on the usage date (R10)."""
    return (
        f"Line {line} prices {tokens:,} {family} {token_type} tokens at "
        f"{price_text(price)} {currency} per 1M; the price in force on their usage date is "
        f"{in_force} (R10){old}: {money_text(diff, currency)}."
    )


def token_count_mismatch(
    billed_tokens: int,
    family: str,
    token_type: str,
    job_id: str,
    scope: str,
    expected_tokens: int,
    diff: int,
    because: str,
    currency: str,
) -> str:
    """grader_tokens_mismatch of a token type: another count than the logs'."""
    return (
        f"{billed_tokens:,} {family} {token_type} tokens billed for {job_id} ({scope}) where the "
        f"logs give {expected_tokens:,}: {billed_tokens - expected_tokens:+,} tokens, "
        f"{money_text(diff, currency)}{because}."
    )


# --- Costs API exports: unknown_job (a project with no job) ------------------------------------


def project_map_hint(project_id: str, projects: set[str]) -> str:
    """How to place an export's project id: the mapping to write, and the job metadata."""
    if len(projects) == 1:
        (name,) = projects
        target = f"--project-map {project_id}={name}" + (
            " (jobs without a project)" if not name else f" (the logs' project {name})"
        )
    else:
        target = (
            f"--project-map {project_id}=NAME for the logs' project NAME, or "
            f"--project-map {project_id}= for the jobs without a project"
        )
    return (
        f"If {project_id} is where these jobs ran, map it: {target} (project_map in "
        "Python); or give the jobs their project (metadata.project when creating the job)."
    )


# --- Costs API exports: one project, day and category ---------------------------------------


def _jobs_named(jobs: tuple[str, ...]) -> str:
    return f"{len(jobs)} job(s){': ' + ', '.join(jobs[:5]) if jobs else ''}"


def cell_unknown_project(
    billed: int,
    category: str,
    project: str,
    day: str,
    unplaced: tuple[tuple[str, str], ...],
    currency: str,
) -> str:
    """unknown_job of an export: a project with no job in the logs (and how to map it)."""
    text = (
        f"{money_text(billed, currency)} of {category} is billed to project "
        f"{project} on {day}, a project with no job in the logs."
    )
    if not unplaced:
        return text + " " + project_map_hint(project, set())
    named = ", ".join(f"{j} ({p or 'no project'})" for j, p in unplaced[:5])
    return text + (
        f" The logs' jobs of that day in none of the export's projects ({named}) "
        "cannot be matched to its project ids. "
        + project_map_hint(project, {p for _, p in unplaced})
    )


def cell_unbilled(
    category: str,
    where: str,
    expected: int,
    jobs: tuple[str, ...],
    project: str,
    export_projects: tuple[str, ...] | None,
    currency: str,
) -> str:
    """unbilled_job of an export: no cost reported where the logs charge (and, when the
    jobs' project is none of the export's, how to map it)."""
    text = (
        f"No {category} cost is reported for {where}, where the logs charge "
        f"{money_text(expected, currency)} ({len(jobs)} job(s): {', '.join(jobs[:5])})."
    )
    if not export_projects:
        return text
    held = (
        "these jobs have no project in the logs (no metadata.project)"
        if not project
        else f"project {project} is none of its project ids"
    )
    return text + (
        f" The export is grouped by project and {held}, so they cannot be placed in "
        f"its projects ({', '.join(export_projects[:5])}). "
        + project_map_hint(export_projects[0], {project})
    )


def cell_rounding(category: str, where: str, diff: int, currency: str) -> str:
    """rounding of an export's cell."""
    return (
        f"The {category} costs of {where} differ by {money_text(diff, currency)}, which only "
        "rounding explains."
    )


def cell_day_total(
    billed: int, where: str, expected: int, jobs: tuple[str, ...], currency: str
) -> str:
    """overbilled_time / underbilled_time of a day's total (an export without line items)."""
    return (
        f"{money_text(billed, currency)} is billed in all for {where}; the logs "
        f"charge {money_text(expected, currency)} that day ({_jobs_named(jobs)}). The export "
        "names no line item, so compute, grader tokens, discounts and any other cost "
        f"of that day cannot be told apart; {REEXPORT}."
    )


def cell_invalid(
    where: str,
    category: str,
    billed: int,
    expected: int,
    invalid: tuple[str, ...],
    currency: str,
) -> str:
    """invalid_job of an export's cell: a job of unknown amount may be charged in it.

    Charges are never negative, so a cell billed below the other jobs' charges alone is
    underbilled by at least the difference, whatever the invalid jobs' share: said here,
    as the cell's money stays out of both totals.
    """
    shown = ", ".join(invalid[:5]) + (f" and {len(invalid) - 5} more" if len(invalid) > 5 else "")
    text = (
        f"{money_text(billed, currency)} of {category} is billed for {where}, which cannot "
        f"be checked: the logs of {shown} cannot be reconstructed (amount unknown) and "
        f"may have charges there; the other jobs' charges come to "
        f"{money_text(expected, currency)}."
    )
    if billed < expected:
        text += (
            f" Billed {money_text(expected - billed, currency)} below those alone: "
            "underbilled by at least that much, whatever the invalid jobs' charges."
        )
    return text


def cell_price(
    billed: int, where: str, tokens_micro: int, expected: int, explained: str, currency: str
) -> str:
    """grader_price_mismatch of an export's cell: the logs' token count, another amount."""
    return (
        f"{money_text(billed, currency)} of grader tokens is billed for {where} "
        f"for {quantity_text(tokens_micro, 'tokens', 0)}, the logs' count; the "
        f"logs charge {money_text(expected, currency)} for them at the prices "
        f"in force, so the difference is in the price. {explained}"
    )


def cell_mismatch(
    billed: int, line_type: str, where: str, expected: int, jobs: tuple[str, ...], currency: str
) -> str:
    """overbilled_time, underbilled_time, missing_discount or grader_tokens_mismatch of an
    export's cell: the export names no job to trace the difference to."""
    diff = billed - expected
    return (
        f"{money_text(billed, currency)} of {line_type} is billed for {where}; the "
        f"logs charge {money_text(expected, currency)} that day ({_jobs_named(jobs)}): "
        f"{money_text(abs(diff), currency)} {'over' if diff > 0 else 'under'}billed. "
        "The export names no job, so the difference cannot be traced to one."
    )


def cell_quantities(billed_q: str, expected_q: str, q_diff: int, unit: str, places: int) -> str:
    """The export's own quantity against the logs', after a cell's explanation."""
    return f" The export's quantity is {billed_q}, the logs' {expected_q}" + (
        f" ({quantity_text(abs(q_diff), unit, places)} {'more' if q_diff > 0 else 'less'})."
        if q_diff
        else " (the same)."
    )


def day_total_agrees(where: str, billed: int, expected: int, currency: str) -> str:
    """Note: an export without line items whose day's total agrees."""
    return (
        f"{where}: the export names no line item, so compute, grader "
        "tokens and discounts cannot be told apart; the day's total agrees: billed "
        f"{money_text(billed, currency)}, the logs "
        f"{money_text(expected, currency)}; " + REEXPORT + "."
    )


def quantity_note(
    where: str,
    line_type: str,
    billed: int,
    billed_q: str,
    expected: int,
    expected_q: str,
    same: bool,
    currency: str,
) -> str:
    """Note: a cell whose amounts agree, and whether the vendor's quantity agrees too."""
    return (
        f"{where}, {line_type}: billed {money_text(billed, currency)} for {billed_q}, the logs "
        f"{money_text(expected, currency)} for {expected_q}: "
        + (
            "the vendor's quantity agrees."
            if same
            else "the amounts agree but the vendor's quantity differs."
        )
    )
