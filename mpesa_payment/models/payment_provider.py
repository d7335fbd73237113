import datetime as dt
import hashlib
import hmac
import ipaddress
import logging
import secrets
import time

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import consteq, file_open

from .. import const
from ..daraja.client import PATHS, DarajaClient, DarajaError
from ..daraja.credential import (
    SHIPPED_CERTIFICATES,
    CertificateError,
    encrypt_initiator_password,
)
from .field_helpers import admin_char, admin_only

_logger = logging.getLogger(__name__)


def _same_signature(expected, given):
    """Constant-time comparison of a URL signature. consteq raises TypeError on
    non-ASCII text: a signature that is not ASCII is simply not ours."""
    return isinstance(given, str) and given.isascii() and consteq(expected, given)


def _new_secret(*_args):
    return secrets.token_urlsafe(32)


def _url_secret(**kwargs):
    """A secret part of the URLs given to Safaricom: random from the start and never
    copied, so that a copied provider does not accept the original's callbacks."""
    return admin_char(default=_new_secret, copy=False, **kwargs)


class ProviderTokenStore:
    """Share one Daraja OAuth token per provider between all workers.

    A new token may invalidate the previous one, so a worker that needs a new token
    locks the provider row, and takes the token another worker just stored if any.
    """

    MARGIN = dt.timedelta(seconds=60)

    def __init__(self, provider):
        self.provider = provider.sudo()

    def get(self):
        p = self.provider
        if (
            p.mpesa_access_token
            and p.mpesa_token_expiry
            and (p.mpesa_token_expiry > fields.Datetime.now() + self.MARGIN)
        ):
            return p.mpesa_access_token
        return None

    def refresh(self, stale, fetch):
        cr = self.provider.env.cr
        cr.execute(
            # NO KEY UPDATE: a money request committed on a cursor of its own later
            # in this transaction still inserts rows naming this provider.
            "SELECT mpesa_access_token, mpesa_token_expiry FROM payment_provider"
            " WHERE id = %s FOR NO KEY UPDATE",
            [self.provider.id],
        )
        token, expiry = cr.fetchone()
        now = fields.Datetime.now()
        if token and token != stale and expiry and expiry > now + self.MARGIN:
            self.provider.invalidate_recordset(
                ["mpesa_access_token", "mpesa_token_expiry"]
            )
            return token
        token, expires_in = fetch()
        self.provider.write(
            {
                "mpesa_access_token": token,
                "mpesa_token_expiry": now + dt.timedelta(seconds=expires_in),
            }
        )
        return token


