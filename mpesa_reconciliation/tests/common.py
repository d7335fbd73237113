from odoo.addons.mpesa_payment.tests.common import SHORTCODE, MpesaHttpCommon

__all__ = ["SHORTCODE", "ReconciliationCommon"]


class ReconciliationCommon(MpesaHttpCommon):
    """M-PESA money flowing into the provider's bank journal, with real callbacks."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.journal = cls.mpesa.journal_id

    def _journal_balance(self):
        lines = self.env["account.bank.statement.line"].search(
            [("journal_id", "=", self.journal.id)]
        )
        return sum(lines.mapped("amount"))
