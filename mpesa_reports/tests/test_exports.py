import codecs
import csv
import io
import re
from datetime import date, datetime, timedelta

from openpyxl import load_workbook

from odoo.exceptions import AccessError
from odoo.tests import tagged
from odoo.tools import file_open, format_date
from odoo.tools.pdf import PdfFileReader

from odoo.addons.mpesa_payment.kenya_time import kenya_day_bounds, kenya_today
from odoo.addons.mpesa_reconciliation.tests.common import SHORTCODE

from ..wizards.mpesa_export import COLUMNS
from .test_receipt_report import ReportCommon

HASHED = "a3f1" * 16


def _documented_columns():
    """The export's header as readme/USAGE.md documents it for accounting: the
    first cell of each row of its column table, in order."""
    with file_open("mpesa_reports/readme/USAGE.md") as usage:
        text = usage.read()
    table = text.split("The columns, in this order")[1].split("\n\n")[1]
    return [row.split("|")[1].strip() for row in table.splitlines()[2:]]


def pdf_text(content):
    reader = PdfFileReader(io.BytesIO(content), strict=False)
    text = " ".join(page.extract_text() for page in reader.pages)
    return re.sub(r"\s+", " ", text)


@tagged("post_install", "-at_install")
class TestExports(ReportCommon):
    """The accounting export (XLSX, CSV), the daily summary PDF and its email."""

    # === helpers === #

    def _export(self, user, file_format, date_from, date_to, **vals):
        wizard = (
            self.env["mpesa.export"]
            .with_user(user)
            .create(
                {
                    "date_from": date_from,
                    "date_to": date_to,
                    "file_format": file_format,
                    **vals,
                }
            )
        )
        action = wizard.action_export()
        self.assertEqual(action["type"], "ir.actions.act_url")
        match = re.fullmatch(r"/web/content/(\d+)\?download=true", action["url"])
        self.assertTrue(match, action["url"])
        attachment = self.env["ir.attachment"].with_user(user).browse(int(match[1]))
        self.assertEqual(
            (attachment.res_model, attachment.res_id), (wizard._name, wizard.id)
        )
        return action, attachment

    def _period_receipts(self):
        """2026-03-10 in Nairobi, plus one receipt just before and one just after."""
        invoice = self._invoice(1200)
        first = self._receipt(
            "EXP0000001",
            1000,
            datetime(2026, 3, 9, 21, 1),  # 00:01 in Nairobi on the 10th
            partner_id=self.partner.id,
            reference=invoice.name,
            invoice_id=invoice.id,
            branch_id=self.branch_cbd.id,
            team_id=self.team.id,
            user_id=self.cashier.id,
        )
        second = self._receipt(
            "EXP0000002",
            250,
            datetime(2026, 3, 10, 12, 0),
            channel="stk",
            phone=HASHED,
            customer_name="JOHN DOE",
        )
        charge = self._receipt(
            "EXP0000003",
            30,
            datetime(2026, 3, 10, 12, 0, 30),
            channel="import",
            kind="charge",
            state="applied",
            phone=False,
        )
        self._receipt("EXP0000000", 90, datetime(2026, 3, 9, 20, 59))  # the 9th
        self._receipt("EXP0000009", 80, datetime(2026, 3, 10, 21, 0))  # the 11th
        self._receipt(
            "EXP0000006", 60, datetime(2026, 3, 10, 9, 0), provider=self.mpesa_2
        )
        return invoice, first, second, charge

    def _expected_rows(self):
        invoice, first, second, charge = self._period_receipts()
        return [
            [
                "2026-03-10 00:01:00",
                "EXP0000001",
                SHORTCODE,
                "Paybill / Till (C2B)",
                "Payment In",
                self.partner.name,
                "2547******149",
                invoice.name,
                "1000.00",
                "1200.00",
                "Received",
                "To Reconcile",
                invoice.name,
                "",
                first.statement_line_id.move_id.name,
                "Nairobi CBD",
                "Wholesale",
                self.cashier.name,
            ],
            [
                "2026-03-10 15:00:00",
                "EXP0000002",
                SHORTCODE,
                "STK Push",
                "Payment In",
                "JOHN DOE",
                HASHED,
                "",
                "250.00",
                "250.00",
                "Received",
                "To Reconcile",
                "",
                "",
                second.statement_line_id.move_id.name,
                "",
                "",
                "",
            ],
            [
                "2026-03-10 15:00:30",
                "EXP0000003",
                SHORTCODE,
                "Statement Import",
                "Charge",
                "",
                "",
                "",
                "30.00",
                "30.00",
                "Applied",
                "To Reconcile",
                "",
                "",
                charge.statement_line_id.move_id.name,
                "",
                "",
                "",
            ],
        ]

    # === exports === #

    def test_csv_cells_never_become_formulas(self):
        """Issue 11, finding 5: a customer's name or typed reference starting like a
        formula reaches finance's spreadsheet as text (OWASP's leading apostrophe)."""
        self._receipt(
            "EXP0000066",
            500,
            datetime(2026, 3, 10, 12, 0),
            customer_name='=HYPERLINK("http://evil.example","Click")',
            reference="+cmd|' /C calc'!A0",
            phone="@SUM(1+1)",
        )
        _action, attachment = self._export(
            self.reconciler, "csv", date(2026, 3, 10), date(2026, 3, 10)
        )
        text = attachment.raw.decode("utf-8-sig")
        (row,) = [r for r in csv.reader(io.StringIO(text)) if r[1] == "EXP0000066"]
        self.assertEqual(row[5], '\'=HYPERLINK("http://evil.example","Click")')
        self.assertEqual(row[6], "'@SUM(1+1)")
        self.assertEqual(row[7], "'+cmd|' /C calc'!A0")
        self.assertEqual(row[8], "500.00", "amounts stay numbers")

    def test_csv_columns_and_values(self):
        expected = self._expected_rows()
        self.assertTrue(all(row[14] for row in expected), "journal entries are named")
        _action, attachment = self._export(
            self.reconciler, "csv", date(2026, 3, 10), date(2026, 3, 10)
        )
        self.assertEqual(attachment.mimetype, "text/csv")
        self.assertTrue(attachment.name.endswith("_2026-03-10_2026-03-10.csv"))
        raw = attachment.raw
        self.assertTrue(raw.startswith(codecs.BOM_UTF8), "UTF-8 with BOM")
        text = raw.decode("utf-8-sig")
        self.assertTrue(text.startswith("Date,Receipt Code,Shortcode,Channel,Kind,"))
        self.assertIn("\r\n", text)
        rows = list(csv.reader(io.StringIO(text, newline="")))
        self.assertEqual(rows[0], COLUMNS)
        self.assertEqual(rows[0], _documented_columns(), "as readme/USAGE.md says")
        self.assertEqual(rows[1:], expected)

    def test_xlsx_columns_and_values(self):
        expected = self._expected_rows()
        _action, attachment = self._export(
            self.env.user, "xlsx", date(2026, 3, 9), date(2026, 3, 10)
        )
        self.assertTrue(attachment.name.endswith(".xlsx"))
        sheet = load_workbook(io.BytesIO(attachment.raw)).active
        rows = [list(row) for row in sheet.iter_rows(values_only=True)]
        self.assertEqual(rows[0], COLUMNS)
        # The 9th (Nairobi) is now in the period: its receipt comes first.
        self.assertEqual(rows[1][:2], [datetime(2026, 3, 9, 23, 59), "EXP0000000"])
        self.assertEqual(len(rows), 5, "the 11th and the other company stay out")
        for got, want in zip(rows[2:], expected, strict=True):
            self.assertEqual(got[0], datetime.strptime(want[0], "%Y-%m-%d %H:%M:%S"))
            self.assertEqual(got[8:10], [float(want[8]), float(want[9])])
            self.assertIsInstance(got[8], int | float)
            self.assertEqual(
                [v or "" for v in got[1:8] + got[10:]], want[1:8] + want[10:]
            )
        self.assertEqual(sheet["I2"].number_format, "#,##0.00")

    def test_export_per_shortcode_and_company(self):
        self._period_receipts()
        _action, attachment = self._export(
            self.other_reconciler,
            "csv",
            date(2026, 3, 10),
            date(2026, 3, 10),
            company_id=self.company_2.id,
            shortcode="600999",
        )
        rows = list(csv.reader(io.StringIO(attachment.raw.decode("utf-8-sig"))))
        self.assertEqual(
            [r[1:3] + r[8:9] for r in rows[1:]], [["EXP0000006", "600999", "60.00"]]
        )
        # Another company's receipts: record rules keep them out, whatever asked.
        _action, attachment = self._export(
            self.other_reconciler,
            "csv",
            date(2026, 3, 10),
            date(2026, 3, 10),
            company_id=self.env.company.id,
        )
        rows = list(csv.reader(io.StringIO(attachment.raw.decode("utf-8-sig"))))
        self.assertEqual(rows, [COLUMNS])
        # The main company's shortcode only.
        _action, attachment = self._export(
            self.reconciler,
            "csv",
            date(2026, 3, 10),
            date(2026, 3, 10),
            shortcode=SHORTCODE,
        )
        rows = list(csv.reader(io.StringIO(attachment.raw.decode("utf-8-sig"))))
        self.assertEqual(
            [r[1] for r in rows[1:]], ["EXP0000001", "EXP0000002", "EXP0000003"]
        )

    def test_only_reconcilers_and_managers_export(self):
        self._period_receipts()
        for user in (self.cashier, self.plain):
            with self.assertRaises(AccessError):
                self.env["mpesa.export"].with_user(user).create(
                    {"date_from": date(2026, 3, 10), "date_to": date(2026, 3, 10)}
                )
        manager = self.env.user
        self.assertTrue(manager.has_group("mpesa_payment.group_mpesa_manager"))
        _action, attachment = self._export(
            manager, "csv", date(2026, 3, 10), date(2026, 3, 10)
        )
        self.assertEqual(len(attachment.raw.decode("utf-8-sig").splitlines()), 4)

    def test_download_through_the_web(self):
        self._period_receipts()
        action, attachment = self._export(
            self.reconciler, "xlsx", date(2026, 3, 10), date(2026, 3, 10)
        )
        self.env.flush_all()
        self.authenticate("mpesa_reconciler", "mpesa_reconciler")
        response = self.url_open(action["url"])
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.content, attachment.raw)
        self.assertIn(".xlsx", response.headers["Content-Disposition"])
        # Someone else's export file stays theirs.
        self.authenticate("mpesa_cashier", "mpesa_cashier")
        response = self.url_open(action["url"])
        self.assertNotEqual(response.status_code, 200)
        self.assertNotEqual(response.content, attachment.raw)

    # === daily summary === #

    def _summary_day(self):
        """A real paybill payment today (reconciled), and around it receipts placed on
        the edges of its Nairobi day."""
        invoice = self._invoice(750)
        paid = self._c2b(invoice.name, 750)
        self._post_process(paid)
        self.env.invalidate_all()
        self.assertEqual(paid.reconcile_state, "reconciled")
        day = paid._mpesa_statement_date()
        start, end = kenya_day_bounds(day)
        self.assertEqual(
            start, datetime.combine(day, datetime.min.time()) - timedelta(hours=3)
        )
        before = self._receipt("SUM0000000", 100, start - timedelta(minutes=1))
        before.sudo().write({"state": "review", "review_reason": "No account number"})
        self._receipt("SUM0000001", 200, start + timedelta(minutes=1))
        self._receipt("SUM0000002", 300, end - timedelta(seconds=1), channel="stk")
        self._receipt("SUM0000009", 900, end)  # the next day
        self._receipt(
            "SUM0000003",
            30,
            start + timedelta(hours=2),
            channel="import",
            kind="charge",
            state="applied",
        )
        self._receipt(
            "SUM0000004",
            150,
            start + timedelta(hours=3),
            channel="import",
            recovered=True,
        )
        claim = self._receipt(
            "SUM0000005", 400, start + timedelta(hours=4), channel="query"
        )
        claim.sudo().write(
            {"state": "review", "review_reason": "Customer says they paid"}
        )
        # Money back to payers: a payment reversed the same day, its money out, and
        # a refund.
        self._receipt("SUM0000006", 500, start + timedelta(hours=5))._mark_reversed()
        for code, amount, kind in (
            ("SUM0000007", 500, "reversal"),
            ("SUM0000008", 60, "refund"),
        ):
            self._receipt(
                code,
                amount,
                start + timedelta(hours=6),
                channel="import",
                kind=kind,
                state="applied",
            )
        # M-PESA's balance checked on the last second of the day: after every
        # receipt of the day (the real payment is made now, at any hour of it).
        self.mpesa.sudo().write(
            {"mpesa_balance": 5000, "mpesa_balance_date": end - timedelta(seconds=1)}
        )
        self.env.flush_all()
        return day

    def test_daily_summary_figures(self):
        day = self._summary_day()
        summary = (
            self.env["mpesa.daily.summary"]
            .with_user(self.reconciler)
            .create({"date": day})
        )
        self.assertEqual(summary.company_id, self.env.company)
        values = summary._summary_values()
        self.assertEqual(
            (values["received_count"], values["received_amount"]), (6, 2300)
        )
        # Received that day, whatever happened since; the reversal is said beside it.
        self.assertEqual(
            (values["reversed_count"], values["reversed_amount"]), (1, 500)
        )
        self.assertEqual(
            [(r["label"], r["count"], r["amount"]) for r in values["by_channel"]],
            [
                ("STK Push", 1, 300),
                ("Paybill / Till (C2B)", 3, 1450),
                ("Status Query", 1, 400),
                ("Statement Import", 1, 150),
            ],
        )
        self.assertEqual(
            [(r["label"], r["count"], r["amount"]) for r in values["reconciliation"]],
            [("To Reconcile", 4, 1150), ("Reconciled", 1, 750), ("Exception", 1, 400)],
        )
        self.assertEqual(
            (values["reconciled_amount"], values["unreconciled_amount"]), (750, 1550)
        )
        self.assertEqual(
            [
                (
                    r["label"],
                    r["day_count"],
                    r["day_amount"],
                    r["open_count"],
                    r["open_amount"],
                )
                for r in values["exceptions"]
            ],
            [
                ("Reference Missing", 0, 0, 1, 100),
                ("Customer Claims Payment", 1, 400, 1, 400),
            ],
        )
        self.assertEqual(
            (values["recovered_count"], values["recovered_amount"]), (1, 150)
        )
        self.assertEqual(values["recovered_codes"], ["SUM0000004"])
        self.assertEqual((values["charges_count"], values["charges_amount"]), (1, 30))
        self.assertEqual(values["withdrawals_count"], 0)
        # The money that went back to payers is listed, so that the day's figures add
        # up to the journal's movement.
        self.assertEqual(
            (values["reversals_count"], values["reversals_amount"]), (1, 500)
        )
        self.assertEqual((values["refunds_count"], values["refunds_amount"]), (1, 60))
        # Journal at the end of the day: 100 (the day before) + 750 + 200 + 300 - 30 +
        # 150 + 400 + 500 - 500 - 60; the 900 of the next day is not in yet.
        [balance] = values["balances"]
        self.assertEqual(balance["shortcode"], SHORTCODE)
        self.assertEqual(balance["mpesa_balance"], 5000)
        self.assertEqual(balance["journal_balance"], 1810)
        self.assertEqual(balance["journal_balance_at_check"], 1810)
        self.assertEqual(balance["difference"], 3190)
        self.assertEqual(values["balance_difference"], 3190)
        # The day before and the day after each have their edge receipt.
        before = summary.copy({"date": day - timedelta(days=1)})._summary_values()
        self.assertEqual(
            (before["received_count"], before["received_amount"]), (1, 100)
        )
        after = summary.copy({"date": day + timedelta(days=1)})._summary_values()
        self.assertEqual((after["received_count"], after["received_amount"]), (1, 900))

    def test_daily_summary_access(self):
        with self.assertRaises(AccessError):
            self.env["mpesa.daily.summary"].with_user(self.cashier).create(
                {"date": date(2026, 3, 10)}
            )
        with self.assertRaises(AccessError):
            self.env["mpesa.daily.summary"].with_user(self.plain).create(
                {"date": date(2026, 3, 10)}
            )
        foreign = (
            self.env["mpesa.daily.summary"]
            .with_user(self.other_reconciler)
            .create({"date": date(2026, 3, 10), "company_id": self.env.company.id})
        )
        with self.assertRaises(AccessError):
            foreign._summary_values()

    def test_daily_summary_pdf(self):
        day = self._summary_day()
        summary = (
            self.env["mpesa.daily.summary"]
            .with_user(self.reconciler)
            .create({"date": day})
        )
        content, report_type = (
            self.env["ir.actions.report"]
            .with_user(self.reconciler)
            .with_context(force_report_rendering=True)
            ._render_qweb_pdf(
                "mpesa_reports.action_report_mpesa_daily_summary", summary.ids
            )
        )
        self.assertEqual(report_type, "pdf")
        self.assertTrue(content.startswith(b"%PDF"))
        text = pdf_text(content)
        self.assertIn("M-PESA Daily Reconciliation Summary", text)
        self.assertIn(format_date(self.env, day), text)
        for figure in (
            "2,300.00",
            "1,550.00",
            "750.00",
            "1,810.00",
            "3,190.00",
            "5,000.00",
        ):
            self.assertIn(figure, text)
        self.assertIn("Total received 6 2,300.00", text)
        self.assertIn("Reversals (payments sent back by M-PESA) 1 500.00", text)
        self.assertIn("Refunds paid to customers 1 60.00", text)
        self.assertIn("Customer Claims Payment 1 400.00 1 400.00", text)
        self.assertIn("SUM0000004", text)
        self.assertIn(SHORTCODE, text)

    def test_cron_emails_the_pdf_to_the_finance_group(self):
        Summary = self.env["mpesa.daily.summary"]
        reconciler_group = self.env.ref("mpesa_reconciliation.group_mpesa_reconciler")
        param = self.env["ir.config_parameter"].sudo()
        self.assertEqual(
            param.get_param("mpesa_reports.summary_group_id"), str(reconciler_group.id)
        )
        self.assertEqual(Summary._summary_group(), reconciler_group)
        finance = self.env["res.groups"].create(
            {
                "name": "Finance",
                "users": [(6, 0, (self.plain | self.other_reconciler).ids)],
            }
        )
        param.set_param("mpesa_reports.summary_group_id", str(finance.id))
        self.assertEqual(Summary._summary_group(), finance)

        yesterday = kenya_today() - timedelta(days=1)
        start, end = kenya_day_bounds(yesterday)
        self._receipt("CRON000001", 1250, start + timedelta(hours=1))
        self._receipt("CRON000002", 80, start + timedelta(hours=2), channel="stk")
        self._receipt("CRON000003", 999, end + timedelta(hours=1))  # today
        cron = self.env.ref("mpesa_reports.cron_mpesa_daily_summary")
        self.assertEqual(cron.code, "model._cron_send_daily_summary()")
        self.assertEqual((cron.interval_number, cron.interval_type), (1, "days"))
        cron.ir_actions_server_id.with_context(force_report_rendering=True).run()

        mails = self.env["mail.mail"].search([("model", "=", "mpesa.daily.summary")])
        self.assertEqual(len(mails), 2, "one summary per company with M-PESA")
        by_company = {Summary.browse(mail.res_id).company_id: mail for mail in mails}
        mail = by_company[self.env.company]
        self.assertEqual(mail.recipient_ids, self.plain.partner_id)
        self.assertIn(self.env.company.name, mail.subject)
        self.assertIn(str(yesterday), mail.subject)
        [attachment] = mail.attachment_ids
        self.assertEqual(attachment.mimetype, "application/pdf")
        self.assertTrue(attachment.name.endswith(".pdf"))
        text = pdf_text(attachment.raw)
        self.assertIn(format_date(self.env, yesterday), text)
        self.assertIn("Total received 2 1,330.00", text)
        self.assertNotIn("999.00", text)
        other = by_company[self.company_2]
        self.assertEqual(other.recipient_ids, self.other_reconciler.partner_id)
        self.assertIn("Total received 0 0.00", pdf_text(other.attachment_ids.raw))
