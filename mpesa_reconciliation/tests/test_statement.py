import datetime as dt
import io
import threading
import zipfile
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

from openpyxl import Workbook

from odoo.tests import BaseCase, tagged

from ..statement import (
    Statement,
    StatementError,
    StatementRow,
    parse_pull_rows,
    parse_statement,
)

DATA = Path(__file__).parent / "data"
HEADER = (
    "Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,"
    "Withdrawn,Balance,Balance Confirmed,Reason Type,Other Party Info,"
    "Linked Transaction ID,A/C No."
)
# A valid payment row (Kenya 12:13:25 = 09:13:25 UTC), to build small files from.
PAYMENT = (
    "RKL51ZDR4F,21-11-2023 12:13:25,21-11-2023 12:13:25,"
    "Pay Bill from 2547****126 - NICHOLAS Acc. INV00042,Completed,"
    '"1,000.00",,"25,000.00",TRUE,Pay Bill Online,2547****126 - NICHOLAS,,INV00042'
)


def _read(name):
    return (DATA / name).read_bytes()


def _parse(name):
    return parse_statement(_read(name), name)


def _csv(*lines):
    """A small CSV: the header on row 1, then the given rows."""
    return ("\n".join((HEADER, *lines)) + "\n").encode()


def _xlsx(rows, cover=False):
    """An XLSX with the given rows (None = an empty row), after a cover sheet."""
    book = Workbook()
    sheet = book.active
    if cover:
        sheet.title = "Cover"
        sheet["A1"] = "ACME TRADERS LIMITED"
        sheet = book.create_sheet("Statement")
    for number, cells in enumerate(rows, start=1):
        for col, value in enumerate(cells or (), start=1):
            sheet.cell(number, col, value)
    stream = io.BytesIO()
    book.save(stream)
    return stream.getvalue()


def _utc(*args):
    return dt.datetime(*args)


