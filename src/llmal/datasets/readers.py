"""Read a table file record by record, so that no row is lost, merged or split silently.

Formats: csv, tsv, jsonl, json (an array of records, or JSON lines), parquet. Text formats are
decoded strictly (an encoding error names its line); CSV/TSV cells stay strings exactly as
written (no quote processing with `quoting: none`, no "NA" -> missing), except that empty cells
are missing values.

`quoting` (csv/tsv):
  none      every physical line is one record and a quote character is an ordinary character
            (the default for tsv: tweets that start with `"` must not swallow the lines after
            them). The record count equals the number of non-blank lines by construction; a line
            with more or fewer fields than the header is an error naming that line.
  standard  RFC 4180 quoting (the default for csv): a quoted cell may hold the delimiter, quotes
            (doubled) and line breaks. For tsv a record that spans several lines is an error
            naming the line it starts on (its quotes are almost always literal); for csv it is
            allowed, since multi-line cells are ordinary CSV.
`header: false` names the columns 1, 2, ... by position (as `cut -f` counts).
`skip_rows` (csv/tsv): that many physical lines at the top of the file are not read (a title
  line, or a header with an empty name together with `header: false`); line numbers in messages
  still count them.

JSON (`format: json`) is an array of records, JSON lines, or one object of columns as
`pandas.DataFrame.to_json` writes by default (`{"text": {"0": ...}, "label": {"0": ...}}`,
orient columns; its index is not read) or with orient split; other orientations (index, values,
table) are refused in one line naming the orientation.

Messages name the config keys under `ReadOptions.key` (`dataset`, or `annotators.<name>` for a
precomputed annotator's file).
"""
from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from llmal.datasets.errors import DatasetError

FORMATS = ("csv", "tsv", "jsonl", "json", "parquet")
QUOTING = ("none", "standard")
DEFAULT_QUOTING = {"csv": "standard", "tsv": "none"}
SUFFIX_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl",
                  ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
COMPRESSION_SUFFIXES = tuple(_OPENERS)
_BOM = "\ufeff"


@dataclass(frozen=True)
class ReadOptions:
    format: str
    quoting: str = "none"
    header: bool = True
    encoding: str = "utf-8"
    skip_rows: int = 0
    key: str = "dataset"  # the config keys these options come from, for messages


@dataclass
class RawTable:
    """Column names and records (lists of cell values) with the file line each record starts on."""

    columns: list[str]
    records: list[list[Any]]
    lines: list[int]


def detect_format(path: str | Path, key: str = "dataset") -> str:
    name = Path(path).name.lower()
    for comp in COMPRESSION_SUFFIXES:
        if name.endswith(comp):
            name = name[: -len(comp)]
            break
    suffix = Path(name).suffix
    if suffix not in SUFFIX_FORMATS:
        raise DatasetError(
            f"{path}: cannot tell the file format from the suffix {suffix or '(none)'!r}; "
            f"use one of {sorted(SUFFIX_FORMATS)} or set {key}.format to one of {list(FORMATS)}"
            + (" (a .txt file of tab-separated lines: format: tsv)" if suffix == ".txt" else ""))
    return SUFFIX_FORMATS[suffix]


