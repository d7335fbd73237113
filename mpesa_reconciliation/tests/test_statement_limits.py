"""Statement files too big to read safely are refused before they are read; a
statement without balances imports, and says what it could not check."""

import base64
import datetime as dt
import io
import os
import tracemalloc
import zipfile

from openpyxl import Workbook

from odoo.exceptions import UserError
from odoo.tests import BaseCase, tagged

from odoo.addons.mpesa_payment.tests.common import MpesaCommon

from ..statement import (
    MAX_COLUMNS,
    MAX_CSV_BYTES,
    MAX_ROW_CELLS,
    MAX_ROWS,
    MAX_XLSX_BYTES,
    MAX_XLSX_UNPACKED_BYTES,
    StatementError,
    parse_statement,
)

HEADER = (
    "Receipt No.",
    "Completion Time",
    "Initiation Time",
    "Details",
    "Transaction Status",
    "Paid In",
    "Withdrawn",
    "Balance",
    "Balance Confirmed",
    "Reason Type",
    "Other Party Info",
    "Linked Transaction ID",
    "A/C No.",
)
SHEET = "xl/worksheets/sheet1.xml"
MIB = 2**20


def _row(number, balance):
    """A completed payment of 100 (row 1 at 01-03-2026 10:00, Kenya time)."""
    return [
        f"SKM{number:07d}",
        dt.datetime(2026, 3, 1, 10) + dt.timedelta(minutes=number),
        None,
        "Pay Bill from 2547****149",
        "Completed",
        100,
        None,
        balance,
        True,
        "Pay Bill Online",
        "2547****149 - JOHN",
        None,
        f"NOSUCH{number}",
    ]


def _xlsx(rows, far_cell=False, header=HEADER):
    """A statement workbook: a preamble, the header, then the rows. far_cell puts one
    more cell in the sheet's last column (XFD) of every row."""
    book = Workbook()
    sheet = book.active
    sheet.append(["Jua Kali Traders Ltd"])
    sheet.append([])
    for cells in (header, *rows):
        sheet.append(cells)
        if far_cell:
            sheet.cell(sheet.max_row, 16384, "x")
    stream = io.BytesIO()
    book.save(stream)
    return stream.getvalue()


def _rezip(content, sheet_insert=(), extra=None):
    """The workbook with the chunks of sheet_insert written into its first sheet just
    before </sheetData>, and extra = (name, bytes) stored as one more member."""
    source = zipfile.ZipFile(io.BytesIO(content))
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info.filename)
            if info.filename != SHEET:
                target.writestr(info, body)
                continue
            head, tail = body.split(b"</sheetData>")
            with target.open(SHEET, "w", force_zip64=True) as member:
                member.write(head)
                for chunk in sheet_insert:
                    member.write(chunk)
                member.write(b"</sheetData>" + tail)
        if extra:
            target.writestr(zipfile.ZipInfo(extra[0]), extra[1])
    return stream.getvalue()


def _csv(header, rows):
    lines = [",".join(header)] + [",".join(cells) for cells in rows]
    return ("Jua Kali Traders Ltd\n\n" + "\n".join(lines) + "\n").encode()


