from odoo.tests import HttpCase

from odoo.addons.mpesa_payment.tests.common import MpesaCommon

SHORTCODE = "174379"


class ReconciliationCommon(MpesaCommon, HttpCase):
    """M-PESA money flowing into the provider's bank journal, with real callbacks."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.journal = cls.mpesa.journal_id
        cls.partner.email = "customer@example.com"

    def setUp(self):
        super().setUp()
        self.env["ir.config_parameter"].sudo().set_param(
            "web.base.url", self.base_url()
        )
        with self._db_lock():
            self.mpesa.action_mpesa_register_c2b_urls()
            self.env.flush_all()

    def _invoice(self, amount=1000.0, partner=None):
        invoice = self.init_invoice(
            "out_invoice",
            partner=partner or self.partner,
            amounts=[amount],
            currency=self.currency_kes,
            taxes=[],
            post=True,
        )
        self.env.flush_all()
        return invoice

    def _c2b(
        self, bill_ref, amount, msisdn="254708374149", style="masked", trans_id=None
    ):
        before = len(
            [d for d in self.emulator.deliveries if d.kind == "c2b_confirmation"]
        )
        code = self.emulator.c2b_pay(
            SHORTCODE, msisdn, amount, bill_ref, msisdn_style=style, trans_id=trans_id
        )
        self._wait_callbacks(before + 1, kind="c2b_confirmation")
        return self.env["mpesa.receipt"].search([("name", "=", code)])

    def _post_process(self, receipt):
        with self._db_lock():
            (
                receipt.transaction_id | receipt.allocation_transaction_ids
            )._post_process()
            self.env.flush_all()

    def _journal_balance(self):
        lines = self.env["account.bank.statement.line"].search(
            [("journal_id", "=", self.journal.id)]
        )
        return sum(lines.mapped("amount"))
