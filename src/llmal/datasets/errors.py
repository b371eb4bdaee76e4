"""What is wrong with a data file: the error a user reads, and how it names the offending rows.

Row numbers count data rows from 1 in the order of the input file (the header is not a row), so
"row 17" is the 17th record; the item id is given too.
"""
from __future__ import annotations

import re

import pandas as pd

MAX_LISTED = 3  # offenders named in one message
MAX_SHOWN = 80  # characters of an offending value shown
# whitespace and characters that show nothing: zero-width spaces and joiners, word joiner, BOM,
# soft hyphen, directional marks, Hangul fillers, Mongolian vowel separator, braille blank
_INVISIBLE = re.compile("^[\\s\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e"
                        "\u200b-\u200f\u202a-\u202e\u2060-\u206f\u2800\u3164\ufeff\uffa0]*$")


def is_blank(text: object) -> bool:
    """True for a missing text and one made only of whitespace or invisible characters."""
    if text is None or text is pd.NA or (isinstance(text, float) and text != text):
        return True
    return bool(_INVISIBLE.match(str(text)))


class DatasetError(ValueError):
    """A dataset cannot be used as given; the message names the file, column and rows at fault."""


def describe_offenders(df: pd.DataFrame, mask: "pd.Series[bool]", column: str | None = None) -> str:
    """'row 17 (id 'x'), row 20 (id 'y') and 1 more' for the first rows where mask is true."""
    positions = [int(i) for i in mask.to_numpy().nonzero()[0]]
    ids = df["id"].astype(str).to_numpy() if "id" in df.columns else None
    parts = []

    def value(pos: int) -> str:  # at most MAX_SHOWN characters of a cell (it may hold a file)
        v = df[column].iloc[pos]
        shown = repr(v.item() if hasattr(v, "item") else v)
        return shown if len(shown) <= MAX_SHOWN else f"{shown[:MAX_SHOWN]}... ({len(shown):,} characters)"

    for pos in positions[:MAX_LISTED]:
        part = f"row {pos + 1}"
        if ids is not None:
            part += f" (id {ids[pos]!r}"
            part += f", value {value(pos)})" if column is not None else ")"
        elif column is not None:
            part += f" (value {value(pos)})"
        parts.append(part)
    more = len(positions) - MAX_LISTED
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")
