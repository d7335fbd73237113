"""The only code that reads M-PESA statements.

Two sources become the same StatementRow records (naive UTC, oldest first): the
org-portal statement export (CSV or XLSX) and the rows of the Pull Transactions API.
A file is read all-or-nothing: the first problem raises a StatementError naming its
row and column, so a half-read statement can never be imported. Plain Python on
purpose (no Odoo), so it can be tested and reused on its own.
"""

import csv
import datetime as dt
import io
import re
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from itertools import islice
from xml.etree.ElementTree import ParseError
from xml.parsers import expat

from odoo.addons.mpesa_payment.kenya_time import kenya_to_utc

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1e12")
ZERO = Decimal("0.00")
# Balances are printed to the cent; anything further off is a real gap.
BALANCE_TOLERANCE = Decimal("0.005")
# The header follows a short preamble (organisation, period, blank lines).
HEADER_SEARCH_ROWS = 30
# Limits of a statement file, so that one upload cannot exhaust the server (a file is
# read one row at a time, but imported in one request): beyond them it is refused,
# before it is read when its size or its rows can be checked first (XLSX).
MAX_ROWS = 100_000  # a month of a very busy paybill; split longer statements
MAX_COLUMNS = 50  # a statement has 13 columns: only a row's first 50 cells are read
MAX_CSV_BYTES = 32 * 2**20  # 100,000 CSV rows are about 22 MB
MAX_XLSX_BYTES = 8 * 2**20  # 100,000 rows are about 6 MB zipped
MAX_XLSX_UNPACKED_BYTES = 64 * 2**20  # the XML they unpack to: a zip bomb is bigger
MAX_ROW_CELLS = 1_000  # openpyxl parses all of a row before we keep its first cells
XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0"  # the pre-2007 binary Excel format

RECEIPT = "Receipt No."
COMPLETED = "Completion Time"
INITIATED = "Initiation Time"
DETAILS = "Details"
STATUS = "Transaction Status"
PAID_IN = "Paid In"
WITHDRAWN = "Withdrawn"
BALANCE = "Balance"
BALANCE_CONFIRMED = "Balance Confirmed"
REASON = "Reason Type"
OTHER_PARTY = "Other Party Info"
LINKED = "Linked Transaction ID"
ACCOUNT = "A/C No."
COLUMNS = (
    RECEIPT,
    COMPLETED,
    INITIATED,
    DETAILS,
    STATUS,
    PAID_IN,
    WITHDRAWN,
    BALANCE,
    BALANCE_CONFIRMED,
    REASON,
    OTHER_PARTY,
    LINKED,
    ACCOUNT,
)
# Without these a row cannot be imported; the others only enrich it.
REQUIRED = (RECEIPT, COMPLETED, DETAILS, STATUS, PAID_IN, WITHDRAWN)

DATE_FORMATS = tuple(
    f"{day} {time}"
    for day in ("%d-%m-%Y", "%Y-%m-%d", "%d/%m/%Y")
    for time in ("%H:%M:%S", "%H:%M")
)
# "1,000.00", "-5.00", "25000": thousands separators only in groups of three.
AMOUNT_RE = re.compile(r"[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?")
# A phone, possibly masked ("2547****126", "2547 ***** 126"); shortcodes are shorter.
PHONE_RE = re.compile(r"\+?[\d*][\d* ]{7,}[\d*]")
CHARGE_RE = re.compile(r"\bcharge\b", re.IGNORECASE)
REVERSAL_RE = re.compile(r"\breversal\b", re.IGNORECASE)


class StatementError(ValueError):
    """A statement that cannot be read; .row and .column say where (or None)."""

    def __init__(self, message, row=None, column=None):
        self.message = message
        self.row = row
        self.column = column
        super().__init__(_locate(message, row, column))


def _locate(message, row, column):
    if row is not None and column is not None:
        return f"Row {row}, column '{column}': {message}"
    if row is not None:
        return f"Row {row}: {message}"
    if column is not None:
        return f"Column '{column}': {message}"
    return message