@tagged("post_install", "-at_install")
class TestStatementLimits(MpesaCommon):
    """Through the import wizard, as the accountant uploads a file."""

    def _import(self, content, name):
        wizard = self.env["mpesa.statement.import"].create(
            {
                "provider_id": self.mpesa.id,
                "source": "file",
                "data_file": base64.b64encode(content),
                "filename": name,
            }
        )
        wizard.action_import()
        return wizard

    def assertRefused(self, content, name, message):
        count = self.env["mpesa.receipt"].search_count([])
        with self.assertRaisesRegex(UserError, f"Nothing was imported. .*{message}"):
            self._import(content, name)
        self.assertEqual(self.env["mpesa.receipt"].search_count([]), count)

    def _opening_lines(self):
        return self.env["account.bank.statement.line"].search_count(
            [
                ("journal_id", "=", self.mpesa.journal_id.id),
                ("payment_ref", "=like", "Opening balance%"),
            ]
        )

    def test_normal_xlsx_imports(self):
        content = _xlsx([_row(2, 25200), _row(1, 25100)])  # newest first
        wizard = self._import(content, "statement.xlsx")
        self.assertIn("2 new receipts", wizard.result)
        self.assertIn("Statement closing balance: KES 25,200.00", wizard.result)
        self.assertNotIn("not checked", wizard.result)
        self.assertEqual(self._opening_lines(), 1)

    def test_too_large_xlsx_refused(self):
        # A real workbook, made too big by an incompressible attachment.
        content = _rezip(
            _xlsx([_row(1, 25100)]),
            extra=("xl/media/scan.bin", os.urandom(MAX_XLSX_BYTES)),
        )
        self.assertGreater(len(content), MAX_XLSX_BYTES)
        self.assertRefused(
            content, "statement.xlsx", "an XLSX statement may be at most 8 MB"
        )

    def test_zip_bomb_refused_before_loading(self):
        # A small file whose sheet unpacks to more than the limit (white space).
        padding = b" " * MIB
        chunks = [padding] * (MAX_XLSX_UNPACKED_BYTES // MIB + 1)
        content = _rezip(_xlsx([_row(1, 25100)]), sheet_insert=chunks)
        self.assertLess(len(content), MIB)
        self.assertRefused(content, "statement.xlsx", "unpacks to more than 64 MB")

    def test_too_many_xlsx_rows_refused(self):
        # Footer-like rows (no receipt, no status) past the header: one too many.
        rows = (
            f'<row r="{n}"><c r="B{n}" t="inlineStr"><is><t>x</t></is></c></row>'
            for n in range(4, MAX_ROWS + 2)
        )
        content = _rezip(_xlsx([]), sheet_insert=[("".join(rows)).encode()])
        self.assertRefused(content, "statement.xlsx", "more than 100,000 rows")

    def test_too_large_csv_refused(self):
        content = _csv(HEADER, []) + b"\n" * MAX_CSV_BYTES
        self.assertRefused(
            content, "statement.csv", "a CSV statement may be at most 32 MB"
        )

    def test_too_many_csv_rows_refused(self):
        content = _csv(HEADER, []) + b",x\n" * MAX_ROWS
        self.assertRefused(content, "statement.csv", "more than 100,000 rows")

    def test_statement_without_balance_imports_unchecked(self):
        header = [name for name in HEADER if name != "Balance"]
        rows = [
            [
                f"SKN000000{n}",
                f"01-03-2026 1{n}:00:00",
                "",
                "Pay Bill",
                "Completed",
                "100.00",
                "",
                "TRUE",
                "Pay Bill Online",
                "2547****149 - JOHN",
                "",
                "NOSUCH",
            ]
            for n in (1, 2)
        ]
        wizard = self._import(_csv(header, rows), "statement.csv")
        self.assertIn("2 new receipts", wizard.result)
        self.assertIn(
            "the balances were not checked against the M-PESA journal", wizard.result
        )
        self.assertNotIn("closing balance", wizard.result)
        self.assertEqual(self._opening_lines(), 0, "no balance to open the journal at")
        receipts = self.env["mpesa.receipt"].search([("name", "like", "SKN")])
        self.assertEqual(len(receipts), 2)
        self.assertEqual(receipts.statement_line_id.mapped("amount"), [100.0, 100.0])


@tagged("post_install", "-at_install")
class TestStatementMemory(BaseCase):
    """The reader keeps a row's first cells only, one row at a time."""

    def test_wide_rows_read_in_bounded_memory(self):
        rows = [_row(n, 25000 + 100 * n) for n in range(2000, 0, -1)]
        content = _xlsx(rows, far_cell=True)
        tracemalloc.start()
        try:
            statement = parse_statement(content, "statement.xlsx")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.assertEqual(len(statement.rows), 2000)
        # 2,000 rows padded to 16,384 cells each took 260 MB.
        self.assertLess(peak, 40 * MIB, f"peak {peak / MIB:.0f} MiB")

    def test_only_the_first_columns_are_read(self):
        content = _xlsx([], header=(None,) * MAX_COLUMNS + HEADER)
        with self.assertRaisesRegex(StatementError, "No header row"):
            parse_statement(content, "statement.xlsx")

    def test_row_with_too_many_cells_refused(self):
        cells = "<c/>" * (MAX_ROW_CELLS + 1)
        content = _rezip(_xlsx([]), sheet_insert=[f'<row r="5">{cells}</row>'.encode()])
        with self.assertRaisesRegex(StatementError, "Row 5: .*more than 1,000 cells"):
            parse_statement(content, "statement.xlsx")