@tagged("post_install", "-at_install")
class TestStatementCsv(BaseCase):
    def test_documented_sample(self):
        statement = _parse("org_portal_statement_sample.csv")
        payment, charge = statement.rows
        self.assertEqual(payment.receipt, "RKL51ZDR4F")
        self.assertEqual(payment.completed_at, _utc(2023, 11, 21, 9, 13, 25))
        self.assertEqual(payment.initiated_at, _utc(2023, 11, 21, 9, 13, 25))
        self.assertEqual(payment.paid_in, Decimal("1000.00"))
        self.assertEqual(payment.withdrawn, Decimal(0))
        self.assertEqual(payment.amount, Decimal("1000.00"))
        self.assertEqual(payment.balance, Decimal("25000.00"))
        self.assertEqual(payment.status, "Completed")
        self.assertEqual(payment.reason_type, "Pay Bill Online")
        self.assertEqual(payment.account_ref, "INV00042")
        self.assertEqual(payment.phone, "2547****126")
        self.assertEqual(payment.customer_name, "NICHOLAS")
        self.assertEqual(payment.linked_receipt, "")
        self.assertFalse(payment.is_charge)
        self.assertEqual(charge.receipt, "RKL51ZDR4G")
        self.assertEqual(charge.amount, Decimal("-5.00"))
        self.assertEqual(charge.withdrawn, Decimal("5.00"))
        self.assertEqual(charge.linked_receipt, "RKL51ZDR4F")
        self.assertTrue(charge.is_charge)
        self.assertEqual(statement.opening_balance, Decimal("24000.00"))
        self.assertEqual(statement.closing_balance, Decimal("24995.00"))
        self.assertEqual(statement.start, _utc(2023, 11, 21, 9, 13, 25))
        self.assertEqual(statement.end, _utc(2023, 11, 21, 9, 20, 1))
        self.assertEqual(statement.skipped, 0)

    def test_reversal_row(self):
        """Money sent back for the payment it links to is a reversal; the charge
        on that reversal is a charge."""
        statement = parse_statement(
            _csv(
                PAYMENT,
                "RKL51ZDR4H,21-11-2023 13:00:00,,Reversal,Completed,,-1000.00,,,"
                "Reversal,2547****126 - NICHOLAS,RKL51ZDR4F,",
                "RKL51ZDR4J,21-11-2023 13:00:01,,Reversal Charge,Completed,,-5.00,,,"
                "Business Charge,,RKL51ZDR4H,",
            )
        )
        self.assertEqual(
            [(row.receipt, row.is_reversal) for row in statement.rows],
            [("RKL51ZDR4F", False), ("RKL51ZDR4H", True), ("RKL51ZDR4J", False)],
        )

    def test_preamble_skipped_and_rows_oldest_first(self):
        # Six preamble rows (one blank), newest first; the charge shares its
        # payment's second and must still come after it.
        statement = _parse("statement_preamble.csv")
        self.assertEqual(
            [row.receipt for row in statement.rows],
            ["RKK7A1B2C3", "RKK7B1C2D3", "RKL2D4E5F6", "RKL3G7H8I9", "RKM4J0K1L2"],
        )
        self.assertEqual(
            [row.amount for row in statement.rows],
            [Decimal(v) for v in ("1000", "-5", "12345.50", "-10000", "250")],
        )

    def test_quoted_thousands_and_negative_withdrawn(self):
        rows = {row.receipt: row for row in _parse("statement_preamble.csv").rows}
        self.assertEqual(rows["RKL2D4E5F6"].paid_in, Decimal("12345.50"))
        self.assertEqual(rows["RKL2D4E5F6"].balance, Decimal("61840.50"))
        business_payment = rows["RKL3G7H8I9"]
        self.assertEqual(business_payment.paid_in, Decimal(0))
        self.assertEqual(business_payment.withdrawn, Decimal("10000.00"))
        self.assertEqual(business_payment.amount, Decimal("-10000.00"))
        self.assertEqual(business_payment.balance, Decimal("51840.50"))
        self.assertFalse(business_payment.is_charge)

    def test_kenya_times_become_naive_utc(self):
        statement = _parse("statement_preamble.csv")
        newest = statement.rows[-1]
        # 22-11-2023 01:15:00 in Nairobi is the previous day in UTC.
        self.assertEqual(newest.completed_at, _utc(2023, 11, 21, 22, 15, 0))
        self.assertEqual(newest.initiated_at, _utc(2023, 11, 21, 22, 14, 58))
        self.assertIsNone(newest.completed_at.tzinfo)
        self.assertEqual(statement.start, _utc(2023, 11, 20, 6, 5, 11))
        self.assertEqual(statement.end, _utc(2023, 11, 21, 22, 15, 0))

    def test_cancelled_row_skipped_and_counted(self):
        statement = _parse("statement_preamble.csv")
        self.assertEqual(statement.skipped, 1)
        self.assertNotIn("RKK8X2Y3Z4", [row.receipt for row in statement.rows])
        self.assertEqual({row.status for row in statement.rows}, {"Completed"})

    def test_charge_row_linked_to_its_payment(self):
        statement = _parse("statement_preamble.csv")
        charges = [row for row in statement.rows if row.is_charge]
        self.assertEqual([row.receipt for row in charges], ["RKK7B1C2D3"])
        charge = charges[0]
        self.assertEqual(charge.linked_receipt, "RKK7A1B2C3")
        self.assertEqual(charge.reason_type, "Business Pay Bill Charge")
        self.assertEqual(charge.withdrawn, Decimal("5.00"))
        self.assertEqual((charge.other_party, charge.phone), ("", ""))

    def test_charge_detection(self):
        # Details quote what the customer typed: "Acc. CHARGE 12" is no charge.
        typed = PAYMENT.replace("Acc. INV00042", "Acc. CHARGE 12")
        # No Reason Type: the Details of a withdrawal still mark the charge.
        charge = (
            "RKL51ZDR4G,21-11-2023 12:20:01,,Business Pay Bill Charge,Completed,,"
            '-5.00,"24,995.00",TRUE,,,RKL51ZDR4F,'
        )
        # "Recharge" is not the word "charge".
        airtime = (
            "RKL51ZDR4H,21-11-2023 12:30:00,,Airtime Recharge,Completed,,"
            '-50.00,"24,945.00",TRUE,Airtime Recharge,,,'
        )
        rows = parse_statement(_csv(airtime, charge, typed)).rows
        self.assertEqual(
            [(row.receipt, row.is_charge) for row in rows],
            [("RKL51ZDR4F", False), ("RKL51ZDR4G", True), ("RKL51ZDR4H", False)],
        )

    def test_masked_phone_and_customer_name(self):
        rows = {row.receipt: row for row in _parse("statement_preamble.csv").rows}
        payment = rows["RKL2D4E5F6"]
        self.assertEqual(payment.other_party, "2547****881 - MARY WANJIKU")
        self.assertEqual(payment.phone, "2547****881")
        self.assertEqual(payment.customer_name, "MARY WANJIKU")
        self.assertEqual(payment.account_ref, "inv 77")
        self.assertEqual(
            payment.details, "Pay Bill from 2547****881 - MARY WANJIKU Acc. inv 77"
        )
        self.assertEqual(rows["RKL3G7H8I9"].customer_name, "JAMES OTIENO")

    def test_footer_and_blank_rows_ignored(self):
        # The file ends with a blank row and a "Total" row without a receipt.
        statement = _parse("statement_preamble.csv")
        self.assertEqual(len(statement.rows), 5)
        self.assertEqual(sum(r.paid_in for r in statement.rows), Decimal("13595.50"))
        self.assertEqual(sum(r.withdrawn for r in statement.rows), Decimal("10005.00"))

    def test_opening_and_closing_balance(self):
        statement = _parse("statement_preamble.csv")
        self.assertEqual(statement.opening_balance, Decimal("48500.00"))
        self.assertEqual(statement.closing_balance, Decimal("52090.50"))
        self.assertIsInstance(statement, Statement)
        self.assertIsInstance(statement.rows[0], StatementRow)

    def test_header_and_value_variants(self):
        # UTF-8 BOM, odd case and spaces in the header, two extra empty columns,
        # ISO and slash dates, lower-case receipt and status, no balances.
        statement = _parse("statement_variants.csv")
        rows = {row.receipt: row for row in statement.rows}
        self.assertEqual(
            list(rows),
            ["SA11AAAAA1", "SA11AAAAA2", "SA11AAAAA6", "SA11AAAAA7", "SA11AAAAA8"],
        )
        self.assertEqual(rows["SA11AAAAA1"].completed_at, _utc(2023, 12, 1, 5, 0, 0))
        self.assertEqual(rows["SA11AAAAA1"].initiated_at, _utc(2023, 12, 1, 4, 59, 58))
        self.assertEqual(rows["SA11AAAAA1"].paid_in, Decimal("2500.00"))
        self.assertEqual(rows["SA11AAAAA1"].phone, "254722000111")
        self.assertEqual(rows["SA11AAAAA1"].customer_name, "JOHN DOE")
        self.assertEqual(rows["SA11AAAAA2"].completed_at, _utc(2023, 12, 1, 6, 30, 15))
        self.assertIsNone(rows["SA11AAAAA2"].initiated_at)
        self.assertEqual(rows["SA11AAAAA2"].paid_in, Decimal("150250.00"))
        self.assertEqual(rows["SA11AAAAA2"].phone, "2547 ***** 126")
        self.assertEqual(rows["SA11AAAAA2"].status, "Completed")
        # A short row (trailing cells left out) paid to a till: a shortcode, no phone.
        supplier = rows["SA11AAAAA6"]
        self.assertEqual(supplier.completed_at, _utc(2023, 12, 1, 23, 59, 59))
        self.assertEqual(supplier.amount, Decimal("-700.50"))
        self.assertEqual((supplier.phone, supplier.customer_name), ("", "SUPPLIER LTD"))
        self.assertEqual((supplier.linked_receipt, supplier.account_ref), ("", ""))
        self.assertIsNone(supplier.balance)
        # Failed, Declined and Expired rows.
        self.assertEqual(statement.skipped, 3)
        self.assertIsNone(statement.opening_balance)
        self.assertIsNone(statement.closing_balance)

    def test_equal_times_keep_file_order(self):
        # The variants file is oldest first: rows 7 and 8 share their second.
        receipts = [row.receipt for row in _parse("statement_variants.csv").rows]
        self.assertEqual(receipts[-2:], ["SA11AAAAA7", "SA11AAAAA8"])

    def test_header_only_is_an_empty_statement(self):
        statement = parse_statement(_csv(), "empty.csv")
        self.assertEqual(
            statement,
            Statement(
                rows=[],
                skipped=0,
                opening_balance=None,
                closing_balance=None,
                start=None,
                end=None,
            ),
        )

    def test_windows_encoded_csv(self):
        content = _csv(PAYMENT.replace("NICHOLAS,,", "JOSÉ,,")).decode()
        row = parse_statement(content.encode("cp1252")).rows[0]
        self.assertEqual(row.customer_name, "JOSÉ")

    def test_balance_carried_over_a_row_without_balance(self):
        middle = PAYMENT.replace("RKL51ZDR4F", "RKL51ZDR4H").replace('"25,000.00"', "")
        newest = (
            'RKL51ZDR4J,21-11-2023 13:00:00,,Pay Bill,Completed,"1,000.00",,'
            '"27,000.00",TRUE,Pay Bill Online,,,'
        )
        statement = parse_statement(_csv(newest, middle, PAYMENT))
        self.assertEqual(
            [row.balance for row in statement.rows],
            [Decimal("25000.00"), None, Decimal("27000.00")],
        )
        self.assertEqual(statement.opening_balance, Decimal("24000.00"))
        self.assertEqual(statement.closing_balance, Decimal("27000.00"))
        wrong = newest.replace("27,000.00", "26,000.00")
        with self.assertRaises(StatementError) as caught:
            parse_statement(_csv(wrong, middle, PAYMENT))
        self.assertEqual(
            (caught.exception.row, caught.exception.column), (2, "Balance")
        )

    def test_closing_balance_after_rows_without_balance(self):
        newest = PAYMENT.replace("RKL51ZDR4F", "RKL51ZDR4H").replace(
            "12:13:25", "12:30:00"
        )
        statement = parse_statement(_csv(newest.replace('"25,000.00"', ""), PAYMENT))
        self.assertEqual(statement.closing_balance, Decimal("26000.00"))