@dataclass(frozen=True)
class StatementRow:
    receipt: str
    completed_at: dt.datetime
    initiated_at: dt.datetime | None
    details: str
    status: str
    paid_in: Decimal
    withdrawn: Decimal
    balance: Decimal | None
    reason_type: str
    other_party: str
    phone: str
    customer_name: str
    linked_receipt: str
    account_ref: str
    is_charge: bool

    @property
    def amount(self):
        """Signed: money in is positive, money out negative."""
        return self.paid_in - self.withdrawn

    @property
    def is_reversal(self):
        """Money M-PESA sent back for the payment the row links to (Details or
        Reason Type say "Reversal")."""
        return bool(
            self.withdrawn
            and self.linked_receipt
            and not self.is_charge
            and REVERSAL_RE.search(f"{self.details} {self.reason_type}")
        )


@dataclass(frozen=True)
class Statement:
    rows: list[StatementRow]
    skipped: int
    opening_balance: Decimal | None
    closing_balance: Decimal | None
    start: dt.datetime | None
    end: dt.datetime | None


# ---------------------------------------------------------------------------
# Cell values


def _text(value):
    """A cell as stripped text; XLSX gives numbers and booleans too."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _amount(value, row, column):
    """A signed amount to the cent, or None for an empty cell."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        amount = Decimal(repr(value))  # repr: the shortest exact form of a float
    else:
        text = _text(value)
        if not text:
            return None
        if not AMOUNT_RE.fullmatch(text):
            raise StatementError(f"{text!r} is not an amount.", row, column)
        amount = Decimal(text.replace(",", ""))
    # M-PESA moves at most millions: anything absurd is a broken cell, not money.
    if not amount.is_finite() or abs(amount) >= MAX_AMOUNT:
        raise StatementError(f"{value!r} is not an amount.", row, column)
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _parse_local_time(text):
    for fmt in DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def _time(value, row, column, required):
    """A date and time cell (text, or a real datetime in XLSX) -> naive UTC."""
    if isinstance(value, dt.datetime):
        return kenya_to_utc(value)
    text = _text(value)
    if not text:
        if required:
            raise StatementError("the date and time is missing.", row, column)
        return None
    local = _parse_local_time(text)
    if local is None:
        raise StatementError(
            f"{text!r} is not a date and time like 21-11-2023 12:13:25.", row, column
        )
    return kenya_to_utc(local)


def _split_party(other_party):
    """'2547****126 - NICHOLAS' -> ('2547****126', 'NICHOLAS')."""
    left, sep, right = other_party.partition("-")
    left = left.strip()
    is_number = bool(re.fullmatch(r"\+?[\d* ]+", left)) and any(
        c.isdigit() for c in left
    )
    if not is_number:
        return "", other_party
    phone = left if PHONE_RE.fullmatch(left) else ""  # a shortcode is no phone
    return phone, right.strip() if sep else ""


def _is_charge(reason_type, details, paid_in):
    # Details may quote the account the customer typed ("Acc. CHARGE"), so only
    # trust it when no money came in; Reason Type is set by M-PESA itself.
    if CHARGE_RE.search(reason_type):
        return True
    return not paid_in and bool(CHARGE_RE.search(details))


# ---------------------------------------------------------------------------
# Reading the file into rows of cells


def _decode(content):
    # Excel on Windows saves CSV in cp1252; latin-1 never fails (garbage then
    # simply has no header).
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    return content.decode("latin-1")


def _mb(size, digits=0):
    return f"{size / 2**20:,.{digits}f} MB"


def _too_many_rows():
    return StatementError(
        f"The statement has more than {MAX_ROWS:,} rows: export shorter periods and "
        "import them one after the other (rows already imported are not created twice)."
    )


def _check_size(content, limit, kind):
    if len(content) > limit:
        raise StatementError(
            f"The file is {_mb(len(content), 1)}: {kind} statement may be at most "
            f"{_mb(limit)}. Export shorter periods and import them one after the other."
        )


def _csv_rows(content):
    """The rows of a CSV, one at a time: a row numbered past MAX_ROWS with any
    content is refused, only the first MAX_COLUMNS cells of a row are kept."""
    reader = csv.reader(io.StringIO(_decode(content)))
    try:
        for number, cells in enumerate(reader, start=1):
            if number > MAX_ROWS and any(cells):
                raise _too_many_rows()
            yield cells[:MAX_COLUMNS]
    except csv.Error as exc:
        raise StatementError(f"The file is not a readable CSV file ({exc}).") from exc


