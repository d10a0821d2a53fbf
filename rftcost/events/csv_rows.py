"""CSV rows read one by one: the slow path of ``readers`` for a file pandas cannot read
whole (a row longer than its header, bytes that are not UTF-8, a quote never closed)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["csv_frame", "csv_rows"]


def csv_rows(reader: Any) -> Iterator[list[str] | str]:
    """The rows of a strict ``csv.reader``; where one is not CSV, why, with the file's lines
    it spans (a quote never closed runs to the end of the file: records were lost in it)."""
    while True:
        first = reader.line_num + 1
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield f"not CSV: {error} (file lines {first}-{reader.line_num} read as one record)"


def csv_frame(rows: list[list[str | None]], header: list[str], lines: list[int]) -> pd.DataFrame:
    """Rows read as text, under the header's names, with their ``line`` numbers."""
    # A repeated name is renamed as pandas' own CSV parser does ("job_id.1"): the same
    # columns whichever path read the file.
    seen: dict[str, int] = {}
    names = []
    for name in header:
        count = seen.get(name, 0)
        seen[name] = count + 1
        names.append(name if count == 0 else f"{name}.{count}")
    frame = pd.DataFrame(rows, columns=names, dtype=object)
    return frame.assign(line=np.asarray(lines, dtype="int64"))
