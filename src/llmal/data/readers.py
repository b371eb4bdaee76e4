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
"""
from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from llmal.data.validate import DatasetError

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


@dataclass
class RawTable:
    """Column names and records (lists of cell values) with the file line each record starts on."""

    columns: list[str]
    records: list[list[Any]]
    lines: list[int]


def detect_format(path: str | Path) -> str:
    name = Path(path).name.lower()
    for comp in COMPRESSION_SUFFIXES:
        if name.endswith(comp):
            name = name[: -len(comp)]
            break
    suffix = Path(name).suffix
    if suffix not in SUFFIX_FORMATS:
        raise DatasetError(
            f"{path}: cannot tell the file format from the suffix {suffix or '(none)'!r}; "
            f"use one of {sorted(SUFFIX_FORMATS)} or set dataset.format to one of {list(FORMATS)}"
            + (" (a .txt file of tab-separated lines: format: tsv)" if suffix == ".txt" else ""))
    return SUFFIX_FORMATS[suffix]


def read_options(path: str | Path, format: str | None = None, quoting: str | None = None,
                 header: bool | None = None, encoding: str | None = None) -> ReadOptions:
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise DatasetError(f"{path}: unknown format {fmt!r} (dataset.format); use one of {list(FORMATS)}")
    if quoting is not None and quoting not in QUOTING:
        raise DatasetError(f"{path}: dataset.quoting must be one of {list(QUOTING)}, got {quoting!r}")
    if quoting is not None and fmt not in DEFAULT_QUOTING:
        raise DatasetError(f"{path}: dataset.quoting applies to csv and tsv files, not {fmt}")
    if header is False and fmt not in DEFAULT_QUOTING:
        raise DatasetError(f"{path}: dataset.header: false applies to csv and tsv files, not {fmt} "
                           "(its records name their fields)")
    return ReadOptions(fmt, quoting or DEFAULT_QUOTING.get(fmt, "none"),
                       True if header is None else bool(header), encoding or "utf-8")


def read_text(path: Path, encoding: str) -> str:
    """The whole file decoded strictly; an undecodable byte names its line and byte offset."""
    opener = _OPENERS.get(path.suffix.lower())
    data = opener(path, "rb").read() if opener else path.read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise DatasetError(f"{path}: line {line}, byte {column} of the line: not valid {encoding} "
                           f"({e.reason}: {data[e.start:e.end]!r}); set dataset.encoding (e.g. "
                           "latin-1 or cp1252) or re-save the file as UTF-8") from None
    except LookupError:
        raise DatasetError(f"{path}: unknown encoding {encoding!r} (dataset.encoding)") from None
    return text[1:] if text.startswith(_BOM) else text


def _physical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number from 1, line without its line break) for every line; only \\n (and \\r\\n)
    end a line, so a lone \\r inside a text stays in it."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for i, line in enumerate(lines, start=1):
        yield i, line[:-1] if line.endswith("\r") else line


def _header(path: Path, first: list[str], line: int, header: bool) -> list[str]:
    if not header:
        return [str(i + 1) for i in range(len(first))]
    names = [c.strip() for c in first]
    seen: dict[str, int] = {}
    for pos, name in enumerate(names, start=1):
        if name == "":
            raise DatasetError(f"{path}: line {line} (header): column {pos} has no name; name it "
                               "or set dataset.header: false and give columns by position")
        if name in seen:
            raise DatasetError(f"{path}: line {line} (header): duplicate column name {name!r} "
                               f"(columns {seen[name]} and {pos}); rename one of them")
        seen[name] = pos
    return names


def _check_width(path: Path, line: int, fields: list[Any], width: int, delimiter: str,
                 quoting: str) -> None:
    if len(fields) == width:
        return
    hint = ""
    if quoting == "standard":
        hint = "; if the quotes in your texts are literal, set dataset.quoting: none"
    elif len(fields) > width and delimiter == ",":
        hint = "; cells holding commas need quoting: standard"
    raise DatasetError(f"{path}: line {line}: {len(fields)} field(s), but the header has {width}"
                       f"{hint}")


def read_delimited(path: Path, opts: ReadOptions) -> RawTable:
    delimiter = "\t" if opts.format == "tsv" else ","
    text = read_text(path, opts.encoding)
    if opts.quoting == "none":
        rows = [(n, line.split(delimiter)) for n, line in _physical_lines(text) if line.strip() != ""]
    else:
        rows = _quoted_records(path, text, delimiter, opts.format == "tsv")
    if not rows:
        raise DatasetError(f"{path}: the file is empty")
    columns = _header(path, rows[0][1], rows[0][0], opts.header)
    body = rows[1:] if opts.header else rows
    for n, fields in body:
        _check_width(path, n, fields, len(columns), delimiter, opts.quoting)
    return RawTable(columns, [[None if f == "" else f for f in fields] for _, fields in body],
                    [n for n, _ in body])


def _quoted_records(path: Path, text: str, delimiter: str, one_line_each: bool) -> list[tuple[int, list[str]]]:
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
                               "texts are literal, set dataset.quoting: none") from None
        last = reader.line_num
        if not fields or all(f.strip() == "" for f in fields) and len(fields) == 1:
            continue
        if one_line_each and last > start:
            raise DatasetError(
                f"{path}: line {start}: a quoted cell starting on this line runs to line {last}, "
                f"joining {last - start + 1} lines into one record; if the quotes in your texts are "
                "literal (e.g. a tweet starting with \"), set dataset.quoting: none (the tsv "
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


def read_json_records(path: Path, opts: ReadOptions) -> RawTable:
    text = read_text(path, opts.encoding)
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    if opts.format == "json" and text.lstrip(" \t\r\n").startswith("["):
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicate_keys(path, 0))
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path}: line {e.lineno}, column {e.colno}: not valid JSON ({e.msg})") from None
        for pos, rec in enumerate(data, start=1):
            if not isinstance(rec, dict):
                raise DatasetError(f"{path}: record {pos} of the array is not an object (got "
                                   f"{type(rec).__name__})")
            records.append(rec)
            lines.append(pos)
    else:
        for n, line in _physical_lines(text):
            if line.strip() == "":
                continue
            try:
                rec = json.loads(line, object_pairs_hook=_no_duplicate_keys(path, n))
            except json.JSONDecodeError as e:
                raise DatasetError(f"{path}: line {n}: not a JSON record ({e.msg} at column "
                                   f"{e.colno}): {line[:80]!r}") from None
            if not isinstance(rec, dict):
                raise DatasetError(f"{path}: line {n}: a JSON line must be an object with named "
                                   f"fields, got {type(rec).__name__}")
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