def read_options(path: str | Path, format: str | None = None, quoting: str | None = None,
                 header: bool | None = None, encoding: str | None = None,
                 skip_rows: int | None = None, key: str = "dataset") -> ReadOptions:
    """The checked reader options of one file; `key` names their config keys in messages."""
    fmt = format or detect_format(path, key)
    if fmt not in FORMATS:
        raise DatasetError(f"{path}: unknown format {fmt!r} ({key}.format); use one of {list(FORMATS)}")
    if quoting is not None and quoting not in QUOTING:
        raise DatasetError(f"{path}: {key}.quoting must be one of {list(QUOTING)}, got {quoting!r}")
    if quoting is not None and fmt not in DEFAULT_QUOTING:
        raise DatasetError(f"{path}: {key}.quoting applies to csv and tsv files, not {fmt}")
    if header is False and fmt not in DEFAULT_QUOTING:
        raise DatasetError(f"{path}: {key}.header: false applies to csv and tsv files, not {fmt} "
                           "(its records name their fields)")
    skip = int(skip_rows or 0)
    if skip and fmt not in DEFAULT_QUOTING:
        raise DatasetError(f"{path}: {key}.skip_rows applies to csv and tsv files, not {fmt}")
    if skip < 0:
        raise DatasetError(f"{path}: {key}.skip_rows must be 0 or more, got {skip}")
    return ReadOptions(fmt, quoting or DEFAULT_QUOTING.get(fmt, "none"),
                       True if header is None else bool(header), encoding or "utf-8", skip, key)


def read_text(path: Path, encoding: str, key: str = "dataset") -> str:
    """The whole file decoded strictly; an undecodable byte names its line and byte offset."""
    opener = _OPENERS.get(path.suffix.lower())
    data = opener(path, "rb").read() if opener else path.read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise DatasetError(f"{path}: line {line}, byte {column} of the line: not valid {encoding} "
                           f"({e.reason}: {data[e.start:e.end]!r}); set {key}.encoding (e.g. "
                           "latin-1 or cp1252) or re-save the file as UTF-8") from None
    except LookupError:
        raise DatasetError(f"{path}: unknown encoding {encoding!r} ({key}.encoding)") from None
    return text[1:] if text.startswith(_BOM) else text


def _physical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number from 1, line without its line break) for every line; only \\n (and \\r\\n)
    end a line, so a lone \\r inside a text stays in it."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for i, line in enumerate(lines, start=1):
        yield i, line[:-1] if line.endswith("\r") else line


def _header(path: Path, first: list[str], line: int, opts: ReadOptions) -> list[str]:
    if not opts.header:
        return [str(i + 1) for i in range(len(first))]
    names = [c.strip() for c in first]
    seen: dict[str, int] = {}
    for pos, name in enumerate(names, start=1):
        if name == "":
            named = ", ".join(f"{n!r} = {i}" for i, n in enumerate(names, start=1) if n)
            raise DatasetError(
                f"{path}: line {line} (header): column {pos} has no name; name it in the file, or "
                f"read the columns by position: set {opts.key}.header: false and "
                f"{opts.key}.skip_rows: {line} (the lines up to the header are not read) and give "
                f"columns by number (1 = first column{'; here ' + named if named else ''})")
        if name in seen:
            raise DatasetError(f"{path}: line {line} (header): duplicate column name {name!r} "
                               f"(columns {seen[name]} and {pos}); rename one of them")
        seen[name] = pos
    return names


def _check_width(path: Path, line: int, fields: list[Any], width: int, delimiter: str,
                 opts: ReadOptions) -> None:
    if len(fields) == width:
        return
    hint = ""
    if opts.quoting == "standard":
        hint = f"; if the quotes in your texts are literal, set {opts.key}.quoting: none"
    elif len(fields) > width and delimiter == ",":
        hint = "; cells holding commas need quoting: standard"
    raise DatasetError(f"{path}: line {line}: {len(fields)} field(s), but the header has {width}"
                       f"{hint}")


def read_delimited(path: Path, opts: ReadOptions) -> RawTable:
    delimiter = "\t" if opts.format == "tsv" else ","
    text = read_text(path, opts.encoding, opts.key)
    if opts.quoting == "none":
        rows = [(n, line.split(delimiter)) for n, line in _physical_lines(text)
                if n > opts.skip_rows and line.strip() != ""]
    else:
        rest = text.split("\n", opts.skip_rows)[-1] if opts.skip_rows else text
        if opts.skip_rows and text.count("\n") < opts.skip_rows:
            rest = ""
        rows = [(n + opts.skip_rows, fields) for n, fields in
                _quoted_records(path, rest, delimiter, opts.format == "tsv", opts.key)]
    if not rows:
        raise DatasetError(f"{path}: the file is empty"
                           + (f" after {opts.key}.skip_rows: {opts.skip_rows}" if opts.skip_rows else ""))
    columns = _header(path, rows[0][1], rows[0][0], opts)
    body = rows[1:] if opts.header else rows
    for n, fields in body:
        _check_width(path, n, fields, len(columns), delimiter, opts)
    return RawTable(columns, [[None if f == "" else f for f in fields] for _, fields in body],
                    [n for n, _ in body])