@tagged("post_install", "-at_install")
class TestStatementXlsx(BaseCase):
    def test_xlsx_fixture_reads_like_the_csv(self):
        # Same statement saved as XLSX: real datetime cells, float amounts,
        # negative floats in Withdrawn, booleans, an empty preamble row, a footer.
        from_xlsx = parse_statement(_read("statement_preamble.xlsx"), "statement.xlsx")
        self.assertEqual(from_xlsx, _parse("statement_preamble.csv"))
        self.assertEqual(len(from_xlsx.rows), 5)
        self.assertEqual(from_xlsx.rows[0].paid_in, Decimal("1000.00"))
        self.assertEqual(from_xlsx.rows[1].withdrawn, Decimal("5.00"))
        self.assertEqual(from_xlsx.closing_balance, Decimal("52090.50"))

    def test_xlsx_detected_from_bytes_not_name(self):
        statement = parse_statement(_read("statement_preamble.xlsx"), "export.csv")
        self.assertEqual(statement.rows[-1].receipt, "RKM4J0K1L2")
        self.assertEqual(parse_statement(_read("statement_preamble.xlsx")).skipped, 1)

    def test_xlsx_text_dates_numbers_and_float_noise(self):
        header = HEADER.split(",")
        content = _xlsx(
            [
                ["ACME TRADERS LIMITED"],
                None,
                header + [None, None],
                [
                    "rkl51zdr4g",
                    "21/11/2023 12:20:01",
                    dt.datetime(2023, 11, 21, 12, 20),
                    "Business Pay Bill Charge",
                    "Completed",
                    None,
                    -5,
                    24994.999999999996,  # float noise: rounds to the cent
                    True,
                    "Business Pay Bill Charge",
                    None,
                    "RKL51ZDR4F",
                ],
                [
                    "RKL51ZDR4F",
                    dt.datetime(2023, 11, 21, 12, 13, 25),
                    None,
                    "Pay Bill from 2547****126 - NICHOLAS Acc. 1001",
                    "Completed",
                    1000,
                    None,
                    25000.0,
                    True,
                    "Pay Bill Online",
                    "2547****126 - NICHOLAS",
                    None,
                    1001,
                ],
            ],
            cover=True,
        )
        payment, charge = parse_statement(content, "statement.xlsx").rows
        self.assertEqual(payment.account_ref, "1001")
        self.assertEqual(payment.paid_in, Decimal("1000.00"))
        self.assertIsNone(payment.initiated_at)
        self.assertEqual(charge.receipt, "RKL51ZDR4G")
        self.assertEqual(charge.completed_at, _utc(2023, 11, 21, 9, 20, 1))
        self.assertEqual(charge.initiated_at, _utc(2023, 11, 21, 9, 20, 0))
        self.assertEqual(charge.balance, Decimal("24995.00"))
        self.assertEqual(charge.withdrawn, Decimal("5.00"))

    def test_xlsx_error_names_the_sheet_row(self):
        content = _xlsx(
            [
                ["ACME TRADERS LIMITED"],
                None,
                None,
                HEADER.split(","),
                [
                    "RKL51ZDR4F",
                    dt.datetime(2023, 11, 21, 12, 13, 25),
                    None,
                    "Pay Bill",
                    "Completed",
                    "12O.00",
                ],
            ]
        )
        with self.assertRaises(StatementError) as caught:
            parse_statement(content, "statement.xlsx")
        self.assertEqual(
            (caught.exception.row, caught.exception.column), (5, "Paid In")
        )
        self.assertEqual(
            str(caught.exception), "Row 5, column 'Paid In': '12O.00' is not an amount."
        )

    def test_not_a_workbook(self):
        stream = io.BytesIO()
        with zipfile.ZipFile(stream, "w") as archive:
            archive.writestr("hello.txt", "not a workbook")
        cases = [
            (stream.getvalue(), "statement.xlsx", "not a readable XLSX"),
            (b"plain text", "statement.xlsx", "not a readable XLSX"),
            (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64), "old.xls", ".xls"),
        ]
        for content, name, message in cases:
            with self.subTest(name=name, message=message):
                with self.assertRaises(StatementError) as caught:
                    parse_statement(content, name)
                self.assertIn(message, str(caught.exception))
                self.assertIsNone(caught.exception.row)


