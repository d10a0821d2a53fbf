"""The entries below a folder of logs, and what its links to folders lead to.

``Path.rglob`` (Python 3.11, 3.12) never enters a linked folder and says nothing of it:
the logs a link to a folder holds were absent from the bill without a word. Here a
linked folder is entered when links are followed (each real folder once, so a loop
ends), and otherwise handed back to be noted as a link not followed.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["entries_below"]


def entries_below(root: Path, *, follow_links: bool) -> tuple[list[Path], list[Path]]:
    """Every file, link and folder below ``root`` (what ``root.rglob("*")`` gives), and the
    linked folders not entered (``follow_links`` false; a link to a folder inside
    ``root``, whose files are reached directly, is not one of them)."""
    found: list[Path] = []
    not_entered: list[Path] = []
    real_root = root.resolve()
    seen = {real_root}
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError:
            continue  # an unreadable folder: rglob passes it over too
        for entry in entries:
            path = Path(entry.path)
            found.append(path)
            if entry.is_dir(follow_symlinks=False):
                folders.append(path)
            elif entry.is_symlink() and path.is_dir():
                real = path.resolve()
                if real.is_relative_to(real_root):
                    continue  # its files are reached directly
                if not follow_links:
                    not_entered.append(path)
                elif real not in seen:
                    seen.add(real)
                    folders.append(path)
    return found, not_entered
