"""Run the notebooks top to bottom and save them with their outputs.

    python notebooks/execute.py                      # every notebook in this folder
    python notebooks/execute.py notebooks/02-*.ipynb # some of them

Each notebook runs in a fresh ``python3`` kernel (the Python running this script) with
``notebooks/`` as its working directory, as Jupyter runs it; files the notebooks write go to
``notebooks/output/`` (git-ignored). Timing metadata is not recorded, so that a re-run changes
a notebook's file only where an output changed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def execute(path: Path, *, timeout: int = 300) -> nbformat.NotebookNode:
    """Execute the notebook at ``path`` (working directory ``notebooks/``) and return it."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(HERE)}},
    )
    client.execute()
    return notebook


def main(arguments: list[str]) -> None:
    paths = [Path(a) for a in arguments] or sorted(HERE.glob("[0-9]*.ipynb"))
    for path in paths:
        started = time.perf_counter()
        notebook = execute(path)
        nbformat.write(notebook, path)
        size = path.stat().st_size / 1024
        print(f"{path.name}: {time.perf_counter() - started:.1f} s, {size:.0f} KiB")


if __name__ == "__main__":
    main(sys.argv[1:])
