"""Grader token usage (R9): reading it from metrics events, turning it into events.

A metrics event carries grader tokens in ``data.model_graders_token_usage`` (per
grader model: train and eval prompt, cached and completion tokens) and, in the RFT
guide's shape, ``data.usage.graders[]`` (``…_tokens_count``); a model in both is
counted once. Here too: which model a grader runs (``method.reinforcement.grader``,
``multi`` graders included), the ``grader_usage`` events, cached tokens above prompt
tokens (a problem), and a model-grader job with no usage to read (amount unknown).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from rftcost.events.openai.frames import event_ids, lookup, optional_text, true_where
from rftcost.events.openai.model import ImportProblem
from rftcost.events.openai.values import InvalidObject, as_object, stripped_text, whole_number
from rftcost.prices import resolve_model_family

__all__ = [
    "captured_usage",
    "grader_models",
    "grader_usage_of",
    "runs_a_model",
    "same_model",
    "single_grader_model",
    "unknown_grader_problems",
    "usage_by_the_end",
    "usage_problems",
    "usage_rows",
    "usage_table",
]


_TOKEN_FIELDS = (
    "train_prompt_tokens",
    "train_completion_tokens",
    "train_cached_tokens",
    "eval_prompt_tokens",
    "eval_completion_tokens",
    "eval_cached_tokens",
)


def grader_models(grader: dict[str, Any]) -> tuple[str, ...]:
    """The models a grader runs: its own, or those of a ``multi`` grader's model graders."""
    models: set[str] = set()

    def visit(node: Any) -> None:
        if not isinstance(node, dict):
            return
        if node.get("type") in ("score_model", "label_model") and isinstance(
            node.get("model"), str
        ):
            models.add(node["model"])
        children = node.get("graders")
        if isinstance(children, dict) and "type" in children:  # the SDK's shape: one grader
            visit(children)
        elif isinstance(children, dict):  # the API's shape: graders by name
            for child in children.values():
                visit(child)
        elif isinstance(children, list):
            for child in children:
                visit(child)

    visit(grader)
    return tuple(sorted(models))


def single_grader_model(grader: dict[str, Any]) -> str | None:
    """The one model a grader (or all model graders of a ``multi`` grader) uses."""
    models = grader_models(grader)
    return models[0] if len(models) == 1 else None


def runs_a_model(grader: dict[str, Any]) -> bool:
    """Whether the grader, or a sub-grader of a ``multi`` grader, runs a model (R9)."""
    text = json.dumps(grader)
    return '"score_model"' in text or '"label_model"' in text


