"""The entries below a folder of logs, and what its links to folders lead to.

``Path.rglob`` (Python 3.11, 3.12) never enters a linked folder and says nothing of it:
the logs a link to a folder holds were absent from the bill without a word. Here a
linked folder is entered when links are followed (each real folder once, so a loop
ends), and otherwise handed back to be noted as a link not followed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["UNREADABLE_LINK_NOTE", "entries_below", "skip_notes"]

UNREADABLE_LINK_NOTE = "a link that cannot be read, skipped"
"""The note for a dangling link or a link loop in a folder of logs (``validate`` exits 1)."""


def skip_notes(skipped: Sequence[Path], links: Sequence[Path] = ()) -> tuple[str, ...]:
    """The reading notes for files a folder scan left out: every path that bills (in
    memory, buckets, Spark) says in the same words what it did not read."""
    return tuple(
        f"{p}: {UNREADABLE_LINK_NOTE}"
        if p.is_symlink() and not p.exists()
        else f"{p}: not a regular file (a pipe, a socket, a device), skipped"
        if not p.is_file()
        else f"{p}: not an OpenAI export, skipped"
        if p.name.lower().endswith(".json")
        else f"{p}: not an event log (no job_id, ts, event), skipped"
        for p in skipped
    ) + tuple(f"{p}: a link out of the folder, not followed" for p in links)


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
