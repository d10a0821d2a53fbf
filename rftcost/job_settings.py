"""A job's settings (team, model, data sharing, ...) and the records that contradict them.

A job's settings are read from its ``job_created`` record (event-log.md). Which value is
right is not known when two ``job_created`` records disagree, or when another record gives
a setting that decides money otherwise than (or where not) ``job_created`` does: such a
job is invalid, its amount unknown, rather than billed on a guess.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from rftcost.events.schema import JOB_SETTING_COLUMNS

if TYPE_CHECKING:
    from rftcost.policy import Policy

__all__ = [
    "BILLED_SETTINGS",
    "no_problems",
    "puts_payer_in_doubt",
    "setting_conflicts",
    "settings_elsewhere",
    "short_text",
]


def no_problems() -> pd.DataFrame:
    """A problem frame (job, problem) without a row, in the dtypes of one built from empty
    columns (the kernel's problem frames)."""
    return pd.DataFrame({"job": np.zeros(0, dtype="int64"), "problem": np.zeros(0, dtype=object)})


def puts_payer_in_doubt(problems: pd.Series) -> np.ndarray:
    """Which of these problem texts leave a job's team unknown: its ``job_created``
    records name two, or another record names one where they name none (the texts
    ``setting_conflicts`` and ``settings_elsewhere`` write)."""
    text = problems.astype(str)
    return (
        text.str.startswith("job_created records disagree on team:") | text.str.startswith("team '")
    ).to_numpy(dtype=bool)


BILLED_SETTINGS = ("team", "project", "model", "data_sharing")
"""Settings of ``job_created`` that decide an amount or who pays it."""


def settings_elsewhere(
    events: pd.DataFrame, ordered: pd.DataFrame, jobs: pd.DataFrame, policy: Policy
) -> pd.DataFrame:
    """Jobs whose other records say something about their money that ``job_created`` does
    not: a ``model`` billed at another hourly rate, ``data_sharing: true`` where
    ``job_created`` does not say so, a ``team`` or ``project`` where it names none.

    A job's settings are read from its ``job_created`` only (event-log.md). Such a job
    would be billed at another rate, without its discount or under ``unallocated``
    without a word; which record is right is not known, so the job is invalid, as when
    two ``job_created`` disagree. Not so what cannot change an amount or its payer: a
    record repeating ``job_created``'s value; a ``model`` named otherwise at the same
    rate (``o4-mini`` for ``o4-mini-2025-04-16``, or for the policy's default model where
    ``job_created`` names none); ``data_sharing: false`` (a frame's boolean column writes
    it on every row); a ``team`` or ``project`` where ``job_created`` names one (it is
    the payer, event-log.md).
    """
    given = [c for c in BILLED_SETTINGS if c in events.columns]
    not_created = ~events["event"].eq("job_created").to_numpy(dtype=bool, na_value=False)
    masks = {c: not_created & events[c].notna().to_numpy(dtype=bool) for c in given}
    if not any(mask.any() for mask in masks.values()):  # the usual log
        return no_problems()
    job_of_row = np.empty(len(events), dtype="int64")
    job_of_row[ordered["row"].to_numpy(dtype="int64")] = ordered["job"].to_numpy(dtype="int64")
    found = []
    for column, mask in masks.items():  # the four settings, not the rows
        rows = np.flatnonzero(mask)
        if not len(rows):
            continue
        job = job_of_row[rows]
        value = pd.Series(events[column].array.take(rows)).astype("string")
        settled = pd.Series(jobs[column].array.take(job)).astype("string")
        if column == "data_sharing":  # as the log writes it, whatever the column's dtype
            value, settled = value.str.lower(), settled.str.lower()
        if column == "model":  # by the rate each name bills at (R11), per distinct pair
            pairs = pd.DataFrame({"given": value, "job": settled.fillna(policy.default_model)})
            distinct = pairs.drop_duplicates()
            rates = {m: policy.hourly_rate(str(m)) for m in pd.unique(distinct.values.ravel())}
            same = {
                (given, job)
                for given, job in distinct.itertuples(index=False)
                if given == job or (rates[given] is not None and rates[given] == rates[job])
            }
            differs = ~pd.MultiIndex.from_frame(pairs).isin(list(same))
        elif column == "data_sharing":  # a discount claimed where job_created does not (R12)
            differs = (value.eq("true") & settled.ne("true").fillna(True)).to_numpy(dtype=bool)
        else:  # a payer named where job_created names none
            differs = settled.isna().to_numpy(dtype=bool)
        if not differs.any():
            continue
        first = np.flatnonzero(differs)
        first = first[~pd.Series(job[first]).duplicated().to_numpy()]  # a job's first record
        source = rows[first]
        was = settled.take(first)
        found.append(
            pd.DataFrame(
                {
                    "job": job[first],
                    "problem": (
                        f"{column} '"
                        + short_text(value.take(first)).to_numpy()
                        + "' on a "
                        + pd.Series(events["event"].array.take(source)).astype(str).to_numpy()
                        + " record ("
                        + pd.Series(events["source"].array.take(source)).astype(str).to_numpy()
                        + ":"
                        + pd.Series(events["line"].array.take(source)).astype(str).to_numpy()
                        + "), but "
                        + np.where(
                            was.isna().to_numpy(dtype=bool),
                            "none on job_created",
                            "'" + short_text(was.fillna("")).to_numpy() + "' on job_created",
                        )
                        + ": a job's settings are read from its job_created"
                    ),
                }
            )
        )
    return pd.concat(found, ignore_index=True) if found else no_problems()


def short_text(values: pd.Series, limit: int = 80) -> pd.Series:
    """Values as text of at most ``limit`` characters (a name can be anything long)."""
    text = values.astype(str)
    return text.where(text.str.len() <= limit, text.str.slice(0, limit - 1) + "…")


def setting_conflicts(created: pd.DataFrame, code_of: pd.Series) -> pd.DataFrame:
    """Problems of jobs whose several ``job_created`` give two values of one setting."""
    found = []
    # The usual log has one ``job_created`` per job: nothing to compare.
    for column in JOB_SETTING_COLUMNS if len(created) else ():  # the few settings, not jobs
        distinct = created[["job_id", column]].dropna().drop_duplicates()
        if distinct.empty:
            continue
        rank = distinct.groupby("job_id", sort=False).cumcount()
        first = distinct[rank == 0].set_index("job_id")[column]
        second = distinct[rank == 1].set_index("job_id")[column]
        if second.empty:
            continue
        found.append(
            pd.DataFrame(
                {
                    "job": code_of.reindex(second.index).to_numpy(),
                    "problem": (
                        f"job_created records disagree on {column}: '"
                        + short_text(first.reindex(second.index)).to_numpy()
                        + "' and '"
                        + short_text(second).to_numpy()
                        + "'"
                    ),
                }
            )
        )
    if not found:
        return pd.DataFrame(
            {"job": pd.Series([], dtype="int64"), "problem": pd.Series([], dtype="string")}
        )
    return pd.concat(found, ignore_index=True)
