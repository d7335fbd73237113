from datetime import timedelta

from odoo import api, fields, models

from ..kenya_time import kenya_today
from .account_move import OPEN_INVOICE_DOMAIN
from .field_helpers import account_number_field

REMIND_DAYS_PARAM = "mpesa_payment.subscription_remind_days"
SUSPEND_DAYS_PARAM = "mpesa_payment.subscription_suspend_days"


class SaleSubscription(models.Model):
    _inherit = "sale.subscription"

    mpesa_account_ref = account_number_field(
        readonly=True,
        help="What the customer types as account number to pay this subscription by "
        "paybill. It is printed as payment reference on every recurring invoice.",
    )
    mpesa_access_status = fields.Selection(
        [("active", "Active"), ("overdue", "Overdue"), ("suspended", "Suspended")],
        string="Access",
        compute="_compute_mpesa_access_status",
        store=True,
        help="Driven by payment: overdue when an invoice is past due, suspended when "
        "it stays unpaid past the grace period.",
    )
    mpesa_overdue_since = fields.Date(
        compute="_compute_mpesa_access_status", store=True
    )

    _sql_constraints = [
        (
            "mpesa_account_ref_unique",
            "UNIQUE(mpesa_account_ref)",
            "This M-PESA account number is already used by another subscription.",
        ),
    ]

    @api.model_create_multi
    def create(self, vals_list):
        """Override of `subscription_oca` to give each subscription the account number
        customers type at the paybill (SUB00042), unless one was given."""
        subscriptions = super().create(vals_list)
        for sub in subscriptions.filtered(lambda s: not s.mpesa_account_ref):
            sub.mpesa_account_ref = f"SUB{sub.id:05d}"
        return subscriptions

    def _prepare_account_move(self, line_ids):
        """Override of `subscription_oca` to print the subscription's account number as the
        invoice's payment reference: a paybill payment quoting it finds the invoice."""
        values = super()._prepare_account_move(line_ids)
        if self.mpesa_account_ref:
            values["payment_reference"] = self.mpesa_account_ref
        return values

    def action_mpesa_request_payment(self):
        """Staff push a prompt for the oldest open invoice (mpesa.collection)."""
        return self.env["mpesa.collection"]._action_request(self)

    def _mpesa_open_invoices(self):
        """Unpaid posted invoices, oldest due first: what a payment settles first."""
        self.ensure_one()
        return self.env["account.move"].search(
            [("subscription_id", "=", self.id), *OPEN_INVOICE_DOMAIN],
            order="invoice_date_due asc, id asc",
        )

    @api.depends(
        "invoice_ids.payment_state", "invoice_ids.invoice_date_due", "invoice_ids.state"
    )
    def _compute_mpesa_access_status(self):
        today = kenya_today()  # the customer's day, whoever runs this
        suspend_days = int(
            self.env["ir.config_parameter"].sudo().get_param(SUSPEND_DAYS_PARAM, 14)
        )
        for sub in self:
            due_dates = [
                inv.invoice_date_due
                for inv in sub.invoice_ids
                if inv.state == "posted"
                and inv.move_type == "out_invoice"
                and inv.payment_state in ("not_paid", "partial")
                and inv.invoice_date_due
                and inv.invoice_date_due < today
            ]
            since = min(due_dates) if due_dates else False
            sub.mpesa_overdue_since = since
            if not since:
                sub.mpesa_access_status = "active"
            elif (today - since).days > suspend_days:
                sub.mpesa_access_status = "suspended"
            else:
                sub.mpesa_access_status = "overdue"

    @api.model
    def _cron_mpesa_subscriptions(self):
        """Daily: refresh access (time passes without any write) and send reminders."""
        subs = self.search([("stage_type", "!=", "post")])
        subs._compute_mpesa_access_status()
        remind_days = int(
            self.env["ir.config_parameter"].sudo().get_param(REMIND_DAYS_PARAM, 3)
        )
        today = kenya_today()  # the customer's day, whoever runs this
        invoices = self.env["account.move"].search(
            [
                ("subscription_id", "in", subs.ids),
                ("state", "=", "posted"),
                ("payment_state", "in", ("not_paid", "partial")),
            ]
        )
        due_soon = invoices.filtered(
            lambda i: (
                i.invoice_date_due
                and today <= i.invoice_date_due <= today + timedelta(days=remind_days)
                and not i.mpesa_reminder_sent
            )
        )
        overdue = invoices.filtered(
            lambda i: (
                i.invoice_date_due
                and i.invoice_date_due < today
                and not i.mpesa_overdue_notice_sent
            )
        )
        due_soon._mpesa_send_reminder("mpesa_payment.mail_template_mpesa_due")
        overdue._mpesa_send_reminder("mpesa_payment.mail_template_mpesa_overdue")