def _quoted_records(path: Path, text: str, delimiter: str, one_line_each: bool,
                    key: str = "dataset") -> list[tuple[int, list[str]]]:
    """(line the record starts on, its fields) of every record. A cell may be as long as the
    file (csv's default field size limit of 131,072 characters is lifted while reading)."""
    with _no_field_size_limit():
        return _quoted_rows(path, text, delimiter, one_line_each, key)


class _no_field_size_limit:
    """Lift csv's process-wide field size limit for a block, then put the old one back."""

    def __enter__(self) -> None:
        self.old = csv.field_size_limit()
        limit = sys.maxsize
        while True:  # a C long may be 32 bits (Windows): halve until it fits
            try:
                csv.field_size_limit(limit)
                return
            except OverflowError:
                limit //= 2

    def __exit__(self, *exc: object) -> None:
        csv.field_size_limit(self.old)


def _quoted_rows(path: Path, text: str, delimiter: str, one_line_each: bool,
                 key: str) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"',
                        doublequote=True, strict=True)
    rows: list[tuple[int, list[str]]] = []
    last = 0
    while True:
        start = last + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise DatasetError(f"{path}: line {start}: broken quoting in the record starting on "
                               f"this line ({e}, at line {reader.line_num}); if the quotes in your "
                               f"texts are literal, set {key}.quoting: none") from None
        last = reader.line_num
        if not fields or all(f.strip() == "" for f in fields) and len(fields) == 1:
            continue
        if one_line_each and last > start:
            raise DatasetError(
                f"{path}: line {start}: a quoted cell starting on this line runs to line {last}, "
                f"joining {last - start + 1} lines into one record; if the quotes in your texts are "
                f"literal (e.g. a tweet starting with \"), set {key}.quoting: none (the tsv "
                "default)")
        rows.append((start, fields))
    return rows


def _no_duplicate_keys(path: Path, line: int):  # type: ignore[no-untyped-def]
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise DatasetError(f"{path}: line {line}: duplicate field {k!r} in one record")
            out[k] = v
        return out
    return hook


PANDAS_RECORDS = "df.to_json(path, orient='records', lines=True)"
JSON_FORMS = ("a .json file holds an array of records, JSON lines (one record per line), or one "
              "object of columns as pandas' to_json writes it")


def _orientation(obj: dict[str, Any]) -> str:
    """How a JSON object holds a table, in pandas' words: records (one record), columns
    ({column: {row: value}}), index ({row: {column: value}}), split or table."""
    if {"columns", "data"} <= set(obj) and isinstance(obj["data"], list):
        return "split"
    if {"schema", "data"} <= set(obj) and isinstance(obj["data"], list):
        return "table"
    if not obj or not all(isinstance(v, dict) for v in obj.values()):
        return "records"
    inner = {k for v in obj.values() for k in v}
    if all(str(k).lstrip("-").isdigit() for k in obj) and \
            not all(str(k).lstrip("-").isdigit() for k in inner):
        return "index"
    return "columns"