# What openpyxl raises on a damaged workbook (ParseError: broken XML).
XLSX_ERRORS = (zipfile.BadZipFile, KeyError, OSError, ParseError, ValueError)


def _unreadable_xlsx():
    return StatementError("The file is not a readable XLSX workbook.")


def _check_xlsx(content):
    """Refuse a workbook too big to read before openpyxl opens it: its zipped size,
    what its members unpack to (as declared: zipfile never unpacks more than that,
    so a zip bomb is refused here) and, by a light scan of their XML, its rows."""
    _check_size(content, MAX_XLSX_BYTES, "an XLSX")
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        members = archive.infolist()
        if sum(member.file_size for member in members) > MAX_XLSX_UNPACKED_BYTES:
            raise StatementError(
                f"The workbook unpacks to more than {_mb(MAX_XLSX_UNPACKED_BYTES)}: "
                "this is not an M-PESA statement export, or too long a one."
            )
        for member in members:
            with archive.open(member) as stream:
                _scan_rows(stream)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
        # RuntimeError: encrypted; NotImplementedError: an unknown compression.
        raise _unreadable_xlsx() from exc


def _scan_rows(stream):
    """Count the cells of each row of a member (a worksheet, wherever the workbook
    puts it), in constant memory. A member that is not XML, or stops being XML, is
    left to openpyxl: it reads no further than this scan."""
    scan = _RowScan()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartElementHandler = scan.start
    try:
        while chunk := stream.read(2**16):
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except expat.ExpatError:
        return


class _RowScan:
    """Rows and cells as openpyxl numbers them: a row's r, or the previous one's + 1."""

    def __init__(self):
        self.row = 0
        self.cells = 0

    def start(self, name, attributes):
        tag = name.rpartition(" ")[2]
        if tag == "row":
            self.row = _row_number(attributes.get("r"), self.row)
            self.cells = 0
        elif tag == "c" and self.row:
            self.cells += 1
            if self.row > MAX_ROWS:
                raise _too_many_rows()
            if self.cells > MAX_ROW_CELLS:
                raise StatementError(
                    f"the row has more than {MAX_ROW_CELLS:,} cells: this is not an "
                    "M-PESA statement export.",
                    self.row,
                )


def _row_number(text, previous):
    try:
        return int(float(text)) if text else previous + 1
    except (ValueError, OverflowError):
        return previous + 1  # openpyxl refuses it when it reads the row


@contextmanager
def _xlsx_tables(content):
    """Every worksheet as an iterator of its rows, read while the workbook is open."""
    from openpyxl import load_workbook  # only XLSX needs it
    from openpyxl.utils.exceptions import InvalidFileException

    _check_xlsx(content)
    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (*XLSX_ERRORS, InvalidFileException) as exc:
        raise _unreadable_xlsx() from exc
    try:
        yield [_sheet_rows(sheet) for sheet in book.worksheets]
    finally:
        book.close()


def _sheet_rows(sheet):
    """Row i of the sheet, as its first MAX_COLUMNS values, one row at a time."""
    # Read-only mode trusts the file's declared size, which some generators get
    # wrong: read every row instead (_check_xlsx saw none with cells past MAX_ROWS).
    sheet.reset_dimensions()
    rows = sheet.iter_rows(max_row=MAX_ROWS, max_col=MAX_COLUMNS, values_only=True)
    try:
        yield from rows
    except XLSX_ERRORS as exc:
        raise _unreadable_xlsx() from exc


@contextmanager
def _read_tables(content, filename):
    """The candidate tables of the file, each an iterator of rows: one for a CSV,
    one per XLSX sheet. Nothing is read beyond what the caller takes."""
    if content.startswith(XLSX_MAGIC):
        with _xlsx_tables(content) as tables:
            yield tables
        return
    if content.startswith(XLS_MAGIC):
        raise StatementError(
            "This is an old binary Excel (.xls) file: save it as .xlsx or .csv."
        )
    if filename.lower().endswith(".xlsx"):
        raise StatementError(f"{filename} is not a readable XLSX workbook.")
    _check_size(content, MAX_CSV_BYTES, "a CSV")
    yield [_csv_rows(content)]