class PaymentProvider(models.Model):
    _inherit = "payment.provider"

    code = fields.Selection(
        selection_add=[("mpesa", "M-PESA")], ondelete={"mpesa": "set default"}
    )
    mpesa_consumer_key = admin_char(string="Consumer Key", required_if_provider="mpesa")
    mpesa_consumer_secret = admin_char(
        string="Consumer Secret",
        required_if_provider="mpesa",
    )
    mpesa_shortcode = admin_char(
        string="Business Shortcode",
        required_if_provider="mpesa",
        help="The paybill number, or for Buy Goods the store / head office number.",
    )
    mpesa_shortcode_type = admin_only(
        fields.Selection,
        [("paybill", "Paybill"), ("till", "Till (Buy Goods)")],
        string="Shortcode Type",
        default="paybill",
    )
    mpesa_till_number = admin_char(
        string="Till Number",
        help="For Buy Goods: the till that receives the money (PartyB).",
    )
    mpesa_passkey = admin_char(
        string="Lipa na M-PESA Passkey",
        required_if_provider="mpesa",
    )
    mpesa_initiator_name = admin_char(
        string="Initiator Name",
        help="API operator used for transaction status, reversal and balance queries.",
    )
    mpesa_security_credential = admin_char(
        string="Security Credential",
        help="The initiator password encrypted with Safaricom's certificate. Set it by "
        "typing the Initiator Password, or paste a credential encrypted elsewhere.",
    )
    mpesa_initiator_password = admin_char(
        string="Initiator Password",
        compute="_compute_mpesa_initiator_password",
        inverse="_inverse_mpesa_initiator_password",
        help="Type the initiator's password to set the Security Credential: it is "
        "encrypted at once with the certificate of the provider's environment and "
        "only the result is kept; the password itself is stored nowhere. Type it "
        "again after switching between test mode and production.",
    )
    mpesa_certificate = admin_only(
        fields.Text,
        string="Encryption Certificate",
        help="The public certificate (PEM or DER as base64 text) that encrypts the "
        "initiator password. Leave empty to use Safaricom's certificate of the "
        "environment, shipped with the module (sandbox in test mode, production when "
        "enabled). Paste Safaricom's new certificate when it publishes one, or the "
        "emulator's (/emulator/certificate) when the API URL points at it.",
    )
    mpesa_api_url = admin_char(
        string="API Base URL Override",
        help="Leave empty to use Safaricom's sandbox (test mode) or production "
        "(enabled) hosts. Set it to reach another Daraja, such as a local emulator.",
    )
    mpesa_environment = fields.Selection(
        [("sandbox", "Sandbox"), ("production", "Production")],
        string="Daraja Environment",
        compute="_compute_mpesa_environment",
        help="Follows the provider state: Test mode uses the sandbox, Enabled production.",
    )
    mpesa_webhook_secret = _url_secret(
        string="Callback Signing Secret",
        help="Signs the callback URLs given to Safaricom. Rotating it rejects callbacks "
        "for payment requests sent before the rotation.",
    )
    mpesa_query_delay = fields.Integer(
        string="Status Query Delay (minutes)",
        default=2,
        help="Pending payment requests without a confirmation after this delay are "
        "checked with Safaricom by the status query job.",
    )
    mpesa_c2b_api_version = fields.Selection(
        [("v1", "v1 (hashed phone numbers)"), ("v2", "v2 (masked phone numbers)")],
        string="C2B API Version",
        default="v2",
        help="Must match the C2B product of your Daraja app.",
    )
    mpesa_c2b_response_type = fields.Selection(
        [("Completed", "Complete the payment"), ("Cancelled", "Cancel the payment")],
        string="If Validation Does Not Answer",
        default="Completed",
        help="What M-PESA does when our validation URL does not answer in about 8 s.",
    )
    mpesa_c2b_validate_reference = fields.Boolean(
        string="Reject Unknown Account Numbers",
        help="With external validation enabled by Safaricom: refuse paybill payments "
        "whose account number matches no invoice, order, subscription or customer.",
    )
    mpesa_c2b_validate_amount = fields.Boolean(
        string="Reject Wrong Amounts",
        help="With external validation: refuse payments larger than what the referenced "
        "invoice or order still owes.",
    )
    mpesa_c2b_secret = _url_secret(
        string="C2B URL Secret",
        help="Part of the C2B URLs registered with Safaricom. Changing it means "
        "registering the URLs again.",
    )
    mpesa_callback_ips = admin_char(
        string="Callback IP Allow-list",
        help="Addresses or networks (comma separated, e.g. 196.201.214.0/24) allowed "
        "to post callbacks; empty allows any sender. Set to Safaricom's published "
        "callback addresses when the provider is enabled (production) with none. "
        "Behind a reverse proxy, run Odoo with --proxy-mode so the real sender "
        "address is seen.",
    )
    mpesa_push_limit_document = fields.Integer(
        string="Prompts per Document per Hour",
        default=5,
        help="At most this many STK prompts for one invoice or order in an hour "
        "(0: no limit). An honest customer rarely needs more than two or three.",
    )
    mpesa_push_limit_phone = fields.Integer(
        string="Prompts per Phone per Hour",
        default=5,
        help="At most this many STK prompts to one phone number in an hour (0: no "
        "limit): nobody can flood a phone with payment requests.",
    )
    mpesa_push_limit_address = fields.Integer(
        string="Prompts per Client Address per Hour",
        default=60,
        help="At most this many STK prompts asked from one internet address in an "
        "hour (0: no limit). Kenyan mobile networks put many customers behind one "
        "address, so keep it generous.",
    )
    mpesa_push_limit_user = fields.Integer(
        string="Prompts per Staff Member per Hour",
        default=30,
        help="At most this many payment requests sent from the backend by one staff "
        "member in an hour (0: no limit).",
    )
    # What M-PESA said of this shortcode: a copy has asked nothing yet.
    mpesa_c2b_registered = fields.Datetime(
        string="C2B URLs Registered On", readonly=True, copy=False
    )
    # M-PESA counts in shillings, whatever currency the company keeps its books in
    # (main_currency_id is the company's).
    mpesa_currency_id = fields.Many2one(
        "res.currency", string="M-PESA Currency", compute="_compute_mpesa_currency_id"
    )
    mpesa_balance = fields.Monetary(
        string="M-PESA Balance",
        currency_field="mpesa_currency_id",
        readonly=True,
        copy=False,
    )
    mpesa_balance_date = fields.Datetime(
        string="Balance Checked On", readonly=True, copy=False
    )
    mpesa_access_token = admin_char(copy=False)
    mpesa_token_expiry = admin_only(fields.Datetime, copy=False)

    def _compute_mpesa_currency_id(self):
        self.mpesa_currency_id = self.env.ref("base.KES")

    @api.depends("state")
    def _compute_mpesa_environment(self):
        for provider in self:
            provider.mpesa_environment = (
                "production" if provider.state == "enabled" else "sandbox"
            )

    # === SECURITY CREDENTIAL (initiator password, encrypted at once) === #

    def _compute_mpesa_initiator_password(self):
        # Write-only: the password is kept nowhere, so there is never one to show.
        self.mpesa_initiator_password = False

    def _inverse_mpesa_initiator_password(self):
        self._mpesa_store_credential(
            "mpesa_initiator_password", "mpesa_security_credential"
        )

    def _mpesa_store_credential(self, password_field, credential_field):
        """Encrypt a typed initiator password into its Security Credential (the main
        initiator's and the B2C one's alike); the password is kept nowhere."""
        for provider in self:
            password = provider[password_field]
            if password:  # empty: keep the current credential
                provider[credential_field] = provider._mpesa_encrypt_initiator_password(
                    password
                )
        # Not even the cache keeps it (a form's save reads the record back).
        self.invalidate_recordset([password_field])

    def _mpesa_certificate_data(self):
        """(certificate bytes, shipped): the provider's own certificate if set, else
        Safaricom's certificate of its environment shipped with the module."""
        self.ensure_one()
        custom = (self.sudo().mpesa_certificate or "").strip()
        if custom:
            return custom.encode(), False
        path = SHIPPED_CERTIFICATES[self.mpesa_environment]
        with file_open(path, "rb") as certificate:
            return certificate.read(), True

    def _mpesa_encrypt_initiator_password(self, password):
        """Daraja's SecurityCredential for ``password`` (never logged)."""
        self.ensure_one()
        certificate, shipped = self._mpesa_certificate_data()
        try:
            # Safaricom's shipped certificates expired years ago and are still
            # Daraja's: only a certificate pasted by the admin must be current.
            credential = encrypt_initiator_password(
                password, certificate, allow_expired=shipped
            )
        except CertificateError as error:
            raise UserError(
                self.env._(
                    "The initiator password could not be encrypted: %(problem)s "
                    "Paste Safaricom's current certificate for this environment in "
                    "Encryption Certificate, or empty that field to use the one "
                    "shipped with the module.",
                    problem=error,
                )
            ) from error
        except ValueError as error:  # an empty or too long password
            raise UserError(
                self.env._("The initiator password was not accepted: %s", error)
            ) from error
        _logger.info(
            "M-PESA provider %s: security credential set from the initiator "
            "password (%s certificate)",
            self.id,
            "custom" if not shipped else self.mpesa_environment,
        )
        return credential

    @api.constrains("mpesa_shortcode", "mpesa_till_number", "mpesa_shortcode_type")
    def _check_mpesa_shortcodes(self):
        for provider in self.filtered(lambda p: p.code == "mpesa"):
            for number in (provider.mpesa_shortcode, provider.mpesa_till_number):
                if number and not number.isdigit():
                    raise ValidationError(
                        self.env._("M-PESA shortcodes and tills are digits only.")
                    )
            if (
                provider.mpesa_shortcode_type == "till"
                and not provider.mpesa_till_number
            ):
                raise ValidationError(
                    self.env._("A Buy Goods provider needs its till number.")
                )

    # === PAYMENT FRAMEWORK HOOKS === #

    def _get_supported_currencies(self):
        """Override of `payment` to return the supported currencies: M-PESA moves KES only."""
        supported = super()._get_supported_currencies()
        if self.code == "mpesa":
            supported = supported.filtered(
                lambda c: c.name in const.SUPPORTED_CURRENCIES
            )
        return supported

    def _get_default_payment_method_codes(self):
        """Override of `payment` to return the default payment method codes."""
        codes = super()._get_default_payment_method_codes()
        if self.code != "mpesa":
            return codes
        return const.DEFAULT_PAYMENT_METHOD_CODES

    # === DARAJA ACCESS === #

    def _mpesa_base_url(self):
        self.ensure_one()
        return self.sudo().mpesa_api_url or const.API_URLS.get(
            self.state, const.API_URLS["test"]
        )

    def _mpesa_client(self):
        self.ensure_one()
        sudo = self.sudo()
        return DarajaClient(
            self._mpesa_base_url(),
            sudo.mpesa_consumer_key,
            sudo.mpesa_consumer_secret,
            ProviderTokenStore(self),
        )

    @api.model
    def _mpesa_refusal(self, error, message):
        """The UserError for a request M-PESA refused (a DarajaError): ``message``, already
        translated, says what was refused and takes Safaricom's own words and error
        code as %(msg)s and %(code)s."""
        return UserError(message % {"msg": error.message, "code": error.code})

    def _mpesa_party_b(self):
        sudo = self.sudo()
        return (
            sudo.mpesa_till_number
            if sudo.mpesa_shortcode_type == "till"
            else (sudo.mpesa_shortcode)
        )

    def action_mpesa_test_connection(self):
        """Check the credentials by asking Daraja for a token; say it plainly."""
        self.ensure_one()
        try:
            self._mpesa_client().fetch_token()
        except DarajaError as error:
            if error.code.startswith("400.008"):
                message = self.env._(
                    "Safaricom rejected the consumer key or secret. Copy both again from "
                    "your Daraja app (they differ between sandbox and production)."
                )
            elif error.code in ("connection", "timeout"):
                message = self.env._(
                    "Safaricom could not be reached at %(url)s. Check the server's "
                    "internet access or the API URL override.",
                    url=self._mpesa_base_url(),
                )
            else:
                message = self.env._(
                    "Safaricom answered: %(msg)s (%(code)s)",
                    msg=error.message,
                    code=error.code,
                )
            raise UserError(self.env._("Connection failed. %s", message)) from error
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "title": self.env._("Connection works"),
                "message": self.env._(
                    "Safaricom accepted the consumer key and secret."
                ),
                "sticky": False,
            },
        }

    def action_mpesa_rotate_secret(self):
        self.ensure_one()
        self.sudo().mpesa_webhook_secret = _new_secret()
        return True

    def action_mpesa_rotate_c2b_secret(self):
        """A new secret in the C2B URLs: the old URLs stop working at once, so the
        new ones must be registered with Safaricom (in production through
        Safaricom's URL management, as registration is one-time there)."""
        self.ensure_one()
        self.sudo().write(
            {"mpesa_c2b_secret": _new_secret(), "mpesa_c2b_registered": False}
        )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "warning",
                "sticky": True,
                "title": self.env._("C2B URLs changed"),
                "message": self.env._(
                    "Register the C2B URLs again now (Register C2B URLs). In production "
                    "Safaricom registers URLs once: ask Safaricom's URL management to "
                    "change them. Paybill payments notified to the old URLs are refused "
                    "until then; the statement import or the Pull API recovers them."
                ),
            },
        }

    def write(self, vals):
        """Enabling a provider (production) with no callback allow-list gives it
        Safaricom's published callback addresses."""
        res = super().write(vals)
        if vals.get("state") == "enabled":
            for provider in self.filtered(
                lambda p: p.code == "mpesa" and not p.sudo().mpesa_callback_ips
            ):
                provider.sudo().mpesa_callback_ips = const.SAFARICOM_CALLBACK_IPS
        if {"state", "journal_id", "company_id", "code"} & set(vals):
            self._mpesa_ensure_method_line()
        return res

    # === PAYMENT METHOD LINE (one per provider, made eagerly) === #

    @api.model_create_multi
    def create(self, vals_list):
        """Override of `payment` to give each new M-PESA provider its payment method line
        at once (core makes it lazily, which races on a fresh database)."""
        providers = super().create(vals_list)
        providers._mpesa_ensure_method_line()
        return providers

    def _mpesa_ensure_method_line(self):
        """Give an active M-PESA provider its payment method line now.

        Core (account_payment) only creates it when ``journal_id`` is first computed,
        which on a fresh database is when the first payments are booked: several
        workers at once, each creating a line on the same journal. So the line is made
        here, when the provider is created, activated or given a journal."""
        for provider in self.filtered(
            lambda p: p.id and p.code == "mpesa" and p.state in ("enabled", "test")
        ):
            provider.invalidate_recordset(["journal_id"])
            # Computing the journal makes the line if missing (core, under our lock).
            if provider.journal_id and not provider._mpesa_method_lines():
                provider._ensure_payment_method_line()

    def _mpesa_method_lines(self):
        """This provider's payment method lines on a journal: one, unless the race of
        issue #11 left several."""
        self.ensure_one()
        return (
            self.env["account.payment.method.line"]
            .sudo()
            .search(
                [("payment_provider_id", "=", self.id), ("journal_id", "!=", False)]
            )
        )

    def _mpesa_lock_method_line(self):
        """Serialize the making (or mending) of this provider's payment method line.

        Odoo's transactions are REPEATABLE READ: a plain row lock (FOR UPDATE) would
        only make a second worker wait, after which its snapshot, taken before the
        first one committed, still shows no line and it creates another. So the row is
        updated (with no change): a concurrent transaction reaching this point then
        fails with a serialization error, and Odoo retries it in a new snapshot, which
        sees the line. It only happens while the line is missing (or duplicated), and
        that expected failure is not logged as a bad query."""
        self.env.cr.execute(
            "UPDATE payment_provider SET write_date = write_date WHERE id = %s",
            [self.id],
            log_exceptions=False,
        )

    def _ensure_payment_method_line(self, allow_create=True):
        """Override of account_payment: never a second line for the same provider.

        Core searches for the provider's line and creates one if its snapshot has none,
        with nothing to stop concurrent first readers of ``journal_id`` (four first STK
        payments on a fresh database made four M-PESA lines on one journal; afterwards
        no provider could be enabled on it: "two payment method lines ... with the same
        name"). Lines are made eagerly (``_mpesa_ensure_method_line``); should one still
        be missing, its creation is serialized on the provider row. Duplicates left by
        the race on this journal are mended first, so other providers can use it."""
        self.ensure_one()
        if self.id and self.journal_id:
            self._mpesa_merge_duplicate_method_lines(
                [("journal_id", "=", self.journal_id.id)]
            )
        if (
            self.id
            and allow_create
            and self._get_code() == "mpesa"
            and not self._mpesa_method_lines()
        ):
            self._mpesa_lock_method_line()
        return super()._ensure_payment_method_line(allow_create=allow_create)

    def _compute_journal_id(self):
        """Override of account_payment: an M-PESA provider with several lines (a
        database hit by the race of issue #11) has them mended before core picks one;
        otherwise its payments fail ("Expected singleton") and so does any provider
        enabled on the journal."""
        providers = self.filtered(lambda p: p.code == "mpesa" and p._origin.id)
        if providers:
            self._mpesa_merge_duplicate_method_lines(
                [("payment_provider_id", "in", providers._origin.ids)]
            )
        return super()._compute_journal_id()

    @api.model
    def _mpesa_merge_duplicate_method_lines(self, domain):
        """Leave one line per M-PESA provider and journal among the lines of ``domain``.

        The line kept is the one most payments use (then the first). A duplicate that no
        payment uses is deleted; one that payments use is only taken off the journal,
        as core's unlink does, so that those payments keep their method line."""
        Line = self.env["account.payment.method.line"].sudo()
        groups = Line._read_group(
            [
                *domain,
                ("payment_provider_id.code", "=", "mpesa"),
                ("journal_id", "!=", False),
            ],
            ["payment_provider_id", "journal_id"],
            having=[("__count", ">", 1)],
        )
        for provider, journal in groups:
            provider._mpesa_lock_method_line()
            lines = Line.search(
                [
                    ("payment_provider_id", "=", provider.id),
                    ("journal_id", "=", journal.id),
                ]
            )
            used = dict(
                self.env["account.payment"]
                .sudo()
                ._read_group(
                    [("payment_method_line_id", "in", lines.ids)],
                    ["payment_method_line_id"],
                    ["__count"],
                )
            )
            # max() keeps the first of equals: the line core's search finds first.
            keep = max(lines, key=lambda line: used.get(line, 0))
            used_dupes = Line.browse([line.id for line in lines - keep if line in used])
            unused_dupes = lines - keep - used_dupes
            _logger.warning(
                "M-PESA provider %s had %s payment method lines on journal %s: kept %s, "
                "took %s off the journal (payments use them), deleted %s",
                provider.id,
                len(lines),
                journal.display_name,
                keep.id,
                used_dupes.ids,
                unused_dupes.ids,
            )
            used_dupes.write({"journal_id": False})
            unused_dupes.write({"journal_id": False, "payment_provider_id": False})
            unused_dupes.unlink()

    def _mpesa_can_verify(self):
        """Whether Transaction Status can confirm a paybill payment before it is
        booked: initiator credentials are set."""
        sudo = self.sudo()
        return bool(sudo.mpesa_initiator_name and sudo.mpesa_security_credential)

    # === CALLBACK URL TOKENS === #

    def _mpesa_sign(self, message, secret_field="mpesa_webhook_secret"):
        """HMAC-SHA256 of ``message`` with one of this provider's secrets, shortened to
        40 hex digits (160 bits) to keep the callback URLs short."""
        secret = self.sudo()[secret_field] or ""
        return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()[
            :40
        ]

    def _mpesa_make_token(self, scope, record_id, days=const.CALLBACK_TOKEN_DAYS):
        """An unguessable token binding a callback URL to one record until it expires.

        Not core's hash_sign/verify_hash_signed: those sign with the database secret
        and refuse an expired token, while ours are signed per provider (rotating its
        Callback Signing Secret revokes them) and a very late callback must still be
        known as ours (``_mpesa_check_token(allow_expired=True)``)."""
        self.ensure_one()
        expiry = int(time.time()) + days * 86400
        return (
            f"{record_id}.{expiry}.{self._mpesa_sign(f'{scope}:{record_id}:{expiry}')}"
        )

    @api.model
    def _mpesa_check_token(self, scope, token, allow_expired=False):
        """Return (provider, record_id) for a valid token, or None. ``allow_expired``:
        a token we signed stays ours after it expires (a very late callback)."""
        try:
            record_id, expiry, signature = token.split(".")
            record_id, expiry = int(record_id), int(expiry)
        except (AttributeError, ValueError):
            return None
        if expiry < time.time() and not allow_expired:
            return None
        providers = self.sudo().search([("code", "=", "mpesa")])
        for provider in providers:
            expected = provider._mpesa_sign(f"{scope}:{record_id}:{expiry}")
            if _same_signature(expected, signature):
                return provider, record_id
        return None

    def _mpesa_callback_url(self, route):
        self.ensure_one()
        return self.get_base_url().rstrip("/") + route

    @api.constrains("mpesa_callback_ips")
    def _check_mpesa_callback_ips(self):
        for provider in self:
            try:
                provider._mpesa_callback_networks()
            except ValueError as error:
                raise ValidationError(
                    self.env._("The callback IP allow-list is not valid: %s", error)
                ) from error

    def _mpesa_callback_networks(self):
        text = self.sudo().mpesa_callback_ips or ""
        return [
            ipaddress.ip_network(part.strip(), strict=False)
            for part in text.replace(";", ",").split(",")
            if part.strip()
        ]

    def _mpesa_ip_allowed(self, address):
        """Whether a callback from ``address`` may be processed (empty list: any)."""
        self.ensure_one()
        networks = self._mpesa_callback_networks()
        if not networks:
            return True
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in networks)

    # === C2B URLS === #

    def _mpesa_c2b_signature(self):
        """The C2B URLs' signature. Not core's hash_sign either: Safaricom keeps the URLs
        registered for good, so they carry no expiry and change only with the secret."""
        return self._mpesa_sign(f"c2b:{self.id}", "mpesa_c2b_secret")

    def _mpesa_c2b_urls(self):
        """The validation and confirmation URLs: long-lived, so no expiry in them."""
        self.ensure_one()
        base = f"/payment/daraja/c2b/{self.id}/{self._mpesa_c2b_signature()}"
        return {
            "ValidationURL": self._mpesa_callback_url(f"{base}/validation"),
            "ConfirmationURL": self._mpesa_callback_url(f"{base}/confirmation"),
        }

    @api.model
    def _mpesa_check_c2b_signature(self, provider_id, signature):
        provider = self.sudo().browse(provider_id).exists()
        if (
            provider
            and provider.code == "mpesa"
            and _same_signature(provider._mpesa_c2b_signature(), signature)
        ):
            return provider
        return None

    def _mpesa_c2b_url_problems(self, urls):
        """Safaricom's production rules for C2B URLs, checked before calling."""
        problems = []
        for key, url in urls.items():
            if not url.startswith("https://"):
                problems.append(self.env._("%s must use https.", key))
            lowered = url.lower()
            for word in const.C2B_FORBIDDEN_URL_WORDS:
                if word in lowered:
                    problems.append(
                        self.env._(
                            "%(key)s must not contain the word '%(word)s'.",
                            key=key,
                            word=word,
                        )
                    )
        return problems

    def action_mpesa_register_c2b_urls(self):
        self.ensure_one()
        urls = self._mpesa_c2b_urls()
        if self.state == "enabled":
            problems = self._mpesa_c2b_url_problems(urls)
            if problems:
                raise UserError(
                    self.env._(
                        "Safaricom would refuse these URLs:\n%s", "\n".join(problems)
                    )
                )
        payload = {
            "ShortCode": self.sudo().mpesa_shortcode,
            "ResponseType": self.mpesa_c2b_response_type,
            **urls,
        }
        path = PATHS["c2b_register"].format(version=self.mpesa_c2b_api_version)
        try:
            self._mpesa_client().post(path, payload)
        except DarajaError as error:
            if error.code == const.ERROR_URLS_REGISTERED:
                raise UserError(
                    self.env._(
                        "Safaricom already has C2B URLs for this shortcode and does not let "
                        "production URLs be replaced by API. Ask Safaricom API support to "
                        "delete the registered URLs, then register again."
                    )
                ) from error
            raise self._mpesa_refusal(
                error, self.env._("Safaricom refused the C2B URLs: %(msg)s (%(code)s)")
            ) from error
        self.mpesa_c2b_registered = fields.Datetime.now()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "title": self.env._("C2B URLs registered"),
                "message": self.env._("Paybill and till payments will now reach Odoo."),
                "sticky": False,
            },
        }

    def action_mpesa_check_balance(self):
        self.ensure_one()
        request = self.env["mpesa.api.request"]._send(self, "balance")
        return request._action_open()
