"""Evidence from the logs for the few jobs with differences: time and usage indexes.

``TimeIndex`` holds the phase intervals, losses and lost pieces of a few jobs and
proposes ``Candidate`` stretches of time that would explain hours billed beyond the
logs (excluded intervals, lost work, the wall clock) or short of them (billable
phases). ``UsageIndex`` holds their grader usage, priced, to explain grader
differences (lost work, an earlier price entry). Both are built for the jobs with
findings only: their loops run over findings, not over the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

import pandas as pd

from rftcost.audit.frames import among, rows_of, split_by_job
from rftcost.audit.model import Evidence, FindingKind
from rftcost.audit.pricing import MICRO_PER_CENT, entry_pico, pico_to_micro, price_index_at
from rftcost.audit.wording import (
    at,
    clock,
    hours_text,
    phase_name,
    price_entry_evidence,
    price_text,
    span,
    which_entry_gives,
)
from rftcost.rules import price_family

__all__ = ["Candidate", "TimeIndex", "UsageIndex", "merge_spans", "overlap", "union_length"]


@dataclass
class Candidate:
    """A stretch of time that would explain billed hours: its kind, length and evidence."""

    kind: FindingKind
    ns: int
    text: str
    evidence: list[Evidence]
    specificity: int
    also: tuple[FindingKind, ...] = ()


class TimeIndex:
    """Phase intervals, losses and lost pieces of a few jobs, for explaining billed hours."""

    def __init__(self, bill: Any, job_ids: set[str], code_of: pd.Series) -> None:
        timeline = bill.timeline
        codes = {int(c) for c in code_of.reindex(list(job_ids)).dropna()}
        self.intervals = split_by_job(timeline.intervals, codes)
        self.losses = split_by_job(timeline.losses, codes)
        pieces = timeline.pieces
        self.lost_pieces = split_by_job(pieces[pieces["lost"]], codes)
        self.billable_pieces = split_by_job(pieces[pieces["billable"]], codes)

    def _billable_union(self, code: int) -> list[tuple[int, int]]:
        rows = self.billable_pieces.get(code)
        if rows is None:
            return []
        return merge_spans(
            [(int(s), int(e)) for s, e in zip(rows["start"], rows["end"], strict=True)]
        )

    def over_candidates(self, code: int, charge: int, window: tuple[int, int]) -> list[Candidate]:
        """Excluded intervals and lost work inside ``window`` whose billing would add hours."""
        w0, w1 = window
        candidates: list[Candidate] = []
        billable = self._billable_union(code)
        by_phase: dict[str, list[tuple[int, int, int]]] = {}
        rows = self.intervals.get(code)
        if rows is not None:
            for phase, start, end, is_billable in zip(
                rows["phase"], rows["start"], rows["end"], rows["billable"], strict=True
            ):
                if is_billable:
                    continue
                s, e = max(int(start), w0), min(int(end), w1)
                if e <= s:
                    continue
                extra = (e - s) - overlap([(s, e)], billable)
                if extra <= 0:
                    continue
                by_phase.setdefault(str(phase), []).append((s, e, extra))
        interval_evidence: dict[str, list[Evidence]] = {}
        for phase, spans in by_phase.items():
            evidence = [
                Evidence(
                    type="excluded_interval",
                    description=f"{phase} {span(s, e)} ({hours_text(extra)} not billable)",
                    phase=phase,
                    start=at(s),
                    end=at(e),
                    seconds=extra / 1e9,
                )
                for s, e, extra in spans
            ]
            interval_evidence[phase] = evidence
            for (s, e, extra), ev in zip(spans, evidence, strict=True):
                candidates.append(
                    Candidate(
                        "queue_time_billed",
                        extra,
                        f"{hours_text(extra)} of {phase_name(phase)} time {span(s, e)}",
                        [ev],
                        0,
                    )
                )
            if len(spans) > 1:
                total = union_length([(s, e) for s, e, _ in spans], billable)
                candidates.append(
                    Candidate(
                        "queue_time_billed",
                        total,
                        f"{hours_text(total)} of {phase_name(phase)} time ({len(spans)} intervals)",
                        evidence,
                        1,
                    )
                )
        phases = sorted(by_phase)
        for a, b in combinations(phases, 2):
            pair = [(s, e) for p in (a, b) for s, e, _ in by_phase[p]]
            total = union_length(pair, billable)
            candidates.append(
                Candidate(
                    "queue_time_billed",
                    total,
                    f"{hours_text(total)} of {phase_name(a)} and {phase_name(b)} time",
                    interval_evidence[a] + interval_evidence[b],
                    2,
                )
            )
        all_excluded = 0
        if len(phases) > 2:
            every = [(s, e) for p in phases for s, e, _ in by_phase[p]]
            all_excluded = union_length(every, billable)
            candidates.append(
                Candidate(
                    "queue_time_billed",
                    all_excluded,
                    f"{hours_text(all_excluded)} of excluded time "
                    f"({', '.join(phase_name(p) for p in phases)})",
                    [e for p in phases for e in interval_evidence[p]],
                    3,
                )
            )
        elif phases:
            all_excluded = union_length(
                [(s, e) for p in phases for s, e, _ in by_phase[p]], billable
            )
        # Idle gaps (no phase at all) and excluded time together: billing the wall clock.
        covered = merge_spans(
            [(int(s), int(e)) for s, e in zip(rows["start"], rows["end"], strict=True)]
            if rows is not None
            else []
        )
        idle = (w1 - w0) - overlap([(w0, w1)], covered)
        losses = self.losses.get(code)
        lost_total = 0
        loss_candidates: list[Candidate] = []
        if losses is not None:
            lost = self.lost_pieces.get(code)
            lost_spans = (
                [(int(s), int(e)) for s, e in zip(lost["start"], lost["end"], strict=True)]
                if lost is not None
                else []
            )
            for loss in losses.pipe(rows_of):
                if charge >= 0 and int(loss.segment) != charge:
                    continue
                if not (w0 <= int(loss.end) <= w1 or w0 <= int(loss.start) < w1):
                    continue
                ns = overlap([(int(loss.start), int(loss.end))], lost_spans)
                if ns <= 0:
                    continue
                lost_total += ns
                step = None if pd.isna(loss.checkpoint_step) else int(loss.checkpoint_step)
                ck_at = None if pd.isna(loss.checkpoint_ts) else int(loss.checkpoint_ts)
                after = (
                    f" after checkpoint step {step} saved at {clock(ck_at)} UTC"
                    if step is not None and ck_at is not None
                    else " (no checkpoint in the segment)"
                )
                text = (
                    f"{hours_text(ns)} of work lost to the {loss.cause} at "
                    f"{clock(int(loss.at))} UTC{after}"
                )
                evidence = [
                    Evidence(
                        type="lost_interval",
                        description=f"lost to {loss.cause} {span(int(loss.start), int(loss.end))}",
                        start=at(int(loss.start)),
                        end=at(int(loss.end)),
                        seconds=ns / 1e9,
                        cause=str(loss.cause),
                        checkpoint_step=step,
                        checkpoint_at=None if ck_at is None else at(ck_at),
                    )
                ]
                if step is not None and ck_at is not None:
                    evidence.append(
                        Evidence(
                            type="checkpoint",
                            description=f"checkpoint step {step} saved at {clock(ck_at)} UTC",
                            checkpoint_step=step,
                            checkpoint_at=at(ck_at),
                        )
                    )
                loss_candidates.append(Candidate("lost_work_billed", ns, text, evidence, 0))
        candidates.extend(loss_candidates)
        if len(loss_candidates) > 1:
            candidates.append(
                Candidate(
                    "lost_work_billed",
                    lost_total,
                    f"{hours_text(lost_total)} of work lost to {len(loss_candidates)} failures "
                    "or rollbacks",
                    [e for c in loss_candidates for e in c.evidence],
                    1,
                )
            )
        if loss_candidates and all_excluded:
            candidates.append(
                Candidate(
                    "queue_time_billed",
                    lost_total + all_excluded,
                    f"{hours_text(all_excluded)} of excluded time and "
                    f"{hours_text(lost_total)} of lost work",
                    [e for p in phases for e in interval_evidence[p]]
                    + [e for c in loss_candidates for e in c.evidence],
                    4,
                    also=("lost_work_billed",),
                )
            )
        if idle > 0:
            wall = (w1 - w0) - (overlap([(w0, w1)], billable) - lost_total)
            candidates.append(
                Candidate(
                    "queue_time_billed",
                    wall,
                    f"the wall clock {span(w0, w1)} ({hours_text(wall)} beyond the billable "
                    "time, "
                    f"{hours_text(idle)} of it with no phase at all)",
                    [e for p in phases for e in interval_evidence[p]],
                    5,
                    also=("lost_work_billed",) if lost_total else (),
                )
            )
        return candidates

    def billable_phases(self, code: int, window: tuple[int, int]) -> list[Candidate]:
        """Billable phases inside ``window`` (for hours billed short)."""
        rows = self.intervals.get(code)
        if rows is None:
            return []
        w0, w1 = window
        by_phase: dict[str, list[tuple[int, int]]] = {}
        for phase, start, end, is_billable in zip(
            rows["phase"], rows["start"], rows["end"], rows["billable"], strict=True
        ):
            s, e = max(int(start), w0), min(int(end), w1)
            if is_billable and e > s:
                by_phase.setdefault(str(phase), []).append((s, e))
        found = []
        for phase, spans in sorted(by_phase.items()):
            total = union_length(spans, [])
            found.append(
                Candidate(
                    "underbilled_time",
                    total,
                    f"{phase} phase ({hours_text(total)})",
                    [
                        Evidence(
                            type="billable_phase",
                            description=f"{phase} {span(s, e)}",
                            phase=phase,
                            start=at(s),
                            end=at(e),
                            seconds=(e - s) / 1e9,
                        )
                        for s, e in spans
                    ],
                    0,
                )
            )
        return found


def merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def overlap(spans: list[tuple[int, int]], others: list[tuple[int, int]]) -> int:
    total = 0
    for s, e in merge_spans(spans):
        for a, b in others:
            total += max(0, min(e, b) - max(s, a))
    return total


def union_length(spans: list[tuple[int, int]], minus: list[tuple[int, int]]) -> int:
    merged = merge_spans(spans)
    return sum(e - s for s, e in merged) - overlap(merged, merge_spans(minus))


class UsageIndex:
    """Grader usage of a few jobs, priced, for explaining grader differences."""

    def __init__(self, bill: Any, job_ids: set[str], code_of: pd.Series) -> None:
        codes = {int(c) for c in code_of.reindex(list(job_ids)).dropna()}
        usage = bill.timeline.usage
        usage = usage[among(usage["job"], list(codes))]
        if usage.empty:
            self.usage = usage.assign(
                grader_family=pd.Series([], dtype=str), price_index=pd.Series([], dtype="int64")
            )
            self.n_charges: dict[int, int] = {}
            return
        family = price_family(
            usage["grader_model"].astype(str), bill.policy.price_table.models
        ).astype(object)
        prices = bill.policy.price_table.to_frame()
        self.usage = usage.assign(
            grader_family=family.to_numpy(),
            price_index=price_index_at(family, usage["ts"], prices),
            cached_input_tokens=usage["cached_input_tokens"].fillna(0).astype("int64"),
        )
        counts = bill.timeline.charges.groupby("job").size()
        self.n_charges = {int(k): int(v) for k, v in counts.items()}

    def _rows(self, code: int, family: str, charge: int) -> pd.DataFrame:
        u = self.usage
        rows = u[(u["job"] == code) & (u["grader_family"] == family)]
        if charge >= 0:
            chosen: pd.DataFrame = rows[rows["segment"] == charge]
            return chosen
        earlier: pd.DataFrame = rows[rows["segment"] < self.n_charges.get(code, 0)]
        return earlier

    @staticmethod
    def _pico(rows: pd.DataFrame, table: Any, family: str, offset: int = 0) -> int | None:
        """The rows' tokens priced at their entries (shifted back by ``offset``); ``None``
        when an entry does not exist."""
        entries = table.models.get(family, ())
        total = 0
        for row in rows.pipe(rows_of):
            index = int(row.price_index) - offset
            if index < 0 or index >= len(entries):
                return None
            cached = int(row.cached_input_tokens)
            total += entry_pico(
                entries[index],
                table.unit_tokens,
                int(row.input_tokens) - cached,
                cached,
                int(row.output_tokens),
            )
        return total

    def lost_cost(
        self, code: int, family: str, charge: int, bill: Any
    ) -> tuple[int, list[Evidence]]:
        rows = self._rows(code, family, charge)
        lost = rows[rows["lost"]]
        if lost.empty:
            return 0, []
        pico = self._pico(lost, bill.policy.price_table, family) or 0
        evidence = [
            Evidence(
                type="tokens",
                description=(
                    f"{int(lost['input_tokens'].sum()):,} input and "
                    f"{int(lost['output_tokens'].sum()):,} "
                    f"output {family} tokens used in lost work"
                ),
                grader_model=family,
                tokens=int(lost["input_tokens"].sum() + lost["output_tokens"].sum()),
            )
        ]
        return pico_to_micro(pico, bill.policy), evidence

    def lost_tokens(
        self, code: int, family: str, charge: int, token_type: str, bill: Any
    ) -> tuple[int, list[Evidence]]:
        rows = self._rows(code, family, charge)
        lost = rows[rows["lost"]]
        if lost.empty:
            return 0, []
        cached = int(lost["cached_input_tokens"].sum())
        count = {
            "input": int(lost["input_tokens"].sum()) - cached,
            "cached_input": cached,
            "output": int(lost["output_tokens"].sum()),
        }[token_type]
        first, last = int(lost["ts"].min()), int(lost["ts"].max())
        return count, [
            Evidence(
                type="tokens",
                description=(
                    f"{count:,} {family} {token_type} tokens used in lost work "
                    + (f"at {clock(first)} UTC" if first == last else span(first, last))
                ),
                grader_model=family,
                token_type=token_type,
                tokens=count,
                start=at(first),
                end=at(last),
            )
        ]

    def price_entries(
        self, code: int, family: str, charge: int, billed: int, bill: Any
    ) -> tuple[str, list[Evidence]]:
        """The charged tokens priced at every entry of ``family``: which one gives ``billed``."""
        rows = self._rows(code, family, charge)
        rows = rows[~rows["lost"]]
        table = bill.policy.price_table
        entries = table.models.get(family, ())
        evidence, match, current = [], None, None
        in_force = {int(i) for i in rows["price_index"]}
        for index, entry in enumerate(entries):
            pico = self._pico(rows.assign(price_index=index), table, family)
            if pico is None:
                continue
            micro = pico_to_micro(pico, bill.policy)
            if index in in_force:
                current = entry
            elif abs(micro - billed) <= MICRO_PER_CENT and match is None:
                match = entry
            evidence.append(
                price_entry_evidence(
                    family, entry, micro, str(bill.policy.currency), in_force=index in in_force
                )
            )
        if match is not None:
            return (
                which_entry_gives(family, match, current),
                evidence,
            )
        return f"No {family} price entry gives the billed amount.", evidence

    def previous_price_cost(
        self, code: int, family: str, charge: int, bill: Any
    ) -> tuple[int | None, list[Evidence]]:
        rows = self._rows(code, family, charge)
        rows = rows[~rows["lost"]]
        if rows.empty:
            return None, []
        table = bill.policy.price_table
        pico = self._pico(rows, table, family, offset=1)
        if pico is None:
            return None, []
        entries = table.models.get(family, ())
        used = sorted({int(i) for i in rows["price_index"]})
        evidence = []
        for i in used:
            old, new = entries[i - 1], entries[i]
            evidence.append(
                Evidence(
                    type="price_entry",
                    description=(
                        f"{family} from {new.effective_from.date()}: {price_text(new.input)} / "
                        f"{price_text(new.cached_input)} / {price_text(new.output)} per 1M "
                        "(in force); "
                        f"before: {price_text(old.input)} / {price_text(old.cached_input)} / "
                        f"{price_text(old.output)}"
                    ),
                    effective_from=new.effective_from,
                    source=new.source,
                    grader_model=family,
                )
            )
        return pico_to_micro(pico, bill.policy), evidence


# --- the project/day audit (Costs API exports) ----------------------------------------------------
