from odoo import Command, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import float_compare

from .. import const
from ..amounts import shillings
from ..daraja.phone import mask_msisdn

STATES = [
    ("draft", "To Send"),
    ("pending", "Waiting for the Customer"),
    ("done", "Paid"),
    ("failed", "Failed"),
    ("exception", "In Exception"),
]
# Where each transaction state lands in the collection's own states.
TX_STATES = {
    "draft": "draft",
    "pending": "pending",
    "authorized": "pending",
    "done": "done",
    "cancel": "failed",
    "error": "failed",
}


class MpesaCollection(models.Model):
    """A payment a staff member asked for from a customer's phone (an STK push sent
    from the backend), followed until it is paid, failed or in exception."""

    _name = "mpesa.collection"
    _description = "M-PESA Payment Request by Staff"
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(string="Document", compute="_compute_name", store=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    invoice_id = fields.Many2one("account.move", readonly=True, check_company=True)
    sale_order_id = fields.Many2one("sale.order", readonly=True, check_company=True)
    subscription_id = fields.Many2one(
        "sale.subscription", readonly=True, check_company=True
    )
    partner_id = fields.Many2one("res.partner", string="Customer", required=True)
    phone = fields.Char(string="Customer's M-PESA Phone", required=True)
    currency_id = fields.Many2one(
        "res.currency", default=lambda self: self.env.ref("base.KES")
    )
    amount = fields.Monetary(required=True)
    amount_due = fields.Monetary(readonly=True)
    user_id = fields.Many2one(
        "res.users",
        string="Requested By",
        default=lambda self: self.env.user,
        readonly=True,
        index=True,
    )
    team_id = fields.Many2one(
        "crm.team",
        string="Sales Team",
        default=lambda self: self.env.user.sale_team_id,
        readonly=True,
        index="btree_not_null",
    )
    transaction_id = fields.Many2one(
        "payment.transaction", string="Last Request", readonly=True
    )
    transaction_ids = fields.One2many(
        "payment.transaction", "mpesa_collection_id", string="Requests Sent"
    )
    state = fields.Selection(
        STATES, compute="_compute_state", store=True, index=True, default="draft"
    )
    show_link = fields.Boolean(
        help="Staff chose to send a payment link: the customer is not at hand."
    )
    link_text = fields.Text(
        string="Message with the Payment Link",
        compute="_compute_link_text",
        help="Ready to paste into an SMS or a chat.",
    )
    state_message = fields.Text(related="transaction_id.state_message")
    receipt_code = fields.Char(related="transaction_id.mpesa_receipt_code")

    @api.depends("invoice_id", "sale_order_id", "subscription_id")
    def _compute_name(self):
        for collection in self:
            document = collection._document()
            collection.name = document.display_name if document else False

    @api.depends("transaction_id.state", "transaction_id.mpesa_needs_review")
    def _compute_state(self):
        for collection in self:
            tx = collection.transaction_id
            if tx.mpesa_needs_review:
                collection.state = "exception"
            else:
                collection.state = TX_STATES.get(tx.state, "draft") if tx else "draft"

    @api.depends("show_link", "amount", "partner_id")
    def _compute_link_text(self):
        for collection in self:
            document = collection.show_link and collection._paid_document()
            # Sent to the customer (SMS, email): in their language.
            customer_env = collection.with_context(
                lang=collection.partner_id.lang or self.env.lang
            ).env
            collection.link_text = (
                customer_env._(
                    "%(company)s: please pay %(document)s, %(currency)s %(amount)s, "
                    "with M-PESA here: %(link)s",
                    company=collection.company_id.name,
                    document=document.name,
                    currency=collection.currency_id.name,
                    amount=shillings(collection.amount),
                    link=collection._payment_link(document),
                )
                if document
                else False
            )

    def _payment_link(self, document):
        """Odoo's own payment link (signed for the customer and amount)."""
        wizard = (
            self.env["payment.link.wizard"]
            .with_context(active_model=document._name, active_id=document.id)
            .new({"amount": self.amount})
        )
        return wizard.link

    # === OPENING THE DIALOG === #

    @api.model
    def _action_request(self, document):
        """The dialog for ``document`` (invoice, order or subscription), prefilled."""
        document.ensure_one()
        target = document
        if document._name == "sale.subscription":
            target = document._mpesa_open_invoices()[:1]
            if not target:
                raise UserError(self.env._("This subscription has nothing to pay."))
        # In KES, whatever the document's currency: what the prompt asks.
        due = self.env["mpesa.receipt"]._amount_due(target)
        partner = document.partner_id
        values = {
            "partner_id": partner.id,
            "phone": partner.mobile or partner.phone or "",
            "amount": due,
            "amount_due": due,
            "company_id": document.company_id.id,
            {
                "account.move": "invoice_id",
                "sale.order": "sale_order_id",
                "sale.subscription": "subscription_id",
            }[document._name]: document.id,
        }
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Request M-PESA Payment"),
            "res_model": self._name,
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
            "context": {f"default_{key}": value for key, value in values.items()},
        }

    def _document(self):
        self.ensure_one()
        return self.invoice_id or self.sale_order_id or self.subscription_id

    def _paid_document(self):
        """What the money pays: a subscription pays its oldest open invoice."""
        if self.subscription_id:
            return self.subscription_id._mpesa_open_invoices()[:1]
        return self.invoice_id or self.sale_order_id

    # === SENDING === #

    def action_send(self):
        """Send the prompt to the customer's phone; the dialog then follows it."""
        self.ensure_one()
        if self.state in ("pending", "done"):
            raise UserError(self.env._("This request was already sent."))
        tx = self._new_transaction()
        self.transaction_id = tx
        try:
            tx._mpesa_send_stk_push(self.phone, requested_by=self.env.user)
        except ValidationError as error:
            raise UserError(str(error)) from error
        self._document().message_post(
            body=self.env._(
                "M-PESA payment request of %(currency)s %(amount)s sent to %(phone)s "
                "by %(user)s.",
                currency=self.currency_id.name,
                amount=shillings(self.amount),
                phone=mask_msisdn(tx.mpesa_phone),
                user=self.env.user.name,
            )
        )
        return self._reopen()

    def action_send_again(self):
        """After a failure: a new prompt, same phone and amount (both editable)."""
        self.ensure_one()
        if self.state != "failed":
            raise UserError(self.env._("Only a failed request can be sent again."))
        return self.action_send()

    def mpesa_poll(self):
        """What the dialog asks every few seconds while the prompt waits: once paid,
        the payment is booked at once, as Odoo's own status page does (a payment
        confirmed by the callback is otherwise booked by the post-processing job)."""
        self.ensure_one()
        self.check_access("read")
        tx = self.transaction_id.sudo()
        self.env["mpesa.callback"].sudo()._apply_received_of(tx)
        if tx.state == "done" and not tx.is_post_processed:
            tx._post_process()
        return self.state

    def action_send_link(self):
        """The customer is not at hand: show the payment link, ready for an SMS."""
        self.ensure_one()
        document = self._paid_document()
        if not document:
            raise UserError(self.env._("There is nothing left to pay."))
        if document.currency_id.name not in const.SUPPORTED_CURRENCIES:
            # Odoo's payment page asks the document's own currency, and offers no
            # M-PESA in another currency than KES (_get_supported_currencies).
            raise UserError(
                self.env._(
                    "The payment page of %(document)s asks %(currency)s, which M-PESA "
                    "does not take: send the payment request to the customer's phone "
                    "instead.",
                    document=document.name,
                    currency=document.currency_id.name,
                )
            )
        # The link carries the document's portal token: make it now, in this write
        # transaction, not while the dialog reads the link (a read-only request).
        document._portal_ensure_token()
        self.show_link = True
        return self._reopen()

    def action_email_link(self):
        """Email the payment link to the customer, from the document's chatter."""
        self.ensure_one()
        if not self.partner_id.email:
            raise UserError(
                self.env._("%s has no email address.", self.partner_id.display_name)
            )
        self._document().message_post(
            body=self.link_text,
            partner_ids=self.partner_id.ids,
            subtype_xmlid="mail.mt_comment",
        )
        return {"type": "ir.actions.act_window_close"}

    def _reopen(self):
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Request M-PESA Payment"),
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
        }

    def _provider(self):
        # The one the payment form offers when the company has several shortcodes.
        provider = self.env["payment.provider"]._mpesa_providers(self.company_id)[:1]
        if not provider:
            raise UserError(
                self.env._(
                    "M-PESA is not enabled for %s: ask an administrator to enable the "
                    "M-PESA payment provider.",
                    self.company_id.name,
                )
            )
        return provider

    def _new_transaction(self):
        """A payment transaction for the document, as the portal would create it."""
        provider = self._provider()
        document = self._paid_document()
        if not document:
            raise UserError(self.env._("There is nothing left to pay."))
        if float_compare(self.amount, 0, precision_digits=2) <= 0:
            raise UserError(self.env._("Enter the amount to ask for."))
        field = "invoice_ids" if document._name == "account.move" else "sale_order_ids"
        Tx = self.env["payment.transaction"].sudo()
        links = {field: [Command.set(document.ids)]}
        return Tx.create(
            {
                "provider_id": provider.id,
                "payment_method_id": self.env.ref("payment.payment_method_mpesa").id,
                "reference": Tx._compute_reference("mpesa", **links),
                "amount": self.amount,
                "currency_id": self.currency_id.id,
                "partner_id": self.partner_id.id,
                "operation": "online_direct",
                "mpesa_collection_id": self.id,
                **links,
            }
        )
