"""Invoices × bills → findings: what was billed, what the logs say, and why they differ.

``audit_invoice`` recomputes every charge from the event logs under a policy
(``rftcost.bill``), matches the invoice's lines to it, and explains every
difference in money (invoice-audit.md).

Matching (canonical invoices, ``basis = "job"``):

1. Lines for a job with no events are ``unknown_job``; lines for a job whose logs
   cannot be reconstructed are ``invalid_job`` (never a guess; an error, for money
   the logs cannot check must not pass a gate; ``summary.unverifiable_total``); ``credit``,
   ``adjustment`` and ``tax`` lines are taken as billed (``unchecked_total``). A line
   of the invoice that cannot be read is ``unreadable_line`` (an error: its money is
   unknown), and the other lines of its job are not checked either.
2. A line with ``charge_at`` is matched to the nearest billing event of its job
   within ``match_window``. When every line of a job is matched, the job is
   compared charge by charge; otherwise its lines are compared to its totals, and a
   note names each line whose ``charge_at`` matches no billing event, with its money.
   Compared charge by charge, hours moved from one charge to another are found on
   both charges even when the job's total agrees.
3. Identical lines are ``duplicate_line`` when dropping the copies brings the
   amount closer to the logs (two identical charges of a paused job are not
   duplicates).
4. Each line is checked on its own (``arithmetic_error``: quantity × unit price ≠
   amount; ``rate_mismatch``: a price other than the policy's hourly rate;
   ``grader_price_mismatch``: a token price not in force on the usage date), then
   each group (job or charge; compute, discount, grader model and token type) is
   compared to the bill. Hours billed beyond the logs are matched against the
   job's excluded intervals (``queue_time_billed``) and lost work
   (``lost_work_billed``): a stretch is the cause when the exact billable time plus
   the stretch lies within one rounding step per charge of the hours billed (R11), else
   the hours are ``overbilled_time``; differences that only a different rounding
   scope explains are ``rounding`` (severity ``info``): a job of several charges
   billed between its charges' exact times rounded down and up, token lines rounded
   one by one (R13). A job of one charge is rounded the same under either scope:
   hours other than R11's are ``overbilled_time`` / ``underbilled_time``.
5. Jobs with charges and no line are ``unbilled_job``.

Every finding's ``difference`` is a disjoint share of the total difference: the
findings' differences add up to ``summary.difference`` (``invalid_job`` findings
carry none, their lines being unchecked).

Costs API exports (``basis = "project_day"``) name no job: their costs are
compared per project (the logs' ``project``) and UTC day (the day of each
charge's billing event), per category (compute, discount, grader tokens).

The comparison is vectorized (merges and group-bys over all lines at once);
Python loops run only over findings, whose count is what an auditor reads.

The package, from the bottom up:

- ``model``: finding kinds, severities and their order, ``Evidence``, ``Finding``;
- ``document``: ``AuditReport`` (the ``rftcost.audit/v1`` document), its summary and
  comparisons, ``build_report``;
- ``frames``, ``pricing`` (every billing rule the audit recomputes), ``wording`` (the
  figures in words and one explanation template per finding);
- ``context``: the immutable ``AuditContext`` a job-basis audit reads;
- ``evidence``: time and usage indexes of the few jobs with differences;
- ``matching``: invoice lines to jobs and charges, what the logs expect, duplicates;
- ``compute``, ``discount``, ``grader``: the findings of each line type;
- ``costs``: the project/day comparison of Costs API exports;
- ``api``: ``audit_invoice``.
"""

from __future__ import annotations

from rftcost.audit.api import audit_invoice
from rftcost.audit.document import (
    AUDIT_SCHEMA,
    DISPUTE_COLUMNS,
    FINDING_COLUMNS,
    AuditReport,
    AuditSummary,
    Comparison,
    write_audit,
    write_dispute,
)
from rftcost.audit.model import (
    FINDING_KINDS,
    READING_KINDS,
    SEVERITIES,
    SEVERITY_ORDER,
    Evidence,
    Finding,
    FindingKind,
    Severity,
)
from rftcost.rules import priced_tokens

__all__ = [
    "AUDIT_SCHEMA",
    "DISPUTE_COLUMNS",
    "FINDING_COLUMNS",
    "FINDING_KINDS",
    "READING_KINDS",
    "SEVERITIES",
    "SEVERITY_ORDER",
    "AuditReport",
    "AuditSummary",
    "Comparison",
    "Evidence",
    "Finding",
    "FindingKind",
    "Severity",
    "audit_invoice",
    "priced_tokens",
    "write_audit",
    "write_dispute",
]
