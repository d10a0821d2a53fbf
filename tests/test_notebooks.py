"""The worked-example notebooks run top to bottom, and the committed copies keep their outputs.

Each notebook runs from a temporary copy in a fresh ``python3`` kernel, with ``notebooks/``
as its working directory (as Jupyter runs it) and its output files sent to a temporary
folder (``RFTCOST_NOTEBOOK_OUTPUT``). A failing cell fails the test; the last cell of each
notebook (tagged ``checks``) asserts the facts its text relies on.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip(
    "nbformat", reason="install the test extra: pip install -e '.[test]'"
)
nbclient = pytest.importorskip(
    "nbclient", reason="install the test extra: pip install -e '.[test]'"
)
kernelspec = pytest.importorskip("jupyter_client.kernelspec")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = (
    "01-estimate-before-launch.ipynb",
    "02-audit-an-invoice.ipynb",
    "03-team-spend.ipynb",
)
PASSED = "all checks passed"


def _images(cell: Any) -> int:
    return sum("image/png" in output.get("data", {}) for output in cell.get("outputs", []))


def _text(cell: Any) -> str:
    return "".join(
        output.get("text", "")
        for output in cell.get("outputs", [])
        if output.output_type == "stream"
    )


def _checks_cell(notebook: Any) -> Any:
    tagged = [c for c in notebook.cells if "checks" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is notebook.cells[-1], "one checks cell, the last"
    return tagged[0]


def test_the_notebooks_are_the_three_stories() -> None:
    assert tuple(sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))) == NAMES


def test_the_python3_kernel_is_this_python() -> None:
    # jupyter_client starts a kernelspec whose command is "python" with sys.executable.
    spec = kernelspec.KernelSpecManager().get_kernel_spec("python3")
    command = spec.argv[0]
    version = sys.version_info
    assert command in {"python", "python3", f"python{version.major}.{version.minor}"} or (
        Path(command).resolve() == Path(sys.executable).resolve()
    ), f"the python3 kernelspec runs {command!r}, not this environment's {sys.executable}"


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_keeps_its_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), (
        f"{name} is saved without its outputs or out of order: run python notebooks/execute.py"
    )
    assert not any(o.output_type == "error" for c in code for o in c.outputs)
    assert PASSED in _text(_checks_cell(notebook))
    assert sum(_images(c) for c in code) >= 1


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = shutil.copy(NOTEBOOKS / name, tmp_path / name)
    notebook = nbformat.read(copy, as_version=4)
    output = tmp_path / "output"
    monkeypatch.setenv("RFTCOST_NOTEBOOK_OUTPUT", str(output))
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        startup_timeout=300,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if a cell fails
    nbformat.write(notebook, copy)

    assert PASSED in _text(_checks_cell(notebook))
    # the figures the text talks about are drawn where the committed notebook has them
    committed = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert [_images(c) for c in notebook.cells] == [_images(c) for c in committed.cells]
    if name != NAMES[0]:
        assert sorted(p.suffix for p in output.iterdir()), "the notebook wrote its files"