@tagged("post_install", "-at_install")
class TestStatementErrors(BaseCase):
    def assertStatementError(self, content, row, column, message=None):
        with self.assertRaises(StatementError) as caught:
            parse_statement(content)
        error = caught.exception
        self.assertEqual((error.row, error.column), (row, column))
        if message is not None:
            self.assertEqual(str(error), message)
        return error

    def test_unparseable_amount(self):
        self.assertStatementError(
            _read("broken_amount.csv"),
            7,
            "Paid In",
            "Row 7, column 'Paid In': '1,0x0.00' is not an amount.",
        )

    def test_missing_required_column(self):
        self.assertStatementError(
            _read("broken_missing_column.csv"),
            3,
            "Withdrawn",
            "Row 3, column 'Withdrawn': this column is missing from the header.",
        )

    def test_no_header(self):
        error = self.assertStatementError(_read("broken_no_header.csv"), None, None)
        self.assertIn("'Receipt No.' and 'Completion Time'", str(error))

    def test_header_searched_in_the_first_30_rows_only(self):
        content = ("\n" * 29).encode() + _csv(PAYMENT)
        self.assertEqual(len(parse_statement(content).rows), 1)
        self.assertStatementError(b"\n" + content, None, None)

    def test_duplicate_receipt_names_both_rows(self):
        error = self.assertStatementError(
            _read("broken_duplicate.csv"), 4, "Receipt No."
        )
        self.assertEqual(
            str(error),
            "Row 4, column 'Receipt No.': receipt RKL51ZDR4H is also on row 2.",
        )

    def test_inconsistent_balance(self):
        # Oldest first: 25,000.00, 24,995.00, 25,495.00, then 25,400.00 after a
        # 100.00 withdrawal where 25,395.00 was due (row 4 of the file).
        error = self.assertStatementError(_read("broken_balance.csv"), 4, "Balance")
        self.assertIn("25,400.00 should be 25,395.00", str(error))

    def test_bad_dates(self):
        bad_completion = PAYMENT.replace("21-11-2023 12:13:25,", "2023-21-11 12:13,", 1)
        self.assertStatementError(
            _csv(PAYMENT.replace("RKL51ZDR4F", "RKL51ZDR4G"), bad_completion),
            3,
            "Completion Time",
            "Row 3, column 'Completion Time': '2023-21-11 12:13' is not a date and "
            "time like 21-11-2023 12:13:25.",
        )
        bad_initiation = PAYMENT.replace("21-11-2023 12:13:25,Pay", "yesterday,Pay")
        self.assertStatementError(_csv(bad_initiation), 2, "Initiation Time")

    def test_completed_row_without_receipt(self):
        self.assertStatementError(
            _csv(PAYMENT.replace("RKL51ZDR4F", "")), 2, "Receipt No."
        )

    def test_completed_row_without_time(self):
        self.assertStatementError(
            _csv(PAYMENT.replace("21-11-2023 12:13:25,", ",", 1)),
            2,
            "Completion Time",
            "Row 2, column 'Completion Time': the date and time is missing.",
        )

    def test_row_with_receipt_but_no_status(self):
        self.assertStatementError(
            _csv(PAYMENT.replace("Completed", "")), 2, "Transaction Status"
        )

    def test_both_paid_in_and_withdrawn(self):
        self.assertStatementError(
            _csv(PAYMENT.replace('"1,000.00",,', '"1,000.00",-5.00,')),
            2,
            "Withdrawn",
            "Row 2, column 'Withdrawn': a row cannot have both Paid In (1000.00) "
            "and Withdrawn (5.00).",
        )

    def test_negative_paid_in(self):
        self.assertStatementError(
            _csv(PAYMENT.replace('"1,000.00"', "-1000")), 2, "Paid In"
        )

    def test_unparseable_balance(self):
        self.assertStatementError(
            _csv(PAYMENT.replace('"25,000.00"', "n/a")), 2, "Balance"
        )

    def test_broken_non_completed_row_is_skipped(self):
        # A cancelled row moved no money: its cells are not even read.
        cancelled = "RKL51ZDR4X,,,Pay Bill,Cancelled,abc,,,FALSE,Pay Bill Online,,,"
        statement = parse_statement(_csv(cancelled, PAYMENT))
        self.assertEqual([row.receipt for row in statement.rows], ["RKL51ZDR4F"])
        self.assertEqual(statement.skipped, 1)

    def test_all_or_nothing(self):
        # Many good rows, one bad row at the end: no partial statement.
        good = [
            PAYMENT.replace("RKL51ZDR4F", f"RKL51ZD{n:03d}").replace('"25,000.00"', "")
            for n in range(20)
        ]
        self.assertStatementError(
            _csv(*good, PAYMENT.replace("12:13:25,Pay", "25:13:25,Pay")),
            22,
            "Initiation Time",
        )