# ---------------------------------------------------------------------------
# Header


def _header_key(value):
    """'  RECEIPT NO. ' / '\\ufeffReceipt No' -> 'receipt no'."""
    text = " ".join(_text(value).replace("\ufeff", "").split())
    return text.lower().rstrip(".")


HEADER_KEYS = {_header_key(name): name for name in COLUMNS}


def _header_columns(cells):
    """{column name: index} of the known columns found in this row."""
    columns = {}
    for index, cell in enumerate(cells):
        name = HEADER_KEYS.get(_header_key(cell))
        if name and name not in columns:
            columns[name] = index
    return columns


def _find_header(table):
    """(row number, {column: index}) of the header row, or None. Takes the table's
    rows up to the header only: the rest are the records."""
    for number, cells in enumerate(islice(table, HEADER_SEARCH_ROWS), start=1):
        columns = _header_columns(cells)
        if RECEIPT in columns and COMPLETED in columns:
            for name in REQUIRED:
                if name not in columns:
                    raise StatementError(
                        "this column is missing from the header.", number, name
                    )
            return number, columns
    return None


def _locate_header(tables):
    """The first table with a header (its rows after the header), the header's row
    number and columns."""
    for table in tables:
        found = _find_header(table)
        if found:
            return table, *found
    raise StatementError(
        f"No header row with '{RECEIPT}' and '{COMPLETED}' in the first "
        f"{HEADER_SEARCH_ROWS} rows: this is not an M-PESA statement export."
    )


def _cell(cells, index):
    # Rows may be shorter than the header (trailing empty cells dropped).
    return cells[index] if index is not None and index < len(cells) else None


def _records(table, header_row, columns):
    """(row number, {column: cell}) for each row after the header."""
    for number, cells in enumerate(table, start=header_row + 1):
        yield number, {name: _cell(cells, columns.get(name)) for name in COLUMNS}


# ---------------------------------------------------------------------------
# Rows


def _statement_row(number, cells):
    paid_in = _amount(cells[PAID_IN], number, PAID_IN) or ZERO
    if paid_in < 0:
        raise StatementError(f"{paid_in} is negative.", number, PAID_IN)
    # The export shows money out as negative; we keep its size.
    withdrawn = abs(_amount(cells[WITHDRAWN], number, WITHDRAWN) or ZERO)
    if paid_in and withdrawn:
        raise StatementError(
            f"a row cannot have both Paid In ({paid_in}) and Withdrawn ({withdrawn}).",
            number,
            WITHDRAWN,
        )
    other_party = _text(cells[OTHER_PARTY])
    phone, customer_name = _split_party(other_party)
    details, reason_type = _text(cells[DETAILS]), _text(cells[REASON])
    return StatementRow(
        receipt=_text(cells[RECEIPT]).upper(),
        completed_at=_time(cells[COMPLETED], number, COMPLETED, required=True),
        initiated_at=_time(cells[INITIATED], number, INITIATED, required=False),
        details=details,
        status="Completed",
        paid_in=paid_in,
        withdrawn=withdrawn,
        balance=_amount(cells[BALANCE], number, BALANCE),
        reason_type=reason_type,
        other_party=other_party,
        phone=phone,
        customer_name=customer_name,
        linked_receipt=_text(cells[LINKED]).upper(),
        account_ref=_text(cells[ACCOUNT]),
        is_charge=_is_charge(reason_type, details, paid_in),
    )


def _completed_rows(records):
    """([(row number, StatementRow)], skipped count) in file order."""
    rows, skipped, seen = [], 0, {}
    for number, cells in records:
        receipt = _text(cells[RECEIPT]).upper()
        status = _text(cells[STATUS])
        completed = status.lower() == "completed"
        if not receipt and not completed:
            continue  # a blank, footer or total row: nothing to import
        if not status:
            raise StatementError("the status is missing.", number, STATUS)
        if not completed:
            skipped += 1  # Cancelled, Failed, Declined, Expired...: no money moved
            continue
        if not receipt:
            raise StatementError("a completed row has no receipt.", number, RECEIPT)
        if receipt in seen:
            raise StatementError(
                f"receipt {receipt} is also on row {seen[receipt]}.", number, RECEIPT
            )
        seen[receipt] = number
        rows.append((number, _statement_row(number, cells)))
    return rows, skipped


