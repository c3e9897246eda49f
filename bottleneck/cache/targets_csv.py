"""Targets from a CSV file as spreadsheets save them.

A sheet saved as CSV may start with a UTF-8 byte-order mark, end its lines with CRLF, quote
its fields, end with empty lines (or rows of empty cells), use ``;`` or a tab between fields
and a decimal comma (``12,5``) when the separator is not a comma. All of these read. What
cannot be read (not UTF-8 text, no header naming the columns, a value that is no number, one
image given two values) is one line naming the file and, where there is one, the line. Keys
are returned in one Unicode form (:func:`~bottleneck.storage.names.name_key`): a sheet written
on one system matches file names written on another.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, TextIO

from bottleneck.errors import UserError
from bottleneck.storage.names import name_key

KEY_COLUMNS = ("path", "id")
VALUE_COLUMNS = ("target", "price", "value")
DELIMITERS = ",;\t|"
SNIFF_BYTES = 64 << 10


def _dialects(sample: str) -> list[type[csv.Dialect] | csv.Dialect]:
    """The sample's sniffed dialect (delimiter, quoting), then the comma-separated one."""
    try:
        return [csv.Sniffer().sniff(sample, delimiters=DELIMITERS), csv.excel]
    except csv.Error:
        return [csv.excel]


def _number(text: str | None, decimal_comma: bool) -> float:
    """A cell as a float; ``12,5`` too where the fields are not comma-separated."""
    text = (text or "").strip()
    if decimal_comma and "," in text and "." not in text:
        text = text.replace(",", ".")
    return float(text)


def read_targets_csv(path: str | Path) -> dict[str, float]:
    """Targets from a CSV keyed by ``path`` (or ``id``) with a ``target`` (or ``price``, or
    ``value``) column; header names are matched without regard to case or spaces."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"targets CSV not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return _read(path, handle)
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text; save the sheet as CSV (UTF-8) and pass "
                        "that file.") from None


def _header(reader: Any) -> tuple[list[str], int | None, int | None]:
    """(header, key column, value column) from the first row that is not empty."""
    header = next((row for row in reader if any(cell.strip() for cell in row)), [])
    names = [cell.strip().lower() for cell in header]
    key_col = next((names.index(c) for c in KEY_COLUMNS if c in names), None)
    value_col = next((names.index(c) for c in VALUE_COLUMNS if c in names), None)
    return header, key_col, value_col


def _read(path: Path, handle: TextIO) -> dict[str, float]:
    sample = handle.read(SNIFF_BYTES)
    reader: Any = None
    try:
        seen: list[list[str]] = []
        for dialect in _dialects(sample):  # the sniffed one unless it finds no such header
            handle.seek(0)
            reader = csv.reader(handle, dialect, strict=True)  # an unclosed quote: an error
            header, key_col, value_col = _header(reader)
            seen.append(header)
            if key_col is not None and value_col is not None:
                break
        else:
            raise UserError(f"{path} needs a header with a 'path' (or 'id') column and a "
                            f"'target' (or 'price') column; found {seen[0]}.")
        decimal_comma = dialect.delimiter != ","
        values: dict[str, float] = {}
        lines: dict[str, int] = {}
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue  # an empty line, or a row of empty cells
            line = reader.line_num
            cell = row[value_col] if value_col < len(row) else None
            key = name_key(row[key_col].strip()) if key_col < len(row) else ""
            try:
                value = _number(cell, decimal_comma)
            except ValueError:
                raise UserError(f"{path}:{line}: {cell!r} is not a number.") from None
            if not key:
                raise UserError(f"{path}:{line}: the '{header[key_col].strip()}' cell is empty.")
            if key in values and values[key] != value:
                raise UserError(f"{path}:{line}: {key} has a second, different target (line "
                                f"{lines[key]} gives {values[key]:g}); give each image one.")
            values[key], lines[key] = value, line
    except csv.Error as exc:
        raise UserError(f"{path}:{reader.line_num}: not readable as CSV ({exc}).") from None
    return values
