import logging
from datetime import timedelta

from odoo import Command, api, fields, models
from odoo.exceptions import AccessError

from odoo.addons.mpesa_payment.kenya_time import kenya_day_bounds, kenya_today

from ..report_company import report_company_field

_logger = logging.getLogger(__name__)

SUMMARY_GROUP_PARAM = "mpesa_reports.summary_group_id"
DEFAULT_SUMMARY_GROUP = "mpesa_reconciliation.group_mpesa_reconciler"


def _total(receipts):
    return sum(receipts.mapped("amount"))


class MpesaDailySummary(models.TransientModel):
    """One day of M-PESA money for one company, as the finance team checks it."""

    _name = "mpesa.daily.summary"
    _description = "M-PESA Daily Reconciliation Summary"
    _rec_name = "date"

    date = fields.Date(
        required=True,
        default=lambda self: kenya_today() - timedelta(days=1),
        help="A day in Africa/Nairobi: from 00:00 to 24:00 East Africa Time.",
    )
    company_id = report_company_field()

    # === FIGURES === #

    def _check_company_allowed(self):
        """The figures are read with sudo: only for a company the user works in."""
        if self.env.su:
            return
        for summary in self:
            if summary.company_id not in self.env.user.company_ids:
                raise AccessError(
                    self.env._(
                        "You cannot see the M-PESA summary of %s.",
                        summary.company_id.name,
                    )
                )

    def _summary_values(self):
        """Everything the PDF shows, computed from the ledger."""
        self.ensure_one()
        self._check_company_allowed()
        start, end = kenya_day_bounds(self.date)
        receipts = (
            self.env["mpesa.receipt"]
            .sudo()
            .search(
                [
                    ("company_id", "=", self.company_id.id),
                    ("paid_at", ">=", start),
                    ("paid_at", "<", end),
                ]
            )
        )
        payments = receipts.filtered(lambda r: r.kind == "payment")
        reconciled = payments.filtered(lambda r: r.reconcile_state == "reconciled")
        reversed_since = payments.filtered(lambda r: r.state == "reversed")
        balances = self._balance_rows()
        return {
            "start": start,
            "end": end,
            "currency": self.env.ref("base.KES"),
            "received_count": len(payments),
            "received_amount": _total(payments),
            "reversed_count": len(reversed_since),
            "reversed_amount": _total(reversed_since),
            "by_channel": self._selection_rows(payments, "channel", skip_empty=True),
            "reconciliation": self._selection_rows(payments, "reconcile_state"),
            "reconciled_amount": _total(reconciled),
            "unreconciled_amount": _total(payments - reconciled),
            "exceptions": self._exception_rows(start, end),
            **self._movement_values(receipts, payments),
            "balances": balances,
            "mpesa_balance": sum(b["mpesa_balance"] for b in balances),
            "journal_balance": sum(b["journal_balance"] for b in balances),
            "balance_difference": sum(b["difference"] for b in balances),
        }

    def _movement_values(self, receipts, payments):
        """The day's money that is not a customer's payment, by kind: what M-PESA
        charged, what was withdrawn, and what went back to payers (reversals, B2C
        refunds), so that received less these is the journal's movement of the day."""
        values = {}
        for kind in ("charge", "withdrawal", "reversal", "refund"):
            of_kind = receipts.filtered(lambda r, k=kind: r.kind == k)
            values[f"{kind}s_count"] = len(of_kind)
            values[f"{kind}s_amount"] = _total(of_kind)
        recovered = payments.filtered("recovered")
        values.update(
            recovered_count=len(recovered),
            recovered_amount=_total(recovered),
            recovered_codes=recovered.mapped("name"),
        )
        return values

    def _selection_rows(self, payments, field_name, skip_empty=False):
        """The day's payments by a selection field of the receipt, in the selection's
        order (the PDF's tables read the same every day); ``skip_empty`` leaves out
        values with no payment (the First Seen By table), otherwise every value has
        its row."""
        field = self.env["mpesa.receipt"]._fields[field_name]
        rows = []
        for value, label in field._description_selection(self.env):
            chosen = payments.filtered(lambda r, v=value: r[field_name] == v)
            if chosen or not skip_empty:
                rows.append(
                    {"label": label, "count": len(chosen), "amount": _total(chosen)}
                )
        return rows

    def _exception_rows(self, start, end):
        """Open exceptions by kind: those of this day's money, and all still open."""
        exceptions = (
            self.env["mpesa.exception"]
            .sudo()
            .search([("company_id", "=", self.company_id.id), ("state", "=", "open")])
        )

        def of_day(exc):
            moment = exc.receipt_id.paid_at or exc.create_date
            return start <= moment < end

        Exception_ = self.env["mpesa.exception"]
        labels = Exception_._fields["kind"]._description_selection(self.env)
        rows = []
        for kind, label in labels:
            open_ = exceptions.filtered(lambda e, k=kind: e.kind == k)
            if not open_:
                continue
            day = open_.filtered(of_day)
            rows.append(
                {
                    "label": label,
                    "day_count": len(day),
                    "day_amount": sum(day.mapped("amount")),
                    "open_count": len(open_),
                    "open_amount": sum(open_.mapped("amount")),
                }
            )
        return rows

    def _balance_rows(self):
        """Per M-PESA shortcode: the last balance M-PESA reported, the journal's
        balance at the end of the day (its statement lines up to then), and the
        difference between M-PESA's balance and the journal as of the moment M-PESA
        reported it (money received since is not in M-PESA's figure)."""
        providers = (
            self.env["payment.provider"]
            ._mpesa_providers(self.company_id, active=False)
            .sorted("id")
        )
        rows = []
        for provider in providers.filtered("journal_id"):
            journal = provider.journal_id
            journal_balance = journal._mpesa_journal_balance(until=self.date)
            checked = provider.mpesa_balance_date
            at_check = (
                journal._mpesa_journal_balance(as_of=checked)
                if checked
                else journal_balance
            )
            rows.append(
                {
                    "shortcode": provider.mpesa_shortcode,
                    "label": provider._mpesa_shortcode_label(),
                    "provider": provider.name,
                    "journal": journal.name,
                    "mpesa_balance": provider.mpesa_balance,
                    "balance_date": checked,
                    "journal_balance": journal_balance,
                    "journal_balance_at_check": at_check,
                    "difference": provider.mpesa_balance - at_check,
                }
            )
        return rows

    # === PRINT AND SEND === #

    def action_print(self):
        self.ensure_one()
        self._check_company_allowed()
        return self.env.ref(
            "mpesa_reports.action_report_mpesa_daily_summary"
        ).report_action(self)

    @api.model
    def _summary_group(self):
        """The finance group that receives the daily summary (a group id or an XML
        id in the system parameter), by default M-PESA reconcilers."""
        value = (
            self.env["ir.config_parameter"].sudo().get_param(SUMMARY_GROUP_PARAM) or ""
        ).strip()
        group = self.env["res.groups"]
        if value.isdigit():
            group = group.sudo().browse(int(value)).exists()
        elif value:
            group = self.env.ref(value, raise_if_not_found=False) or group
        if not group or group._name != "res.groups":
            group = self.env.ref(DEFAULT_SUMMARY_GROUP)
        return group

    @api.model
    def _cron_send_daily_summary(self, day=None):
        """Email yesterday's summary (Nairobi) of each company taking M-PESA money to
        the finance group's users of that company."""
        day = day or kenya_today() - timedelta(days=1)
        template = self.env.ref("mpesa_reports.mail_template_mpesa_daily_summary")
        users = (
            self._summary_group()
            .sudo()
            .users.filtered(lambda u: not u.share and u.email)
        )
        providers = (
            self.env["payment.provider"]
            .sudo()
            .search([("code", "=", "mpesa"), ("state", "!=", "disabled")])
        )
        summaries = self.sudo().browse()
        for company in providers.company_id:
            partners = users.filtered(
                lambda u, c=company: c in u.company_ids
            ).partner_id
            if not partners:
                _logger.info(
                    "M-PESA daily summary of %s: nobody to send it to", company.name
                )
                continue
            summary = self.sudo().create({"date": day, "company_id": company.id})
            template.sudo().send_mail(
                summary.id,
                email_values={"recipient_ids": [Command.set(partners.ids)]},
            )
            summaries |= summary
        return summaries
