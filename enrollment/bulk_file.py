"""The bulk-enrollment rows in and out: a CSV file read into rows (or a directory group's members,
read by enrollment/directory/groups.py, as rows), and the report of the rows that failed. No
database: enrollment/bulk.py checks the rows and writes them through the services.

Columns: mail, given_name, surname; optionally username (else the account is named by the
mailbox), department, key_type and certificate_type.
"""

from __future__ import annotations

import csv
import io
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

REQUIRED_COLUMNS = ("mail", "given_name", "surname")
OPTIONAL_COLUMNS = ("username", "department", "key_type", "certificate_type")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
# Header spellings people export from directories and spreadsheets (after lower-casing and
# turning spaces and hyphens into underscores).
_COLUMN_ALIASES = {
    "user_name": "username",
    "email": "mail",
    "e_mail": "mail",
    "first_name": "given_name",
    "givenname": "given_name",
    "last_name": "surname",
    "family_name": "surname",
    "sn": "surname",
    "keytype": "key_type",
    "cert_type": "certificate_type",
    "certificatetype": "certificate_type",
}


class BulkFileRefused(ValueError):
    """The file cannot be read as a bulk-enrollment CSV; the message is one readable line."""


@dataclass
class BulkRow:
    line: int  # where the row starts in the file (the header is line 1 when it comes first); a member's position
    values: dict[str, str]  # column -> text as in the file
    errors: list[tuple[str, str]] = field(default_factory=list)  # (field, reason); field "" for the row
    action: str = ""  # "create", "request", "skip"; "" while bad or unchecked
    note: str = ""
    employee_id: int | None = None  # for "request": the existing employee
    where: str = ""  # for rows not from a file: what names the row (a directory entry's DN)

    def value(self, name: str) -> str:
        return (self.values.get(name) or "").strip()

    @property
    def location(self) -> str:
        """How reports name the row: "line 3", or the directory entry's DN."""
        return self.where or f"line {self.line}"

    def refuse(self, name: str, reason: str) -> None:
        self.errors.append((name, reason))
        self.action = ""

    @property
    def bad(self) -> bool:
        return bool(self.errors)


@dataclass
class BulkPlan:
    rows: list[BulkRow]
    key_type: str  # defaults for rows that leave the column empty
    certificate_type: str

    def count(self, action: str) -> int:
        return sum(1 for row in self.rows if not row.bad and row.action == action)

    @property
    def bad_rows(self) -> list[BulkRow]:
        return [row for row in self.rows if row.bad]


@dataclass
class BatchOutcome:
    plan: BulkPlan
    written: int
    batch: object | None  # the EnrollmentBatch; None for a dry run


# A web request that issues in its own process (no broker) would take minutes for more: those go to
# `manage.py enroll` or to a portal with workers.
WEB_ISSUANCE_LIMIT = 100
MAX_RECORDED_FAILURES = 10_000


# --- 1. Reading the file -----------------------------------------------------------------------


def _column(text: str) -> str:
    name = unicodedata.normalize("NFKC", text).strip().lower().replace(" ", "_").replace("-", "_")
    return _COLUMN_ALIASES.get(name, name)


def _delimiter(first_line: str) -> str:
    """`,` unless the header has none and is separated by `;` (spreadsheets in many locales) or tabs."""
    if "," in first_line:
        return ","
    for candidate in (";", "\t"):
        if candidate in first_line:
            return candidate
    return ","


def _decode(data: bytes, name: str) -> str:
    columns = ",".join(REQUIRED_COLUMNS)
    if not data.strip():
        raise BulkFileRefused(f"{name} is empty: expected a header row ({columns}) and a row per employee.")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BulkFileRefused(f'{name} is UTF-16 text, not UTF-8: save it as "CSV UTF-8".')
    if b"\x00" in data[:65536]:
        raise BulkFileRefused(f"{name} is not a CSV file (it holds binary data): expected UTF-8 text, {columns}.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BulkFileRefused(
            f'{name} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}): save it as "CSV UTF-8".'
        ) from None