def _pull_row(receipt, kenya_time, msisdn=254708374149, amount="1000.0", **extra):
    """One row exactly as the emulator's pull_rows (orgapi.py) builds it."""
    return {
        "transactionId": receipt,
        "trxDate": kenya_time,
        "msisdn": msisdn,
        "sender": "",
        "transactiontype": "c2b-pay-bill-debit",
        "billreference": "INV00042",
        "amount": amount,
        "organizationname": "ACME TRADERS LIMITED",
        **extra,
    }


@tagged("post_install", "-at_install")
class TestPullRows(BaseCase):
    def test_emulator_row(self):
        (row,) = parse_pull_rows(
            [_pull_row("RKL51ZDR4F", "2023-11-21T12:13:25.000+03:00")]
        )
        self.assertEqual(row.receipt, "RKL51ZDR4F")
        self.assertEqual(row.completed_at, _utc(2023, 11, 21, 9, 13, 25))
        self.assertIsNone(row.initiated_at)
        self.assertEqual(row.status, "Completed")
        self.assertEqual(row.paid_in, Decimal("1000.00"))
        self.assertEqual(row.withdrawn, Decimal(0))
        self.assertEqual(row.amount, Decimal("1000.00"))
        self.assertIsNone(row.balance)
        self.assertEqual(row.reason_type, "c2b-pay-bill-debit")
        self.assertEqual(row.account_ref, "INV00042")
        self.assertEqual(row.phone, "254708374149")
        self.assertEqual(row.other_party, "254708374149")
        self.assertEqual(row.customer_name, "")
        self.assertEqual(row.linked_receipt, "")
        self.assertFalse(row.is_charge)

    def test_rows_from_the_emulator_itself(self):
        # The emulator's own pull_rows on a stub state: the shape cannot drift.
        from daraja_emulator import orgapi

        kenya = dt.timezone(dt.timedelta(hours=3))
        payments = {
            receipt: {
                "shortcode": "600984",
                "time": dt.datetime(2023, 11, 22, hour, 30, tzinfo=kenya),
                "receipt": receipt,
                "phone": "254708374149",
                "bill_ref": "inv 77",
                "amount": amount,
            }
            for receipt, hour, amount in (("RKM2", 1, 12345.5), ("RKM1", 0, 10.0))
        }
        emu = SimpleNamespace(
            state=SimpleNamespace(lock=threading.Lock(), payments=payments)
        )
        code = SimpleNamespace(
            shortcode="600984", kind="paybill", organization_name="ACME"
        )
        start = dt.datetime(2023, 11, 21, tzinfo=kenya)
        end = dt.datetime(2023, 11, 23, tzinfo=kenya)
        # Daraja nests the page in one more list: "Response": [[...]].
        response = [orgapi.pull_rows(emu, code, start, end, 0)]
        rows = parse_pull_rows(response)
        self.assertEqual([row.receipt for row in rows], ["RKM1", "RKM2"])
        self.assertEqual(rows[0].completed_at, _utc(2023, 11, 21, 21, 30))
        self.assertEqual(rows[1].paid_in, Decimal("12345.50"))
        self.assertEqual(rows[1].account_ref, "inv 77")
        self.assertEqual(rows[1].phone, "254708374149")

    def test_sender_name_sorting_and_nesting(self):
        rows = parse_pull_rows(
            [
                [
                    _pull_row("rkl2", "2023-11-21T14:00:00.000+03:00", sender="MARY"),
                    _pull_row("RKL1", "2023-11-21T12:00:00+03:00", amount=250),
                ]
            ]
        )
        self.assertEqual([row.receipt for row in rows], ["RKL1", "RKL2"])
        self.assertEqual(rows[0].paid_in, Decimal("250.00"))
        self.assertEqual(rows[1].customer_name, "MARY")
        self.assertEqual(rows[1].other_party, "254708374149 - MARY")

    def test_time_without_offset_is_kenya_time(self):
        (row,) = parse_pull_rows([_pull_row("RKL1", "2023-11-21 12:00:00")])
        self.assertEqual(row.completed_at, _utc(2023, 11, 21, 9, 0))

    def test_errors_name_the_row_and_key(self):
        good = _pull_row("RKL1", "2023-11-21T12:00:00.000+03:00")
        cases = [
            (_pull_row("RKL2", "21/11/2023"), "trxDate"),
            (_pull_row("RKL2", "2023-11-21T12:00:00+03:00", amount="1O0"), "amount"),
            (_pull_row("RKL2", "2023-11-21T12:00:00+03:00", amount="-5"), "amount"),
            (_pull_row("", "2023-11-21T12:00:00+03:00"), "transactionId"),
            (_pull_row("RKL2", "2023-11-21T12:00:00+03:00", msisdn=True), "msisdn"),
        ]
        for bad, column in cases:
            with self.subTest(column=column):
                with self.assertRaises(StatementError) as caught:
                    parse_pull_rows([good, bad])
                self.assertEqual(
                    (caught.exception.row, caught.exception.column), (2, column)
                )
                self.assertTrue(
                    str(caught.exception).startswith(f"Row 2, column '{column}'")
                )
