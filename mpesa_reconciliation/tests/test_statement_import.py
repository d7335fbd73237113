import base64
from datetime import datetime, timedelta

from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import ReconciliationCommon, statement


@tagged("post_install", "-at_install")
class TestStatementImport(ReconciliationCommon):
    def _import(self, content, name="statement.csv"):
        with self._db_lock():
            wizard = self.env["mpesa.statement.import"].create(
                {
                    "provider_id": self.mpesa.id,
                    "source": "file",
                    "data_file": base64.b64encode(content),
                    "filename": name,
                }
            )
            wizard.action_import()
            self.env.flush_all()
        return wizard

    def test_overlap_with_callbacks_reimport_and_balance(self):
        invoice = self._invoice(1000)
        paid = self._c2b(invoice.name, 1000, trans_id="SKL0000001")
        self._post_process(paid)
        rows = [  # newest first, as the portal exports them
            (
                "SKL0000004,02-03-2026 09:00:01,02-03-2026 09:00:01,Business Pay Bill Charge,"
                'Completed,,-15.00,"25,785.00",TRUE,Business Pay Bill Charge,,SKL0000003,\n'
            ),
            (
                "SKL0000003,02-03-2026 09:00:00,02-03-2026 09:00:00,Pay Bill from 2547****149,"
                f'Completed,"800.00",,"25,800.00",TRUE,Pay Bill Online,2547****149 - JOHN,,'
                f"{invoice.name}X\n"
            ),
            (
                "SKL000000X,01-03-2026 12:00:00,01-03-2026 12:00:00,Pay Bill,Cancelled,"
                '"5.00",,,,Pay Bill Online,,,\n'
            ),
            (
                "SKL0000001,01-03-2026 10:00:00,01-03-2026 10:00:00,Pay Bill from 2547****149,"
                f'Completed,"1,000.00",,"25,000.00",TRUE,Pay Bill Online,2547****149 - JOHN,,'
                f"{invoice.name}\n"
            ),
        ]
        wizard = self._import(statement(rows))
        self.assertIn("2 new receipts", wizard.result)
        self.assertIn("1 receipts were already known", wizard.result)
        self.assertIn("1 rows not Completed", wizard.result)
        known = self.env["mpesa.receipt"].search([("name", "=", "SKL0000001")])
        self.assertSeenBy(known, "c2b", "import")
        self.assertFalse(known.recovered)
        recovered = self.env["mpesa.receipt"].search([("name", "=", "SKL0000003")])
        self.assertTrue(recovered.recovered)
        self.assertEqual(recovered.state, "review", "typo'd reference: no guess")
        charge = self.env["mpesa.receipt"].search([("name", "=", "SKL0000004")])
        self.assertEqual((charge.kind, charge.linked_receipt), ("charge", "SKL0000003"))
        self.assertEqual(charge.statement_line_id.amount, -15)
        # the journal now agrees with M-PESA's closing balance
        self.assertAlmostEqual(self._journal_balance(), 25785.0)
        self.assertIn("closing balance: KES 25,785.00", wizard.result)
        # the same file again, and an overlapping one: nothing twice
        count = self.env["mpesa.receipt"].search_count([])
        lines = self.env["account.bank.statement.line"].search_count([])
        self._import(statement(rows))
        self._import(statement(rows[:2]))
        self.assertEqual(self.env["mpesa.receipt"].search_count([]), count)
        self.assertEqual(
            self.env["account.bank.statement.line"].search_count([]), lines
        )
        self.assertAlmostEqual(self._journal_balance(), 25785.0)

    def test_closing_balance_against_the_journal_at_the_last_row(self):
        """The wizard compared M-PESA's closing balance with the journal as it is
        now: every payment received after the statement's last row showed as a
        difference. It compares with the journal as of that row."""
        rows = [
            (
                "SKL0000012,01-03-2026 11:00:00,01-03-2026 11:00:00,Pay Bill,"
                'Completed,"300.00",,"10,300.00",TRUE,Pay Bill Online,'
                "2547****149 - JOHN,,NOSUCHREF\n"
            ),
            (
                "SKL0000011,01-03-2026 10:00:00,01-03-2026 10:00:00,Pay Bill,"
                'Completed,"500.00",,"10,000.00",TRUE,Pay Bill Online,'
                "2547****149 - JOHN,,NOSUCHREF\n"
            ),
        ]
        self._import(statement(rows))
        # paid after the statement's last row, by a customer on a phone
        self._post_process(self._c2b(self._invoice(1000).name, 1000))
        self.assertAlmostEqual(self._journal_balance(), 11300.0)
        wizard = self._import(statement(rows))
        self.assertIn(
            "Statement closing balance: KES 10,300.00; journal balance at the "
            "statement's last row (01/03/2026 11:00:00, Nairobi time): KES 10,300.00.",
            wizard.result,
        )
        self.assertNotIn("Difference", wizard.result)
        # A real difference: a line dated inside the statement that M-PESA never had.
        with self._db_lock():
            self.env["account.bank.statement.line"].create(
                {
                    "journal_id": self.mpesa.journal_id.id,
                    "date": "2026-03-01",
                    "payment_ref": "typed by hand",
                    "amount": 40.0,
                }
            )
            self.env.flush_all()
        wizard = self._import(statement(rows))
        self.assertIn("journal balance at the statement's last row", wizard.result)
        self.assertIn("KES 10,340.00.", wizard.result)
        self.assertIn("Difference: KES -40.00.", wizard.result)

    def test_opening_balance_dated_the_nairobi_day_before_the_first_row(self):
        """A statement that starts at 00:30 in Nairobi (21:30 UTC the day before): its
        opening balance is M-PESA's at the end of the previous Nairobi day, 28
        February, not of the UTC day before that."""
        row = (
            "SKL0000021,01-03-2026 00:30:00,01-03-2026 00:30:00,Pay Bill,"
            'Completed,"500.00",,"10,000.00",TRUE,Pay Bill Online,'
            "2547****149 - JOHN,,NOSUCHREF\n"
        )
        self._import(statement([row]))
        lines = self.env["account.bank.statement.line"].search(
            [("journal_id", "=", self.journal.id)], order="date"
        )
        self.assertEqual(
            [(str(line.date), line.amount) for line in lines],
            [("2026-02-28", 9500.0), ("2026-03-01", 500.0)],
        )

    def test_recovered_payment_applied_by_reference(self):
        invoice = self._invoice(640)
        row = (
            "SKL0000009,01-03-2026 10:00:00,01-03-2026 10:00:00,Pay Bill,Completed,"
            f'"640.00",,"640.00",TRUE,Pay Bill Online,2547****149 - JOHN,,'
            f"{invoice.name.lower()}\n"
        )
        self._import(statement([row]))
        receipt = self.env["mpesa.receipt"].search([("name", "=", "SKL0000009")])
        self.assertTrue(receipt.recovered)
        self.assertEqual(receipt.invoice_id, invoice)
        self._post_process(receipt)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertTrue(receipt.statement_line_id.is_reconciled)

    def test_wrong_file_names_row_and_column_and_imports_nothing(self):
        rows = [
            'SKL0000011,01-03-2026 10:00:00,,Pay Bill,Completed,"10.00",,,,,,,A\n',
            'SKL0000012,01-03-2026 10:05:00,,Pay Bill,Completed,"1O.00",,,,,,,B\n',
        ]
        count = self.env["mpesa.receipt"].search_count([])
        with self.assertRaisesRegex(UserError, r"Row \d+, column 'Paid In'"):
            self._import(statement(rows))
        self.assertEqual(self.env["mpesa.receipt"].search_count([]), count)

    def test_pull_api_in_48_hour_windows(self):
        now = datetime.now()
        codes = [
            self.emulator.add_payment(
                100 + hours, bill_ref="NOSUCH", time=now - timedelta(hours=hours - 3)
            )  # naive times are Kenya time (UTC+3)
            for hours in (1, 50, 100)
        ]
        with self._db_lock():
            wizard = self.env["mpesa.statement.import"].create(
                {
                    "provider_id": self.mpesa.id,
                    "source": "pull",
                    "date_from": now - timedelta(days=5),
                    "date_to": now,
                }
            )
            wizard.action_import()
            self.env.flush_all()
        pulls = [
            r for r in self.emulator.request_log if r[1] == "/pulltransactions/v1/query"
        ]
        self.assertGreaterEqual(
            len(pulls), 3, "one request per 48-hour window at least"
        )
        imported = self.env["mpesa.receipt"].search([("name", "in", codes)])
        self.assertEqual(len(imported), 3)
        self.assertTrue(all(imported.mapped("recovered")))
        self.assertEqual(sorted(imported.mapped("amount")), [101, 150, 200])
        # pulling the same period again creates nothing
        count = self.env["mpesa.receipt"].search_count([])
        with self._db_lock():
            wizard.action_import()
            self.env.flush_all()
        self.assertEqual(self.env["mpesa.receipt"].search_count([]), count)

    def test_another_companys_statement_is_refused_and_its_double_is_reported(self):
        """Receipt codes are unique across M-PESA. Mombasa's statement, imported into
        our account by a reconciler of both companies, booked Mombasa's payment a
        second time, in our journal (live test_live_companies.py), and the books
        check, comparing shortcodes within one company, saw nothing."""
        other = self.setup_other_company(name="Mombasa Traders")
        with self._db_lock():
            their_paybill = self.mpesa.copy(
                {
                    "company_id": other["company"].id,
                    "mpesa_shortcode": "600100",
                    "journal_id": other["default_journal_bank"].id,
                }
            )
            self.env["mpesa.receipt"].create(
                {
                    "name": "SKL0000101",
                    "provider_id": their_paybill.id,
                    "company_id": other["company"].id,
                    "shortcode": "600100",
                    "amount": 2210,
                    "verification": "unverified",
                }
            )
            self.env.flush_all()
        row = (
            "SKL0000101,01-03-2026 10:00:00,01-03-2026 10:00:00,Pay Bill,Completed,"
            '"2210.00",,"2210.00",TRUE,Pay Bill Online,2547****149 - JOHN,,X1\n'
        )
        with self.assertRaisesRegex(
            UserError, r"belongs to Paybill 600100 \(Mombasa Traders\)"
        ):
            self._import(statement([row]))
        ours = self.env["mpesa.receipt"].search(
            [("name", "=", "SKL0000101"), ("company_id", "=", self.env.company.id)]
        )
        self.assertFalse(ours, "nothing imported")
        self.assertEqual(self.mpesa._mpesa_check_books(), [])
        # Had it been imported, the books check would say so.
        with self._db_lock():
            self.env["mpesa.receipt"].create(
                {
                    "name": "SKL0000101",
                    "provider_id": self.mpesa.id,
                    "shortcode": self.mpesa.mpesa_shortcode,
                    "amount": 2210,
                    "verification": "unverified",
                }
            )
            self.env.flush_all()
        self.assertIn(
            (
                self.mpesa.mpesa_shortcode,
                "SKL0000101",
                "also in the ledger of shortcode 600100 (Mombasa Traders)",
            ),
            self.mpesa._mpesa_check_books(),
        )
