"""One message per payment: when a receipt's money is applied, a job emails the
customer the receipt code and the PDF receipt (the only payment email we send)."""

import logging
from datetime import timedelta

from odoo import SUPERUSER_ID, api, fields, models
from odoo.exceptions import UserError

from ..amounts import shillings

_logger = logging.getLogger(__name__)

RECEIPT_TEMPLATE = "mpesa_payment.mail_template_mpesa_receipt_issued"
# The job mails the receipts recorded this recently only. Older ones without a
# receipt email (a database upgraded from a version that sent none, a job stopped
# for weeks) are no news to the customer: mailing them all at once would be spam.
# Staff can still issue one from the receipt's form. Recorded, not paid: a payment
# recovered today from a statement is news, whenever it was made.
ISSUE_WITHIN = timedelta(days=7)


class MpesaReceipt(models.Model):
    # One file per feature: the ledger lives in mpesa_receipt.py.
    _inherit = "mpesa.receipt"  # pylint: disable=consider-merging-classes-inherited

    receipt_issued_on = fields.Datetime(
        readonly=True, copy=False, help="When the PDF receipt was last sent."
    )
    receipt_issued_by = fields.Many2one("res.users", readonly=True, copy=False)
    receipt_sent_to = fields.Char(readonly=True, copy=False)
    receipt_issue_error = fields.Char(
        string="Receipt Not Sent Because",
        readonly=True,
        copy=False,
        help="Why the PDF receipt could not be sent automatically when last tried; "
        "the hourly job tries again.",
    )

    # === WHAT THE RECEIPT SAYS === #

    def _get_report_base_filename(self):
        """The PDF's file name, as portal's report download names it."""
        self.ensure_one()
        return self.env._("M-PESA Receipt %s", self.name)

    def _mpesa_portal_url(self):
        """Where the customer downloads this receipt; none without a portal page
        (mpesa_reports adds one)."""
        return False

    def _mpesa_paid_documents(self):
        """What this money paid: the invoices, else the orders, of the receipt or of its
        payment transaction(s). Read as superuser: the receipt's reader may not be
        allowed to read accounting documents."""
        self.ensure_one()
        receipt = self.sudo()
        txs = receipt.transaction_id | receipt.application_ids
        invoices = receipt.invoice_id | txs.invoice_ids
        if invoices:
            return invoices
        return receipt.sale_order_id | txs.sale_order_ids

    def _mpesa_is_part_payment(self, documents):
        """Whether this money paid less than the documents' total (in the receipt's
        currency, at the day it was paid)."""
        self.ensure_one()
        total = sum(
            document.currency_id._convert(
                document.amount_total,
                self.currency_id,
                document.company_id,
                self.paid_at or fields.Date.today(),
            )
            for document in documents
        )
        return self.currency_id.compare_amounts(self.amount, total) < 0

    def _mpesa_paid_lines(self):
        """(description, quantity, amount) of the lines of the paid documents. A part
        payment paid none of those lines in full, and listing them would read as if
        it had: it has one line saying what it went towards, in the receipt's
        currency."""
        documents = self._mpesa_paid_documents()
        if documents and self._mpesa_is_part_payment(documents):
            towards = self.env._(
                "Part payment towards %(documents)s (total %(total)s)",
                documents=", ".join(documents.mapped("name")),
                total=", ".join(
                    f"{doc.currency_id.name} {shillings(doc.amount_total)}"
                    for doc in documents
                ),
            )
            return [(towards, 1.0, self.amount)]
        if documents._name == "account.move":
            lines = documents.invoice_line_ids.filtered(
                lambda line: line.display_type == "product"
            )
        else:
            lines = documents.order_line.filtered(lambda line: not line.display_type)
        return [
            (
                (line.product_id.display_name or line.name or "").strip(),
                line.product_uom_qty
                if line._name == "sale.order.line"
                else line.quantity,
                line.price_total,
            )
            for line in lines
        ]

    # === ISSUING === #

    def _mpesa_is_payment_in(self):
        """Money received from a customer. Statement imports (mpesa_reconciliation)
        also record charges and withdrawals (``kind``): no receipt for those."""
        self.ensure_one()
        return self["kind"] == "payment" if "kind" in self._fields else True

    def _mpesa_check_issuable(self):
        for receipt in self:
            if not receipt._mpesa_is_payment_in() or receipt.state == "reversed":
                raise UserError(
                    self.env._(
                        "%s is not a payment received: no receipt can be issued.",
                        receipt.name,
                    )
                )
            if not receipt.partner_id.email:
                raise UserError(
                    self.env._(
                        "Receipt %s: the customer has no email address. Link the "
                        "customer or give them an email address first.",
                        receipt.name,
                    )
                )

    def _mpesa_issue_receipt(self, force=False):
        """Email the PDF receipt to the customer and note it on the ledger record.

        A receipt already issued is not sent again unless ``force``. Returns the
        receipts sent."""
        todo = self if force else self.filtered(lambda r: not r.receipt_issued_on)
        if not todo:
            return todo
        todo._mpesa_check_issuable()
        user = self.env.user
        if not user._is_internal():
            user = self.env["res.users"].browse(SUPERUSER_ID)
        template = self.env.ref(RECEIPT_TEMPLATE).sudo()
        for receipt in todo.with_user(user).sudo():
            receipt.message_post_with_source(
                template,
                message_type="comment",
                subtype_xmlid="mail.mt_comment",
                email_layout_xmlid="mail.mail_notification_light",
            )
            receipt.write(
                {
                    "receipt_issued_on": fields.Datetime.now(),
                    "receipt_issued_by": user.id,
                    "receipt_sent_to": receipt.partner_id.email,
                    "receipt_issue_error": False,
                }
            )
        return todo

    def _mpesa_auto_issue(self):
        """A payment just applied to a known customer: send the receipt once. Never let
        a receipt problem (no template, PDF engine down) fail the money's recording."""
        for receipt in self.filtered(
            lambda r: (
                r._mpesa_is_payment_in()
                and r.state == "applied"
                and not r.receipt_issued_on
                and r.partner_id.email_normalized
            )
        ):
            try:
                with self.env.cr.savepoint():
                    receipt._mpesa_issue_receipt()
            except (UserError, ValueError, OSError) as error:
                receipt._mpesa_note_issue_error(str(error))

    def _mpesa_note_issue_error(self, error):
        """Say on the receipt why it was not sent, once per cause: the hourly job
        tries again, and a line an hour for the same cause would bury its history."""
        _logger.warning("M-PESA receipt %s could not be issued: %s", self.name, error)
        if error == self.receipt_issue_error:
            return
        receipt = self.sudo()
        receipt.receipt_issue_error = error
        receipt.message_post(
            body=self.env._("The receipt could not be sent automatically: %s", error)
        )

    @api.model_create_multi
    def create(self, vals_list):
        """Override of the ORM to schedule the customer's receipt once money is applied."""
        receipts = super().create(vals_list)
        if receipts.filtered(lambda r: r.state == "applied"):
            self._mpesa_schedule_issuing()
        return receipts

    def write(self, vals):
        """Override of the ORM to schedule the customer's receipt once money is applied."""
        res = super().write(vals)
        if vals.get("state") == "applied":
            self._mpesa_schedule_issuing()
        return res

    @api.model
    def _mpesa_schedule_issuing(self):
        """Receipts are rendered (wkhtmltopdf) and mailed by a job, never inside the
        callback: a PDF rendered by a busy worker waits for another worker to serve
        its assets, and Safaricom's callback must be answered at once."""
        self.env.ref("mpesa_payment.cron_issue_receipts")._trigger()

    @api.model
    def _cron_issue_receipts(self):
        self._mpesa_receipts_to_issue()._mpesa_auto_issue()

    @api.model
    def _mpesa_receipts_to_issue(self, limit=200):
        """The receipts the job sends next, newest first. Only those of an address
        _mpesa_auto_issue sends to: one it would pass over must not hold a place."""
        domain = [
            ("state", "=", "applied"),
            ("receipt_issued_on", "=", False),
            ("partner_id.email_normalized", "!=", False),
            ("create_date", ">=", fields.Datetime.now() - ISSUE_WITHIN),
        ]
        if "kind" in self._fields:
            domain.append(("kind", "=", "payment"))
        return self.search(domain, limit=limit)