def _oldest_first(rows):
    # The export lists newest first: reverse it before the (stable) sort so that
    # rows of the same second, e.g. a payment and its charge, keep their true order.
    if len(rows) > 1 and rows[0][1].completed_at > rows[-1][1].completed_at:
        rows = rows[::-1]
    return sorted(rows, key=lambda item: item[1].completed_at)


def _check_balances(rows):
    """Each balance must be the previous one plus this row's amount."""
    expected = None
    for number, row in rows:
        if expected is not None:
            expected += row.amount
        if row.balance is None:
            continue  # carry the expected balance over a row without one
        if expected is not None and abs(row.balance - expected) > BALANCE_TOLERANCE:
            raise StatementError(
                f"the balance {row.balance:,} should be {expected:,} (the previous "
                f"balance plus this row's amount {row.amount:,}): rows are missing "
                "or the file was altered.",
                number,
                BALANCE,
            )
        expected = row.balance


def _opening_balance(rows):
    for index, row in enumerate(rows):
        if row.balance is not None:
            return row.balance - sum((r.amount for r in rows[: index + 1]), ZERO)
    return None


def _closing_balance(rows):
    for index in range(len(rows) - 1, -1, -1):
        if rows[index].balance is not None:
            after = rows[index + 1 :]
            return rows[index].balance + sum((r.amount for r in after), ZERO)
    return None


def parse_statement(content, filename=""):
    """An org-portal statement export (CSV or XLSX bytes) -> Statement.

    Raises StatementError on the first problem; nothing is returned then.
    """
    with _read_tables(content, filename) as tables:
        table, header_row, columns = _locate_header(tables)
        numbered, skipped = _completed_rows(_records(table, header_row, columns))
    numbered = _oldest_first(numbered)
    _check_balances(numbered)
    rows = [row for _number, row in numbered]
    return Statement(
        rows=rows,
        skipped=skipped,
        opening_balance=_opening_balance(rows),
        closing_balance=_closing_balance(rows),
        start=rows[0].completed_at if rows else None,
        end=rows[-1].completed_at if rows else None,
    )


# ---------------------------------------------------------------------------
# Pull Transactions API


def _pull_time(value, number):
    text = _text(value)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise StatementError(
            f"{text!r} is not an ISO date and time.", number, "trxDate"
        ) from exc
    return kenya_to_utc(moment)  # without an offset it is Kenya time


def _pull_row(number, record):
    if not isinstance(record, dict):
        raise StatementError("a transaction must be an object.", number)
    receipt = _text(record.get("transactionId")).upper()
    if not receipt:
        raise StatementError("the transaction id is missing.", number, "transactionId")
    amount = _amount(record.get("amount"), number, "amount")
    if amount is None or amount < 0:
        raise StatementError(
            f"{record.get('amount')!r} is not a positive amount.", number, "amount"
        )
    msisdn = record.get("msisdn")
    if isinstance(msisdn, bool):
        raise StatementError(f"{msisdn!r} is not a phone number.", number, "msisdn")
    phone, sender = _text(msisdn), _text(record.get("sender"))
    transaction_type = _text(record.get("transactiontype"))
    return StatementRow(
        receipt=receipt,
        completed_at=_pull_time(record.get("trxDate"), number),
        initiated_at=None,
        details="",
        status="Completed",
        paid_in=amount,
        withdrawn=ZERO,
        balance=None,
        reason_type=transaction_type,
        other_party=f"{phone} - {sender}" if sender else phone,
        phone=phone,
        customer_name=sender,
        linked_receipt="",
        account_ref=_text(record.get("billreference")),
        is_charge=False,
    )


def parse_pull_rows(rows):
    """Pull Transactions rows -> StatementRow list, oldest first.

    Takes the API's "Response" as is: Daraja nests the page's rows in one more
    list ([[{...}, ...]]), so inner lists are flattened. Errors name the row's
    1-based position and the key.
    """
    flat = []
    for item in rows:
        flat.extend(item if isinstance(item, list) else [item])
    parsed = [_pull_row(number, record) for number, record in enumerate(flat, start=1)]
    return sorted(parsed, key=lambda row: row.completed_at)