def bulk_file_read(data: bytes, *, name: str = "the file") -> list[BulkRow]:
    """The data rows of a bulk-enrollment CSV (see the module's docstring), or BulkFileRefused."""
    text = _decode(data, name)
    if not text.strip():
        raise BulkFileRefused(f"{name} is empty: expected a header row ({','.join(REQUIRED_COLUMNS)}) and employees.")
    first_line = text.strip().splitlines()[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line), strict=True)
    header: list[str] | None = None
    header_line = 0
    rows: list[BulkRow] = []
    end = 0
    try:
        for record in reader:
            start, end = end + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue  # blank lines, before the header or between rows
            if header is None:
                header, header_line = [_column(cell) for cell in record], start
                _header_check(header, header_line, name)
                continue
            row = BulkRow(line=start, values=dict(zip(header, record, strict=False)))
            if len(record) != len(header):
                row.refuse("", f"has {len(record)} fields; the header (line {header_line}) names {len(header)}.")
            rows.append(row)
    except csv.Error as exc:
        raise BulkFileRefused(f"{name} is not a readable CSV file (line {reader.line_num}: {exc}).") from None
    if not rows:
        raise BulkFileRefused(f"{name} has a header but no employees: add a row per employee below it.")
    return rows


def bulk_rows_from_records(records: list[tuple[str, dict[str, str], str]]) -> list[BulkRow]:
    """Rows from another source than a file: (where, values, problem) each, e.g. a directory group's
    members (where: the entry's DN; values: the columns plus `directory_dn`; problem: why the member
    cannot be enrolled, or "")."""
    rows = []
    for position, (where, values, problem) in enumerate(records, start=1):
        row = BulkRow(line=position, values=dict(values), where=where)
        if problem:
            row.refuse("", problem)
        rows.append(row)
    return rows


def _header_check(header: list[str], line: int, name: str) -> None:
    expected = ",".join(REQUIRED_COLUMNS) + " (optional: " + ", ".join(OPTIONAL_COLUMNS) + ")"
    known = [column for column in header if column in COLUMNS]
    if not known:
        raise BulkFileRefused(f"{name}: line {line} is not a header row; the first row names the columns: {expected}.")
    if missing := [column for column in REQUIRED_COLUMNS if column not in header]:
        raise BulkFileRefused(f"{name}: the header (line {line}) lacks {', '.join(missing)}; the columns: {expected}.")
    if unknown := [column for column in header if column not in COLUMNS]:
        shown = ", ".join(repr(column) for column in unknown)
        raise BulkFileRefused(f"{name}: the header (line {line}) has unknown columns {shown}; the columns: {expected}.")
    if repeated := sorted({column for column in header if header.count(column) > 1}):
        raise BulkFileRefused(f"{name}: the header (line {line}) names {', '.join(repeated)} more than once.")


# --- The report --------------------------------------------------------------------------------

# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets (CSV
# injection, OWASP): such a cell gets a leading apostrophe, which spreadsheets show as text.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def spreadsheet_safe(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


REPORT_COLUMNS = ("line", "username", "mail", "field", "reason")


def bulk_failures(plan: BulkPlan) -> list[dict[str, str]]:
    """Every failure: where (line or DN), username, mail, field ("row" for the whole row), reason."""
    return [
        {
            "where": row.where or str(row.line),
            "username": row.values.get("username") or "",
            "mail": row.values.get("mail") or "",
            "field": name or "row",
            "reason": reason,
        }
        for row in plan.bad_rows
        for name, reason in row.errors
    ]


def bulk_report_write(plan: BulkPlan, path: Path) -> int:
    """A CSV of every failure (one line per field and reason); mode 0600, it names people. Returns the lines."""
    lines = [tuple(failure.values()) for failure in bulk_failures(plan)]
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # UTF-8 with a byte order mark: spreadsheets then read the names right.
    with open(descriptor, "w", encoding="utf-8-sig", newline="") as report:
        writer = csv.writer(report, quoting=csv.QUOTE_ALL)
        writer.writerow(REPORT_COLUMNS)
        writer.writerows([spreadsheet_safe(cell) for cell in line] for line in lines)
    return len(lines)
