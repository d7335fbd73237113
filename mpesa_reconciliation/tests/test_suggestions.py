import datetime as dt

from odoo import Command, fields
from odoo.tests import tagged

from odoo.addons.mpesa_payment.kenya_time import kenya_to_utc, kenya_today

from .common import ReconciliationCommon


@tagged("post_install", "-at_install")
class TestSuggestions(ReconciliationCommon):
    def test_typo_is_suggested_with_reason_and_accepted(self):
        invoice = self._invoice(1000)
        typo = invoice.name.replace("/", "")[:-1] + "9"  # one wrong digit
        receipt = self._c2b(typo, 1000)
        self.assertEqual(receipt.state, "review")
        line = receipt.statement_line_id
        with self._db_lock():
            reconciled = line._mpesa_refresh_suggestions()
            self.env.flush_all()
        self.assertFalse(reconciled, "a fuzzy reference is not certain enough")
        best = line.mpesa_suggestion_ids[:1]
        self.assertEqual((best.res_model, best.res_id), ("account.move", invoice.id))
        self.assertIn("amount exact", best.reasons)
        self.assertIn("reference", best.reasons)
        exception = receipt.exception_ids
        self.assertEqual(exception.kind, "unknown_reference")
        with self._db_lock():
            best.action_accept()
            self.env.flush_all()
        self.assertTrue(line.is_reconciled)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual(exception.state, "resolved")
        self.assertEqual(exception.resolution, "allocated")
        self.assertEqual(receipt.reconcile_state, "reconciled")

    def test_certain_match_reconciles_automatically(self):
        self.env["res.config.settings"].create({"mpesa_auto_threshold": 60}).execute()
        invoice = self._invoice(1000)
        typo = invoice.name.replace("/", "")[:-1] + "9"
        receipt = self._c2b(typo, 1000, style="plain")
        with self._db_lock():
            reconciled = receipt.statement_line_id._mpesa_refresh_suggestions()
            self.env.flush_all()
        self.assertEqual(reconciled, receipt.statement_line_id)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))

    def test_two_equally_good_candidates_are_never_auto_reconciled(self):
        self.env["ir.config_parameter"].sudo().set_param(
            "mpesa_reconciliation.auto_threshold", "10"
        )
        first, second = self._invoice(1000), self._invoice(1000)
        receipt = self._c2b("", 1000, style="plain")
        self.assertEqual(receipt.state, "review")
        with self._db_lock():
            reconciled = receipt.statement_line_id._mpesa_refresh_suggestions()
            self.env.flush_all()
        self.assertFalse(reconciled)
        suggestions = receipt.statement_line_id.mpesa_suggestion_ids
        self.assertEqual(set(suggestions[:2].mapped("res_id")), {first.id, second.id})
        self.assertEqual(suggestions[0].score, suggestions[1].score)
        self.assertEqual((first | second).mapped("payment_state"), ["not_paid"] * 2)

    def test_order_date_is_its_day_in_nairobi(self):
        """An order placed at 01:00 in Nairobi three days ago (22:00 UTC the day
        before that) is three days older than today's payment, not four."""
        placed_on = kenya_today() - dt.timedelta(days=3)
        order = self.env["sale.order"].create(
            {
                "partner_id": self.partner.id,
                "currency_id": self.currency_kes.id,
                "date_order": kenya_to_utc(dt.datetime.combine(placed_on, dt.time(1))),
                "order_line": [
                    Command.create(
                        {
                            "name": "Solar lamp",
                            "price_unit": 1000,
                            "tax_id": [Command.clear()],
                        }
                    )
                ],
            }
        )
        order.name = "SO-DATE-42"
        self.env.flush_all()
        receipt = self._c2b("SO-DATE-43", 1000)  # one wrong digit
        line = receipt.statement_line_id
        with self._db_lock():
            line._mpesa_refresh_suggestions()
            self.env.flush_all()
        best = line.mpesa_suggestion_ids[:1]
        self.assertEqual((best.res_model, best.res_id), ("sale.order", order.id))
        self.assertIn("date within 3 days", best.reasons)
        self.assertEqual((best.partner_id, best.amount_due), (self.partner, 1000))
        order.unlink()
        self.env.invalidate_all()
        self.assertEqual(
            (best.partner_id, best.amount_due),
            (self.env["res.partner"], 0),
            "a document deleted since the ranking shows no customer and nothing due",
        )

    def test_payers_own_invoice_before_another_customers_number(self):
        """The payer slips a digit and types Mary's invoice number, paying more than
        it asks: exactly what the payer's own invoice asks. Review shows the payer's
        own invoice first, and accepting it books the money to the payer."""
        mary = self.env["res.partner"].create({"name": "Mary Wanjiru"})
        marys = self._invoice(500, partner=mary)
        own = self._invoice(2300)
        receivable = self._receivable_balance(self.partner)
        receipt = self._c2b(marys.name, 2300, style="plain")
        self.assertEqual(receipt.state, "review", "more than Mary's invoice asks")
        line = receipt.statement_line_id
        with self._db_lock():
            line._mpesa_refresh_suggestions()
            self.env.flush_all()
        first, second = line.mpesa_suggestion_ids[:2]
        self.assertEqual((first.res_model, first.res_id), ("account.move", own.id))
        self.assertEqual(
            [(s.partner_id, s.amount_due) for s in (first, second)],
            [(self.partner, 2300), (mary, 500)],
            "whose each document is and what it asks, beside the ranking",
        )
        self.assertIn("partner from phone", first.reasons)
        self.assertEqual(second.res_id, marys.id)
        self.assertIn(
            "reference exact (not confirmed by amount or payer)", second.reasons
        )
        with self._db_lock():
            first.action_accept()
            self.env.flush_all()
        self.assertBooksOfPayment(receipt, self.partner, receivable, 2300)
        self.assertIn(own.payment_state, ("paid", "in_payment"))
        self.assertEqual(marys.payment_state, "not_paid")

    def test_matching_job_keeps_each_companys_money_to_its_own_documents(self):
        """The matching job ranks every company's open lines at once. A payment to
        our paybill naming another company's invoice, for its amount, from its
        customer's phone (certain, were the invoice ours) while that company had a
        line waiting too: one matcher over both companies made that invoice the
        certain match, and the whole job failed on "Incompatible companies" for as
        long as the line waited (live test_live_companies.py)."""
        other = self.setup_other_company(name="Mombasa Traders")
        with self._db_lock():
            theirs = self.init_invoice(
                "out_invoice",
                partner=self.partner,
                amounts=[1630],
                company=other["company"],
                currency=self.currency_kes,
                taxes=[],
                invoice_date=fields.Date.today(),
            )
            theirs.name = f"INV/{fields.Date.today().year}/90031"
            theirs.action_post()
            their_paybill = self.mpesa.copy(
                {
                    "company_id": other["company"].id,
                    "mpesa_shortcode": "600100",
                    "journal_id": other["default_journal_bank"].id,
                }
            )
            waiting = self.env["mpesa.receipt"].create(
                {
                    "name": "QMB0000001",
                    "provider_id": their_paybill.id,
                    "company_id": other["company"].id,
                    "shortcode": "600100",
                    "amount": 250,
                    "verification": "unverified",
                }
            )
            waiting._mpesa_feed_statement()
            self.env.flush_all()
        self.assertTrue(waiting.statement_line_id)
        receipt = self._c2b(theirs.name, 1630, style="plain")
        self.assertEqual(
            (receipt.state, receipt.review_cause), ("review", "unknown_reference")
        )
        with self._db_lock():
            self.env["account.bank.statement.line"]._cron_mpesa_suggestions()
            self.env.flush_all()
        self.env.invalidate_all()
        self.assertEqual(theirs.payment_state, "not_paid")
        self.assertEqual(receipt.state, "review")
        self.assertFalse(receipt.application_ids)
        self.assertNotIn(
            ("account.move", theirs.id),
            [
                (s.res_model, s.res_id)
                for s in receipt.statement_line_id.mpesa_suggestion_ids
            ],
        )
