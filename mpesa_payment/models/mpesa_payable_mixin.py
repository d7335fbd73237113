from odoo import models


class MpesaPayableMixin(models.AbstractModel):
    """What an invoice and a sales order share for M-PESA: staff's payment prompt, the
    account number printed on it and the "how to pay" block. One home, so both kinds
    of document prompt and print by the same rules."""

    _name = "mpesa.payable.mixin"
    _description = "M-PESA Payable Document"

    def action_mpesa_request_payment(self):
        """Staff push a payment prompt to the customer's phone (mpesa.collection)."""
        return self.env["mpesa.collection"]._action_request(self)

    def _mpesa_printed_reference(self):
        """The account number printed on this document (mpesa_how_to_pay.py)."""
        self.ensure_one()
        return self.env["mpesa.receipt"]._mpesa_printed_reference(self)

    def _mpesa_how_to_pay(self):
        """How to pay this document by paybill or till, as printed; or False."""
        self.ensure_one()
        if not self._mpesa_payable():
            return False
        return self.env["payment.provider"]._mpesa_how_to_pay(self)

    def _mpesa_payable(self):
        """Whether the document still asks for money (each kind says when)."""
        raise NotImplementedError
