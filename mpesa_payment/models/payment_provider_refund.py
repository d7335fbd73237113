from odoo import api, fields, models
from odoo.exceptions import ValidationError

from .field_helpers import admin_char


class PaymentProvider(models.Model):
    """Refunds: a full refund reverses the payment on M-PESA (Reversal API, from the
    paybill or till that received it); a partial refund, or an overpayment sent back,
    is a B2C payment (BusinessPayment) from the business's B2C shortcode."""

    _inherit = "payment.provider"  # pylint: disable=consider-merging-classes-inherited

    mpesa_b2c_shortcode = admin_char(
        string="B2C Shortcode",
        help="The shortcode that sends partial refunds and overpayments back to "
        "customers' phones (Safaricom's B2C product). Empty: only full refunds, by "
        "reversal, are possible.",
    )
    mpesa_b2c_initiator_name = admin_char(
        string="B2C Initiator Name",
        help="The API operator of the B2C shortcode, with the B2C initiator role.",
    )
    mpesa_b2c_security_credential = admin_char(
        string="B2C Security Credential",
        help="The B2C initiator's password encrypted with Safaricom's certificate. "
        "Set it by typing the B2C Initiator Password.",
    )
    mpesa_b2c_initiator_password = admin_char(
        string="B2C Initiator Password",
        compute="_compute_mpesa_b2c_initiator_password",
        inverse="_inverse_mpesa_b2c_initiator_password",
        help="Type the B2C initiator's password: it is encrypted at once with the "
        "certificate of the provider's environment and only the result is kept.",
    )
    mpesa_b2c_journal_id = fields.Many2one(
        "account.journal",
        string="B2C Journal",
        domain="[('type', '=', 'bank'), ('company_id', '=', company_id)]",
        help="The bank journal of the B2C shortcode's M-PESA account: refunds sent by "
        "B2C are paid from it and its statement gets one line per refund. Empty: "
        "the provider's journal.",
    )
    mpesa_refund_timeout = fields.Integer(
        string="Refund Answer Timeout (minutes)",
        default=30,
        help="A refund M-PESA has not answered after this delay is marked as not "
        "paid and put in the exception queue, nothing booked. Should M-PESA's "
        "result still come, it is booked then.",
    )

    def _compute_feature_support_fields(self):
        """Override of `payment` to offer partial refunds (full ones by reversal, partial
        ones by B2C)."""
        res = super()._compute_feature_support_fields()
        self.filtered(lambda p: p.code == "mpesa").update({"support_refund": "partial"})
        return res

    def _compute_mpesa_b2c_initiator_password(self):
        # Write-only, as the main initiator password.
        self.mpesa_b2c_initiator_password = False

    def _inverse_mpesa_b2c_initiator_password(self):
        self._mpesa_store_credential(
            "mpesa_b2c_initiator_password", "mpesa_b2c_security_credential"
        )

    def _mpesa_can_send_b2c(self):
        sudo = self.sudo()
        return bool(
            sudo.mpesa_b2c_shortcode
            and sudo.mpesa_b2c_initiator_name
            and sudo.mpesa_b2c_security_credential
        )

    def _mpesa_b2c_journal(self):
        self.ensure_one()
        return self.mpesa_b2c_journal_id or self.journal_id

    @api.constrains("mpesa_b2c_shortcode")
    def _check_mpesa_b2c_shortcode(self):
        for provider in self:
            code = provider.sudo().mpesa_b2c_shortcode
            if code and not code.isdigit():
                raise ValidationError(self.env._("The B2C shortcode is digits only."))