def grader_usage_of(data: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """A metrics event's grader tokens: one row per grader model, and the disagreements.

    ``data.model_graders_token_usage`` gives input = train + eval prompt tokens, cached =
    train + eval cached tokens, output = train + eval completion tokens per model (R9);
    ``data.usage.graders[]`` adds the models it lacks. Raises ``InvalidObject`` for
    counts that cannot be read.
    """
    usage_by_model = data.get("model_graders_token_usage") or {}
    if not isinstance(usage_by_model, dict):
        raise InvalidObject(
            "'data.model_graders_token_usage' is not an object keyed by grader model"
        )
    usage = []
    for grader_model, tokens in sorted(usage_by_model.items()):
        where = f"'data.model_graders_token_usage.{grader_model}'"
        if not isinstance(tokens, dict):
            raise InvalidObject(f"{where} is not an object of token counts")
        counts = {key: _token_count(tokens, key, f"{where}.{key}") for key in _TOKEN_FIELDS}
        usage.append(
            (
                grader_model,
                counts["train_prompt_tokens"] + counts["eval_prompt_tokens"],
                counts["train_cached_tokens"] + counts["eval_cached_tokens"],
                counts["train_completion_tokens"] + counts["eval_completion_tokens"],
            )
        )
    # The RFT guide's per-grader usage (data.usage.graders[]): the same tokens as
    # model_graders_token_usage when both are present, so a model counted there is not
    # counted again (kind 3); a model only here is added.
    # A model is the same under an alias and its dated snapshot (gpt-4o, gpt-4o-2024-08-06):
    # one field may name it one way, the other the other way.
    by_model = {model: (inp, cached, out) for model, inp, cached, out in usage}
    conflicts = []
    for model, documented in _usage_graders(data).items():
        same = [m for m in sorted(by_model) if same_model(m, model)]
        counted = model if model in by_model else same[0] if len(same) == 1 else None
        if counted is None:
            by_model[model] = documented
        elif documented != by_model[counted]:
            conflicts.append(
                f"grader {model}: data.model_graders_token_usage {by_model[counted]} and "
                f"data.usage.graders {documented} (input, cached, output) differ; the first is "
                "used"
            )
    rows = [
        {
            "grader_model": model,
            "input_tokens": inp,
            "cached_input_tokens": cached,
            "output_tokens": out,
        }
        for model, (inp, cached, out) in sorted(by_model.items())
    ]
    return rows, conflicts


def _token_count(counts: dict[str, Any], key: str, where: str) -> int:
    """A token count of a usage object. Absent or ``null`` is none used where the whole
    phase (``train_``, ``eval_``, ``valid_``) is (a step without validation); a ``null``
    beside counts of its phase is a count that cannot be read, the grader amount then
    unknown (not its prompt tokens priced as none)."""
    if key in counts and counts[key] is None:
        phase = key.split("_", 1)[0] + "_"
        if any(k.startswith(phase) and v not in (None, 0) for k, v in counts.items()):
            raise InvalidObject(f"{where} is null beside other counts: its tokens are unknown")
    return whole_number(counts.get(key), where)


_GRADER_COUNTS = (
    ("train_prompt_tokens_count", "valid_prompt_tokens_count"),
    ("train_cached_tokens_count", "valid_cached_tokens_count"),
    ("train_completion_tokens_count", "valid_completion_tokens_count"),
)


def _usage_graders(data: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    """``data.usage.graders[]`` → (input, cached, output) tokens per grader model."""
    graders = as_object(data.get("usage")).get("graders")
    if graders is None:
        return {}
    if not isinstance(graders, list):
        raise InvalidObject("'data.usage.graders' is not a list")
    found: dict[str, tuple[int, int, int]] = {}
    for index, grader in enumerate(graders):
        where = f"'data.usage.graders[{index}]'"
        if not isinstance(grader, dict):
            raise InvalidObject(f"{where} is not an object")
        counts = tuple(
            sum(_token_count(grader, key, f"{where}.{key}") for key in keys)
            for keys in _GRADER_COUNTS
        )
        model = stripped_text(grader.get("model"))
        if model is None:
            if any(counts):
                raise InvalidObject(f"{where} has token counts but no 'model' to price them by")
            continue
        before = found.get(model, (0, 0, 0))
        # Two sub-graders of one model (a multi grader) both run: their tokens add up.
        found[model] = (before[0] + counts[0], before[1] + counts[1], before[2] + counts[2])
    return found


def usage_table(events: pd.DataFrame) -> pd.DataFrame:
    """One row per metrics event and grader model, with its token counts."""
    columns = ["job_id", "id", "ts", "step", "file", "position"]
    metrics = events.loc[events["type"] == "metrics", [*columns, "usage"]].explode("usage")
    metrics = metrics[metrics["usage"].notna()].reset_index(drop=True)
    tokens = pd.DataFrame(
        metrics["usage"].tolist(),
        index=metrics.index,
        columns=["grader_model", "input_tokens", "cached_input_tokens", "output_tokens"],
    )
    return metrics[columns].join(tokens)


def usage_rows(usage: pd.DataFrame) -> pd.DataFrame:
    """One ``grader_usage`` event per metrics event and grader model that used tokens (R9)."""
    used = usage[["input_tokens", "cached_input_tokens", "output_tokens"]].gt(0).any(axis=1)
    # Cached above prompt tokens is the record's problem (``usage_problems``): rejected
    # once there, not a second time as the event it would make.
    rows = usage[used & ~(usage["cached_input_tokens"] > usage["input_tokens"])]
    return rows.drop(columns=["id", "step", "file", "position"]).assign(
        event="grader_usage",
        event_id=event_ids(rows["id"], "grader_usage", rows["grader_model"]),
    )


def captured_usage(
    usage: pd.DataFrame, checkpoints: pd.DataFrame, boundaries: pd.DataFrame
) -> pd.DataFrame:
    """A step's usage placed no later than the first checkpoint that holds the step (R5, R9).

    The API may stamp a step's checkpoint a moment before the step's metrics event (the
    usage's time): read as it stands, a failure after that checkpoint would lose the
    tokens of a step the checkpoint captured. ``checkpoints`` are ``checkpoint_saved``
    rows (``job_id``, ``ts``, ``step``); a checkpoint at a step holds every step up to it.
    Usage never moves across a pause or resume (``boundaries``: ``job_id``, ``ts``): into
    a charge issued already, or out of the segment a failure loses (R4, R5).
    """
    saved = checkpoints.loc[checkpoints["step"].notna(), ["job_id", "ts", "step"]]
    stepped = usage["step"].notna()
    if not len(saved) or not stepped.any():
        return usage
    # (An empty frame of announced checkpoints leaves the times' column of objects.)
    saved = saved.astype({"step": "int64", "job_id": "string", "ts": usage["ts"].dtype})
    # The earliest checkpoint at a step or any later one: what holds that step first.
    saved = saved.sort_values(["job_id", "step"], ascending=[True, False])
    saved = saved.assign(held_by=saved.groupby("job_id", sort=False)["ts"].cummin())
    steps = usage.loc[stepped, ["job_id", "step"]].astype({"step": "int64", "job_id": "string"})
    held = pd.merge_asof(
        steps.reset_index().sort_values("step"),
        saved[["job_id", "step", "held_by"]].sort_values("step"),
        on="step",
        by="job_id",
        direction="forward",
    ).set_index("index")["held_by"]
    held = held.reindex(usage.index)
    earlier = held.notna() & (held < usage["ts"])
    if earlier.any() and len(boundaries):
        moved = usage.loc[earlier, ["job_id", "ts"]].astype({"job_id": "string"})
        marks = (
            boundaries[["job_id", "ts"]]
            .astype({"job_id": "string", "ts": usage["ts"].dtype})
            .rename(columns={"ts": "boundary"})
        )
        last = pd.merge_asof(
            moved.reset_index().sort_values("ts"),
            marks.sort_values("boundary"),
            left_on="ts",
            right_on="boundary",
            by="job_id",
            direction="backward",
        ).set_index("index")["boundary"]
        crossed = last.notna() & (last > held.reindex(last.index))
        earlier &= ~crossed.reindex(usage.index, fill_value=False)
    return usage.assign(ts=usage["ts"].where(~earlier, held))


def usage_by_the_end(canonical: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Grader usage logged after its job was cancelled or succeeded, placed at that end (R7).

    The step in progress at a cancel is billed to the cancel (``steps.in_progress_rows``);
    its metrics event, and the usage it reports, may be logged a moment later. Left there,
    the tokens would be accrued work of a job that has ended (R8), never charged.
    """
    ends = canonical[canonical["event"].isin(["cancelled", "succeeded"])]
    usage = canonical["event"].eq("grader_usage")
    if ends.empty or not usage.any():
        return canonical, []
    end = lookup(canonical["job_id"], ends.groupby("job_id", sort=False)["ts"].max())
    late = usage & end.notna() & (canonical["ts"] > end)
    if not late.any():
        return canonical, []
    moved = canonical[late]
    last = ends.sort_values("ts", kind="stable").drop_duplicates("job_id", keep="last")
    ending = dict(zip(last["job_id"], zip(last["event"], last["ts"], strict=True), strict=True))
    notes = [
        f"job {job}: {count} grader usage record(s) logged after the job {ending[job][0]} "
        f"(at {ending[job][1].isoformat()}): counted in its final charge, with the step in "
        "progress (R7)"
        for job, count in moved.groupby("job_id", sort=False).size().items()
    ]
    return canonical.assign(ts=canonical["ts"].where(~late, end)), notes


def usage_problems(usage: pd.DataFrame) -> list[ImportProblem]:
    """Cached tokens above prompt tokens: a problem of the record (its job is invalid)."""
    bad = usage[usage["cached_input_tokens"] > usage["input_tokens"]]
    reason = (
        "event "
        + bad["id"]
        + ": grader "
        + bad["grader_model"]
        + " has more cached tokens ("
        + bad["cached_input_tokens"].astype("string")
        + ") than prompt tokens ("
        + bad["input_tokens"].astype("string")
        + "); prompt tokens include cached ones (R9)"
    )
    return [
        ImportProblem(file=str(file), position=str(position), reason=str(text), job_id=str(job))
        for file, position, text, job in zip(
            bad["file"], bad["position"], reason, bad["job_id"], strict=True
        )
    ]


def unknown_grader_problems(
    jobs: pd.DataFrame, steps: pd.DataFrame, usage: pd.DataFrame
) -> list[ImportProblem]:
    """A model-grader job with steps and no token usage to read, or none for one of the
    models its grader runs (a ``multi`` grader runs each on every sample): grader amount
    unknown (R9), never that model's tokens at $0."""
    used = usage[usage[["input_tokens", "output_tokens"]].gt(0).any(axis=1)]
    graded = jobs[true_where(jobs["model_grader"]) & jobs["job_id"].isin(steps["job_id"])]
    models_used: dict[str, set[str]] = {}
    pairs = used[["job_id", "grader_model"]].drop_duplicates()  # a job's few models
    for job_id, model in zip(
        pairs["job_id"].astype(str), pairs["grader_model"].astype(str), strict=True
    ):
        models_used.setdefault(job_id, set()).add(model)
    problems = []
    rows = zip(
        graded["job_id"].astype(str),
        graded["grader_model"],
        graded["grader_models"],
        graded["file"].astype(str),
        strict=True,
    )
    for job_id, grader_model, declared, file in rows:  # jobs of an export, not its events
        seen = models_used.get(job_id, set())
        if not seen:
            missing = (
                "its grader runs a model ("
                + (optional_text(grader_model) or "see method.reinforcement.grader")
                + ") but no metrics event has token usage to read"
            )
        else:
            unread = [str(model) for model in declared or () if not _reported(str(model), seen)]
            if not unread:
                continue
            missing = (
                f"its grader runs {', '.join(unread)} but no metrics event has token usage"
                f" of it (usage read for {', '.join(sorted(seen))})"
            )
        problems.append(
            ImportProblem(
                file=file,
                position="job",
                reason=(
                    f"grader amount unknown: {missing} "
                    "(data.usage.graders[] or data.model_graders_token_usage)"
                ),
                job_id=job_id,
            )
        )
    return problems


def _reported(model: str, seen: set[str]) -> bool:
    """Whether usage was read for ``model``: under its own id, or under the dated snapshot
    of an alias (``o3-mini`` → ``o3-mini-2025-01-31``), or the other way round."""
    return any(same_model(other, model) for other in seen)


def same_model(one: str, other: str) -> bool:
    """Whether two names are one model: equal, or an alias and a dated snapshot of it
    (``gpt-4o`` and ``gpt-4o-2024-08-06``; never ``gpt-4o`` and ``gpt-4o-mini``, nor two
    snapshots of different dates)."""
    if one == other:
        return True
    one_family, other_family = resolve_model_family(one), resolve_model_family(other)
    return (one_family == one and other_family == one) or (
        other_family == other and one_family == other
    )
