"""How to pay a document by M-PESA, as printed on the invoice, the portal and emails:
the paybill or till, the account number our resolver matches, the amount, and, where
the provider has Dynamic QR on, Daraja's QR code (cached per document and amount)."""

import base64
import binascii
import logging
from datetime import timedelta

import psycopg2

from odoo import api, fields, models
from odoo.tools import float_is_zero, float_round

from .. import const
from ..daraja.client import PATHS, DarajaError
from ..references import normalize_reference

_logger = logging.getLogger(__name__)

QR_SIZE = "300"
# A document is printed while the customer waits: Daraja gets a few seconds, then
# the document is printed without its QR code.
QR_TIMEOUT = 5
# After a failed QR request, Daraja is asked again for that document only after this.
QR_RETRY_AFTER = timedelta(minutes=10)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class MpesaQrCode(models.Model):
    _name = "mpesa.qr.code"
    _description = "M-PESA Dynamic QR Code (cache)"

    provider_id = fields.Many2one(
        "payment.provider", required=True, ondelete="cascade", index=True
    )
    reference = fields.Char(required=True)
    amount = fields.Float(required=True, digits=(16, 2))
    image = fields.Binary(
        attachment=False, help="Daraja's PNG; empty while Daraja could not make it."
    )

    _sql_constraints = [
        (
            "qr_unique",
            "UNIQUE(provider_id, reference, amount)",
            "One QR code per provider, account number and amount.",
        )
    ]


class PaymentProvider(models.Model):
    # One file per feature: the Daraja fields and flows live in payment_provider.py.
    _inherit = "payment.provider"  # pylint: disable=consider-merging-classes-inherited

    mpesa_dynamic_qr = fields.Boolean(
        string="Dynamic QR on Documents",
        help="Print on invoices, orders and their emails a QR code made by Daraja's "
        "Dynamic QR API: scanned with the M-PESA app, it fills in the business "
        "number, the account number and the amount.",
    )

    @api.model
    def _mpesa_how_to_pay_provider(self, company):
        """The M-PESA account customers of ``company`` are told to pay: a paybill
        (it takes an account number, so the payment names the document), else a
        till. Read as superuser: shortcodes are admin-only fields."""
        return (
            self._mpesa_paybill_provider(company) or self._mpesa_providers(company)[:1]
        )

    @api.model
    def _mpesa_how_to_pay(self, document):
        """What to print on ``document`` (an open invoice or order) so that a paybill
        or till payment reaches it, or False when M-PESA cannot pay it."""
        provider = self._mpesa_how_to_pay_provider(document.company_id)
        due = self.env["mpesa.receipt"]._amount_due(document)
        if (
            not provider
            or document.currency_id.name not in const.SUPPORTED_CURRENCIES
            or not due
            or float_is_zero(due, precision_rounding=document.currency_id.rounding)
            or due < 0
        ):
            return False
        till = provider.mpesa_shortcode_type == "till"
        account = self.env["mpesa.receipt"]._mpesa_printed_reference(document)
        if not (till or account):
            return False
        return {
            "kind": "till" if till else "paybill",
            "number": provider._mpesa_party_b(),
            "account": False if till else account,
            "amount": due,
            "currency": document.currency_id,
            "qr": provider._mpesa_qr_code(account or document.name, due),
        }

    # === DYNAMIC QR === #

    def _mpesa_qr_code(self, reference, amount):
        """Daraja's QR code (base64 PNG) paying ``amount`` to ``reference``, or False.
        Asked once per provider, reference and amount, then read from the cache; a
        Daraja failure prints no QR code and is asked again later."""
        self.ensure_one()
        amount = float_round(amount, precision_digits=2)
        if (
            not self.mpesa_dynamic_qr
            or amount != round(amount)
            or not const.AMOUNT_MIN <= amount <= const.AMOUNT_MAX
        ):
            return False
        cache = self.env["mpesa.qr.code"].sudo()
        key = [
            ("provider_id", "=", self.id),
            ("reference", "=", reference),
            ("amount", "=", amount),
        ]
        cached = cache.search(key, limit=1)
        if cached.image:
            return cached.image.decode()
        if cached and cached.write_date > fields.Datetime.now() - QR_RETRY_AFTER:
            return False
        image = self._mpesa_fetch_qr(reference, amount)
        try:
            with self.env.cr.savepoint():
                values = {"image": image or False}
                if cached:
                    cached.write(values)
                else:
                    cache.create(
                        {
                            "provider_id": self.id,
                            "reference": reference,
                            "amount": amount,
                            **values,
                        }
                    )
                cache.flush_model()
        except psycopg2.IntegrityError:
            # Printed at the same moment by someone else: their copy is kept.
            _logger.debug("M-PESA QR code for %s cached by another print", reference)
        return image or False

    def _mpesa_fetch_qr(self, reference, amount):
        """Ask Daraja for the QR code; None when it cannot make one."""
        sudo = self.sudo()
        payload = {
            "MerchantName": (self.company_id.name or "")[:100],
            "RefNo": reference,
            "Amount": int(amount),
            "TrxCode": "BG" if sudo.mpesa_shortcode_type == "till" else "PB",
            "CPI": self._mpesa_party_b(),
            "Size": QR_SIZE,
        }
        client = self._mpesa_client()
        client.timeout = QR_TIMEOUT
        try:
            answer = client.post(PATHS["qr"], payload)
        except DarajaError as error:
            _logger.info("No M-PESA QR code for %s: %s", reference, error.code)
            return None
        image = answer.get("QRCode")
        try:
            valid = base64.b64decode(image or "", validate=True)[:8] == PNG_SIGNATURE
        except (binascii.Error, ValueError, TypeError):
            valid = False
        if not valid:
            _logger.info("M-PESA answered no PNG QR code for %s", reference)
            return None
        return image


class MpesaReceipt(models.Model):
    # One file per feature: the ledger lives in mpesa_receipt.py.
    _inherit = "mpesa.receipt"  # pylint: disable=consider-merging-classes-inherited

    @api.model
    def _mpesa_printed_reference(self, document):
        """The account number to print on ``document``: the form the paybill resolver
        (_resolve_reference) matches exactly, letters and digits only so that case,
        spaces and separators typed on a phone do not matter. A subscription's
        invoice prints the subscription's number (the same every month; it pays the
        oldest open invoice). False when no form of the references names it alone."""
        candidates = []
        if document._name == "account.move":
            subscription = document.sudo().subscription_id
            if subscription.mpesa_account_ref:
                candidates.append((subscription.mpesa_account_ref, subscription))
            candidates += [
                (document.name, document),
                (document.payment_reference, document),
            ]
        else:
            candidates += [
                (document.name, document),
                (document.client_order_ref, document),
            ]
        for reference, target in candidates:
            reference = normalize_reference(reference)
            if not reference:
                continue
            # As the resolver sees them (it runs as superuser): whoever prints the
            # document may not read subscriptions or customers' account numbers.
            found = self.sudo()._documents_by_reference(reference, document.company_id)
            if [(doc._name, doc.id) for doc in found] == [(target._name, target.id)]:
                return reference
        return False


class AccountMoveSend(models.AbstractModel):
    _inherit = "account.move.send"

    @api.model
    def _get_default_mail_body(self, move, mail_template, mail_lang):
        """The invoice email says how to pay it by M-PESA, as the PDF does."""
        body = super()._get_default_mail_body(move, mail_template, mail_lang)
        how = move._mpesa_how_to_pay()
        if not how:
            return body
        block = self.env["ir.qweb"]._render(
            "mpesa_payment.how_to_pay", {"how": how, "for_email": True}
        )
        return body + block
