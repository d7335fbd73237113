import logging

import psycopg2

from odoo import api, fields, models

_logger = logging.getLogger(__name__)

CHANNELS = [
    ("stk", "STK Push"),
    ("c2b", "Paybill / Till (C2B)"),
    ("query", "Status Query"),
    ("import", "Statement Import"),
]


class MpesaReceipt(models.Model):
    """One record per M-PESA receipt code, whatever channel(s) reported it."""

    _name = "mpesa.receipt"
    _description = "M-PESA Receipt"
    _order = "paid_at desc, id desc"

    name = fields.Char(string="Receipt Code", required=True, readonly=True, index=True)
    provider_id = fields.Many2one("payment.provider", required=True, readonly=True)
    company_id = fields.Many2one(
        "res.company",
        required=True,
        readonly=True,
        index=True,
        default=lambda self: self.env.company,
    )
    shortcode = fields.Char(required=True, readonly=True)
    currency_id = fields.Many2one(
        "res.currency", readonly=True, default=lambda self: self.env.ref("base.KES")
    )
    amount = fields.Monetary(required=True, readonly=True)
    phone = fields.Char(
        readonly=True, help="As given by M-PESA: plain, masked or hashed."
    )
    customer_name = fields.Char(readonly=True)
    reference = fields.Char(string="Account Reference", readonly=True)
    paid_at = fields.Datetime(string="Paid On", readonly=True)
    partner_id = fields.Many2one("res.partner", readonly=True, index=True)
    transaction_id = fields.Many2one("payment.transaction", readonly=True, index=True)
    channel = fields.Selection(CHANNELS, string="First Seen By", readonly=True)
    channels = fields.Char(string="Seen By", readonly=True)
    callback_ids = fields.One2many("mpesa.callback", "receipt_id", readonly=True)

    _sql_constraints = [
        (
            "receipt_unique",
            "UNIQUE(company_id, shortcode, name)",
            "An M-PESA receipt code is unique per company and shortcode.",
        ),
    ]

    @api.model
    def _record(self, vals, channel, callback=None):
        """Get or create the receipt, merging what this channel adds. Safe under
        concurrency: a racing insert of the same code falls back to the existing row."""
        provider = self.env["payment.provider"].browse(vals["provider_id"]).sudo()
        key = {
            "name": vals["name"].strip().upper(),
            "company_id": provider.company_id.id,
            "shortcode": vals.get("shortcode") or provider.mpesa_shortcode,
        }
        receipt = self._find(key)
        if not receipt:
            try:
                with self.env.cr.savepoint():
                    receipt = self.create(
                        {**vals, **key, "channel": channel, "channels": channel}
                    )
            except psycopg2.IntegrityError:
                receipt = self._find(key)
        else:
            updates = {
                f: v
                for f, v in vals.items()
                if v
                and not receipt[f]
                and f
                in (
                    "phone",
                    "customer_name",
                    "reference",
                    "paid_at",
                    "partner_id",
                    "transaction_id",
                )
            }
            seen = set((receipt.channels or "").split(",")) - {""}
            if channel not in seen:
                updates["channels"] = ",".join(sorted(seen | {channel}))
            if updates:
                receipt.write(updates)
        if callback:
            callback.receipt_id = receipt
        return receipt

    def _find(self, key):
        return self.search([(k, "=", v) for k, v in key.items()], limit=1)
