"""The estimator is right on runs it has not seen (estimator.md "Quality bar").

Calibrate on 300 simulated jobs with varied settings and the realistic mix of
outcomes, estimate 100 further successful runs from their settings alone, and
compare with what they were billed. ``benchmarks/estimate_accuracy.py`` prints
the same figures (and other seeds and sizes).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "estimate_accuracy.py"


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("estimate_accuracy", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_p50_is_within_10_percent_and_p10_p90_holds_about_80_percent() -> None:
    result = _benchmark().measure_accuracy(
        n_history=300, n_plans=100, seed=1, draws=1000, with_prior=False
    )
    print("\n".join(result.lines()))
    assert result.n_plans == 100
    assert result.median_abs_error <= 0.10
    assert 0.70 <= result.coverage <= 0.90
    assert abs(result.mean_error) < 0.05  # no systematic bias