def _object_table(path: Path, obj: dict[str, Any], key: str) -> tuple[list[dict[str, Any]], list[int]]:
    """The records of one JSON object holding a whole table (orient columns or split)."""
    orient = _orientation(obj)
    if orient == "columns":
        rows = list(dict.fromkeys(r for column in obj.values() for r in column))
        records = [{c: obj[c].get(r) for c in obj} for r in rows]
    elif orient == "split":
        names = [str(c) for c in obj["columns"]]
        bad = next((i for i, row in enumerate(obj["data"], 1)
                    if not isinstance(row, list) or len(row) != len(names)), None)
        if bad is not None:
            raise DatasetError(f"{path}: row {bad} of \"data\" (pandas orient 'split') does not "
                               f"hold one value for each of the {len(names)} \"columns\"")
        records = [dict(zip(names, row)) for row in obj["data"]]
    elif orient == "records":
        records = [obj]
    else:
        raise DatasetError(f"{path}: a JSON table in pandas orient {orient!r} is not read; write "
                           f"records ({PANDAS_RECORDS}) or the default orient 'columns' "
                           f"({key}.format json reads an array of records, JSON lines, or "
                           "orient 'columns' or 'split')")
    return records, list(range(1, len(records) + 1))


def read_json_records(path: Path, opts: ReadOptions) -> RawTable:
    text = read_text(path, opts.encoding, opts.key)
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    head = text.lstrip(" \t\r\n")[:1]
    whole: Any = None
    if opts.format == "json" and head in "[{" and head:
        try:
            whole = json.loads(text, object_pairs_hook=_no_duplicate_keys(path, 0))
        except json.JSONDecodeError as e:
            if head == "[":
                raise DatasetError(f"{path}: line {e.lineno}, column {e.colno}: not valid JSON "
                                   f"({e.msg})") from None
            # several objects: JSON lines, read below line by line
    if isinstance(whole, list):
        for pos, rec in enumerate(whole, start=1):
            if not isinstance(rec, dict):
                raise DatasetError(
                    f"{path}: record {pos} of the array is not an object (got {type(rec).__name__})"
                    + ("; an array of rows is pandas orient 'values', which has no column names: "
                       f"write records ({PANDAS_RECORDS})" if isinstance(rec, list) else ""))
            records.append(rec)
            lines.append(pos)
    elif isinstance(whole, dict):
        records, lines = _object_table(path, whole, opts.key)
    else:
        for n, line in _physical_lines(text):
            if line.strip() == "":
                continue
            try:
                rec = json.loads(line, object_pairs_hook=_no_duplicate_keys(path, n))
            except json.JSONDecodeError as e:
                raise DatasetError(f"{path}: line {n}: not a JSON record ({e.msg} at column "
                                   f"{e.colno}): {line[:80]!r}"
                                   + (f"; {JSON_FORMS}" if opts.format == "json" else "")) from None
            if not isinstance(rec, dict):
                raise DatasetError(f"{path}: line {n}: a JSON line must be an object with named "
                                   f"fields, got {type(rec).__name__}"
                                   + (f"; {JSON_FORMS}" if opts.format == "json" else ""))
            orient = _orientation(rec)
            if orient != "records":
                raise DatasetError(f"{path}: line {n}: one object holding a whole table (pandas "
                                   f"orient {orient!r}), not a record; JSON lines hold one record "
                                   f"per line ({PANDAS_RECORDS})"
                                   + (f", or set {opts.key}.format: json to read orient "
                                      f"{orient!r}" if orient in ("columns", "split") else ""))
            records.append(rec)
            lines.append(n)
    if not records:
        raise DatasetError(f"{path}: the file holds no records")
    columns = list(dict.fromkeys(k for rec in records for k in rec))
    return RawTable(columns, [[rec.get(c) for c in columns] for rec in records], lines)


def read_raw(path: str | Path, opts: ReadOptions) -> RawTable:
    """Every record of the file, in file order, with its line (a Parquet record: its row)."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: file not found")
    if opts.format in ("csv", "tsv"):
        return read_delimited(path, opts)
    if opts.format in ("jsonl", "json"):
        return read_json_records(path, opts)
    raise DatasetError(f"{path}: read_raw does not read {opts.format}")
