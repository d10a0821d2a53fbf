"""How right are estimates? Calibrate on simulated history, estimate unseen runs, compare.

    python benchmarks/estimate_accuracy.py [--history 300] [--plans 100] [--seed 1]

1. Simulate a history of jobs with varied settings and the realistic mix of
   outcomes (``rftcost.simulate``: failures, cancellations, pauses, crashes), bill
   it, and calibrate on it (``rftcost.calibration.calibrate``).
2. Simulate further runs with settings drawn the same way but never seen by the
   calibration, keep those that succeeded (pauses and crashes included), and bill
   them: their actual cost.
3. Estimate each of them from its settings alone and compare the P10 / P50 / P90
   total with the actual total.

Prints the median |P50 − actual| / actual, the share of actual totals inside
[P10, P90] (and below P10, above P90), the same without a calibration (built-in
priors), and the run time. Targets: median error ≤ 10%, coverage 70-90%.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from rftcost.calibration import Calibration, calibrate
from rftcost.engines import bill
from rftcost.estimate import Estimate, estimate
from rftcost.plan import plan_from_settings
from rftcost.simulate import random_settings, simulate_jobs


@dataclass(frozen=True)
class Accuracy:
    """Figures of one accuracy run."""

    n_history: int
    n_calibrated_jobs: int
    n_plans: int
    median_abs_error: float
    mean_error: float
    coverage: float
    below_p10: float
    above_p90: float
    prior_median_abs_error: float
    prior_coverage: float
    seconds: float
    calibration: Calibration

    def lines(self) -> list[str]:
        prior = (
            []
            if math.isnan(self.prior_median_abs_error)
            else [
                "without calibration (priors):   median error"
                f" {100 * self.prior_median_abs_error:.1f}%,"
                f" inside [P10, P90] {100 * self.prior_coverage:.1f}%"
            ]
        )
        return [
            f"history: {self.n_history} simulated jobs,"
            f" {self.n_calibrated_jobs} used by the calibration",
            *("  " + line for line in self.calibration.summary_lines()),
            f"held-out runs estimated: {self.n_plans}",
            f"median |P50 - actual| / actual: {100 * self.median_abs_error:.1f}%  (target <= 10%)",
            f"mean (P50 - actual) / actual:   {100 * self.mean_error:+.1f}%",
            f"actual inside [P10, P90]:       {100 * self.coverage:.1f}%  (target 70-90%;"
            f" below P10 {100 * self.below_p10:.1f}%, above P90 {100 * self.above_p90:.1f}%)",
            *prior,
            f"time: {self.seconds:.1f} s",
        ]


def _held_out(n_plans: int, seed: int) -> tuple[list[Any], Any]:
    """Unseen runs that succeeded, and their bill."""
    rng = np.random.default_rng(seed + 1_000)
    n = math.ceil(n_plans / 0.7) + 5
    settings = random_settings(rng, n)
    events = simulate_jobs(settings, seed=seed + 2_000)
    result = bill(events)
    jobs = result.jobs.reset_index(drop=True)
    ids = jobs["job_id"].astype(str).tolist()
    statuses = jobs["status"].astype(str).tolist()
    # simulate_jobs keeps the order of ``settings``; job codes are sorted by id.
    created = events[events["event"] == "job_created"]["job_id"].astype(str).tolist()
    by_id = dict(zip(created, settings, strict=True))
    chosen = [
        (job_id, by_id[job_id])
        for job_id, status in zip(ids, statuses, strict=True)
        if status == "succeeded"
    ]
    return chosen[:n_plans], result


def measure_accuracy(
    n_history: int = 300,
    n_plans: int = 100,
    seed: int = 1,
    draws: int = 2000,
    *,
    with_prior: bool = True,
) -> Accuracy:
    """Calibrate on ``n_history`` simulated jobs; estimate ``n_plans`` unseen successful runs."""
    started = time.perf_counter()
    history = bill(simulate_jobs(n_jobs=n_history, seed=seed))
    calibration = calibrate(history)
    chosen, actual_bill = _held_out(n_plans, seed)
    errors: list[float] = []
    prior_errors: list[float] = []
    inside: list[bool] = []
    below: list[bool] = []
    above: list[bool] = []
    prior_inside: list[bool] = []
    for job_id, settings in chosen:
        plan = plan_from_settings(settings.model_dump(), source=job_id)
        actual = actual_bill.job(job_id).total_amount
        assert actual is not None
        runs: list[tuple[list[float], Calibration | None]] = [(errors, calibration)]
        if with_prior:
            runs.append((prior_errors, None))
        for target, cal in runs:
            result: Estimate = estimate(
                plan, cal, draws=draws, seed=seed, at=_priced_at(actual_bill, job_id)
            )
            total = result.total_amount
            target.append(float((total.p50 - actual) / actual))
            hit = total.p10 <= actual <= total.p90
            if cal is None:
                prior_inside.append(hit)
            else:
                inside.append(hit)
                below.append(actual < total.p10)
                above.append(actual > total.p90)
    return Accuracy(
        n_history=n_history,
        n_calibrated_jobs=calibration.n_jobs,
        n_plans=len(chosen),
        median_abs_error=float(np.median(np.abs(errors))),
        mean_error=float(np.mean(errors)),
        coverage=float(np.mean(inside)),
        below_p10=float(np.mean(below)),
        above_p90=float(np.mean(above)),
        prior_median_abs_error=float(np.median(np.abs(prior_errors))) if with_prior else math.nan,
        prior_coverage=float(np.mean(prior_inside)) if with_prior else math.nan,
        seconds=time.perf_counter() - started,
        calibration=calibration,
    )


def _priced_at(result: Any, job_id: str) -> Any:
    """Token prices as of the job's billing event (prices change over time, R10)."""
    from datetime import datetime

    charge = result.job(job_id).charges[-1]
    return datetime.fromisoformat(charge.at.replace("Z", "+00:00"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=300, help="simulated jobs to calibrate on")
    parser.add_argument("--plans", type=int, default=100, help="unseen runs to estimate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--draws", type=int, default=2000, help="Monte Carlo draws per estimate")
    args = parser.parse_args()
    result = measure_accuracy(args.history, args.plans, args.seed, args.draws)
    print("\n".join(result.lines()))


if __name__ == "__main__":
    main()
