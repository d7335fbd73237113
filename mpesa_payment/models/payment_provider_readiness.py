"""Go-live checklist of an M-PESA provider: what is still missing before Safaricom's
production can be used, each item with a plain sentence and what fixes it.

Computed live from the provider, except what only Daraja can answer (OAuth and the
initiator credential): "Run checks" asks Daraja and keeps the answer, tied to the
values it checked, so that changing a key, the credential or the environment turns
the item back to "not checked" instead of showing a stale green.
"""

import hashlib
import ipaddress
import logging
from urllib.parse import urlsplit

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import str2bool

from .. import const
from .field_helpers import admin_char, admin_only

_logger = logging.getLogger(__name__)

# Item states: green, red, grey (not asked yet, or Daraja's answer still to come).
OK, MISSING, UNCHECKED = "ok", "missing", "unchecked"
# Safaricom's public sandbox test shortcode and passkey: never right in production.
SANDBOX_SHORTCODE = "174379"
SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
# The environments between which the security credential must be typed again.
LIVE_STATES = {"test", "enabled"}
# Scheduled jobs asking M-PESA for the status of what a callback did not tell.
STATUS_QUERY_CRONS = (
    "mpesa_payment.cron_query_pending",
    "mpesa_payment.cron_confirm_paybill",
)
# A callback the inbox job has not applied after this long: no cron worker runs it.
INBOX_LATE_MINUTES = 10


class PaymentProvider(models.Model):
    # One file per feature: the checklist does not crowd payment_provider.py.
    _inherit = "payment.provider"  # pylint: disable=consider-merging-classes-inherited

    mpesa_ready_checked_on = fields.Datetime(
        string="Checks Run On", readonly=True, copy=False
    )
    mpesa_ready_oauth_error = fields.Char(
        string="OAuth Check Error", readonly=True, copy=False
    )
    mpesa_ready_oauth_key = admin_char(copy=False)
    mpesa_ready_balance_request_id = admin_only(
        fields.Many2one,
        "mpesa.api.request",
        string="Initiator Check",
        readonly=True,
        copy=False,
        help="The balance query of the last Run checks: its answer says whether "
        "M-PESA accepts the initiator credential.",
    )
    mpesa_ready_balance_error = fields.Char(readonly=True, copy=False)
    mpesa_ready_balance_key = admin_char(copy=False)
    mpesa_c2b_registered_url = admin_char(
        string="Registered Confirmation URL",
        readonly=True,
        copy=False,
        help="The C2B confirmation URL last registered with Safaricom.",
    )
    mpesa_readiness_html = admin_only(
        fields.Html,
        string="Go-live Checklist",
        compute="_compute_mpesa_readiness",
        sanitize=False,
    )
    mpesa_readiness_ok = admin_only(
        fields.Boolean,
        string="Ready to Go Live",
        compute="_compute_mpesa_readiness",
    )

    @api.depends(
        "state",
        "mpesa_consumer_key",
        "mpesa_consumer_secret",
        "mpesa_api_url",
        "mpesa_shortcode",
        "mpesa_shortcode_type",
        "mpesa_till_number",
        "mpesa_passkey",
        "mpesa_initiator_name",
        "mpesa_security_credential",
        "mpesa_callback_ips",
        "mpesa_c2b_registered",
        "mpesa_c2b_registered_url",
        "mpesa_c2b_secret",
        "mpesa_ready_checked_on",
    )
    def _compute_mpesa_readiness(self):
        for provider in self:
            if provider.code != "mpesa":
                provider.mpesa_readiness_html = False
                provider.mpesa_readiness_ok = False
                continue
            items = provider._mpesa_readiness_items()
            provider.mpesa_readiness_ok = all(item["state"] == OK for item in items)
            provider.mpesa_readiness_html = self.env["ir.qweb"]._render(
                "mpesa_payment.mpesa_readiness_checklist",
                {"items": items, "checked_on": provider.mpesa_ready_checked_on},
            )

    def _mpesa_readiness_items(self):
        """The checklist, in the order an admin fixes it. A hook: mpesa_reconciliation
        adds its pull job."""
        self.ensure_one()
        return [
            self._mpesa_ready_base_url(),
            self._mpesa_ready_oauth(),
            self._mpesa_ready_shortcode(),
            self._mpesa_ready_journal(),
            self._mpesa_ready_c2b(),
            self._mpesa_ready_callback_ips(),
            self._mpesa_ready_initiator(),
            self._mpesa_ready_crons(
                "status_jobs",
                self.env._("Status query jobs"),
                STATUS_QUERY_CRONS,
            ),
            self._mpesa_ready_inbox(),
        ]

    @api.model
    def _mpesa_ready_item(self, key, title, state, sentence, fix=None):
        return {
            "key": key,
            "title": title,
            "state": state,
            "sentence": sentence,
            "fix": fix if state != OK else None,
        }

    # === ITEMS === #

    def _mpesa_ready_base_url(self):
        base_url = self.get_base_url() or ""
        host = urlsplit(base_url).hostname or ""
        fix = self.env._(
            "Settings > Technical > System Parameters: web.base.url (the public https "
            "address of this Odoo) and web.base.url.freeze = True"
        )
        problem = None
        if not base_url.startswith("https://"):
            problem = self.env._(
                "Odoo's address %s is not https: Safaricom only calls https URLs.",
                base_url,
            )
        elif _is_local_host(host):
            problem = self.env._(
                "Odoo's address %s is this machine or a private network: Safaricom "
                "cannot reach it.",
                base_url,
            )
        elif not str2bool(
            self.env["ir.config_parameter"].sudo().get_param("web.base.url.freeze"),
            default=False,
        ):
            problem = self.env._(
                "Odoo's address %s is not frozen (web.base.url.freeze): an admin "
                "logging in from another address would change the callback URLs.",
                base_url,
            )
        return self._mpesa_ready_item(
            "base_url",
            self.env._("Public https address"),
            MISSING if problem else OK,
            problem or self.env._("Safaricom can call Odoo at %s.", base_url),
            fix,
        )

    def _mpesa_ready_oauth(self):
        title = self.env._("Consumer key and secret")
        fix = self.env._("Consumer Key and Consumer Secret, then Run checks")
        if self.mpesa_ready_oauth_key != self._mpesa_ready_key("oauth"):
            return self._mpesa_ready_item(
                "oauth",
                title,
                UNCHECKED,
                self.env._("Not checked with Safaricom since they last changed."),
                self.env._("Run checks"),
            )
        error = self.mpesa_ready_oauth_error
        return self._mpesa_ready_item(
            "oauth",
            title,
            MISSING if error else OK,
            error or self.env._("Safaricom gives an access token for them."),
            fix,
        )

    def _mpesa_ready_shortcode(self):
        sudo = self.sudo()
        problems = self._mpesa_shortcode_problems()
        if problems:
            sentence = " ".join(problems)
        elif sudo.mpesa_shortcode_type == "till":
            sentence = self.env._(
                "Buy Goods: store number %(store)s with its passkey, money to till "
                "%(till)s.",
                store=sudo.mpesa_shortcode,
                till=sudo.mpesa_till_number,
            )
        else:
            sentence = self.env._(
                "Paybill %s with its passkey.", sudo.mpesa_shortcode or ""
            )
        return self._mpesa_ready_item(
            "shortcode",
            self.env._("Shortcode and passkey"),
            MISSING if problems else OK,
            sentence,
            self.env._("Shortcode Type, Business Shortcode, Till Number, Passkey"),
        )

    def _mpesa_shortcode_problems(self):
        """What is wrong with the shortcode and passkey, one sentence each."""
        sudo = self.sudo()
        problems = []
        if not sudo.mpesa_passkey:
            problems.append(self.env._("The Lipa na M-PESA passkey is missing."))
        if self.state == "enabled" and (
            sudo.mpesa_shortcode == SANDBOX_SHORTCODE
            or sudo.mpesa_passkey == SANDBOX_PASSKEY
        ):
            problems.append(
                self.env._(
                    "The shortcode or passkey is Safaricom's sandbox test one: "
                    "production needs your own, from Safaricom's go-live email."
                )
            )
        elsewhere = self._mpesa_shortcode_elsewhere()
        if elsewhere:
            problems.append(
                self.env._(
                    "Shortcode %(code)s is also the M-PESA account of %(companies)s: "
                    "payments to it would be booked in one company for money received "
                    "by the other. Each company needs its own shortcode.",
                    code=sudo.mpesa_shortcode,
                    companies=", ".join(elsewhere.company_id.mapped("name")),
                )
            )
        if (
            sudo.mpesa_shortcode_type == "till"
            and sudo.mpesa_till_number == sudo.mpesa_shortcode
        ):
            problems.append(
                self.env._(
                    "For Buy Goods the shortcode is the store (head office) number the "
                    "passkey belongs to, and the till number the till that receives "
                    "the money: they are the same here. Check both in the M-PESA org "
                    "portal."
                )
            )
        return problems

    def _mpesa_shortcode_elsewhere(self):
        """The providers of other companies taking payments (test mode or enabled) to
        this shortcode: a provider duplicated for a second company keeps it."""
        if not self.mpesa_shortcode:
            return self.browse()
        return self.sudo().search(
            [
                ("code", "=", "mpesa"),
                ("id", "!=", self.id),
                ("state", "!=", "disabled"),
                ("company_id", "!=", self.company_id.id),
                ("mpesa_shortcode", "=", self.sudo().mpesa_shortcode),
            ]
        )

    def _mpesa_ready_journal(self):
        """M-PESA pays shillings: a journal in another currency books KES 1,290 as
        1,290 of that currency, a bank line that no payment matches. Checked here and
        not refused on the provider: core gives a new provider the company's first
        bank journal, in the company's currency."""
        journals = self.journal_id | self._mpesa_b2c_journal()
        # A journal without a currency keeps its books in its company's.
        currencies = {
            journal: journal.currency_id or journal.company_id.currency_id
            for journal in journals
        }
        wrong = journals.filtered(
            lambda journal: currencies[journal] != self.env.ref("base.KES")
        )
        if wrong:
            sentence = "; ".join(
                self.env._(
                    "%(journal)s keeps its books in %(currency)s: M-PESA pays "
                    "shillings.",
                    journal=journal.name,
                    currency=currencies[journal].name,
                )
                for journal in wrong
            )
        elif not journals:
            sentence = self.env._("No journal: payments cannot be booked.")
        else:
            sentence = self.env._(
                "Payments are booked in %s, in KES.", ", ".join(journals.mapped("name"))
            )
        return self._mpesa_ready_item(
            "journal",
            self.env._("Journal in Kenyan Shillings"),
            MISSING if wrong or not journals else OK,
            sentence,
            self.env._(
                "Accounting > Configuration > Journals: a bank journal with Currency "
                "KES, then the provider's Payment Journal (and B2C Journal)"
            ),
        )

    def _mpesa_ready_c2b(self):
        title = self.env._("C2B URLs (paybill and till payments)")
        fix = self.env._("Register C2B URLs")
        # In the form's onchange self is a new record: its URLs are its origin's.
        urls = self._origin._mpesa_c2b_urls() if self._origin else {}
        problems = self._mpesa_c2b_url_problems(urls)
        if problems:
            state, sentence = MISSING, " ".join(problems)
        elif not self.mpesa_c2b_registered:
            state, sentence = MISSING, self.env._("Not registered with Safaricom.")
        elif not self.sudo().mpesa_c2b_registered_url:
            # Registered before Odoo kept the URL: only Safaricom knows which.
            state, sentence = (
                UNCHECKED,
                self.env._(
                    "Registered on %s, but which URLs was not recorded then: register "
                    "them again to be sure.",
                    fields.Datetime.to_string(self.mpesa_c2b_registered),
                ),
            )
        elif self.sudo().mpesa_c2b_registered_url != urls["ConfirmationURL"]:
            state, sentence = (
                MISSING,
                self.env._(
                    "Registered for another address or secret than Odoo's current "
                    "ones: register them again (in production through Safaricom's "
                    "URL management, since Safaricom registers them once there)."
                ),
            )
        else:
            state, sentence = (
                OK,
                self.env._(
                    "Registered with Safaricom on %s.",
                    fields.Datetime.to_string(self.mpesa_c2b_registered),
                ),
            )
        return self._mpesa_ready_item("c2b", title, state, sentence, fix)

    def _mpesa_ready_callback_ips(self):
        networks = self._mpesa_callback_networks()
        return self._mpesa_ready_item(
            "callback_ips",
            self.env._("Callback IP allow-list"),
            OK if networks else MISSING,
            self.env._(
                "Callbacks are accepted from %(count)s address range(s) only.",
                count=len(networks),
            )
            if networks
            else self.env._(
                "Empty: callbacks are accepted from any sender. Enter Safaricom's "
                "published callback addresses."
            ),
            self.env._("Callback IP Allow-list"),
        )

    def _mpesa_ready_initiator(self):
        title = self.env._("Initiator credential")
        fix = self.env._("Initiator Name and Initiator Password, then Run checks")
        sudo = self.sudo()
        if not (sudo.mpesa_initiator_name and sudo.mpesa_security_credential):
            return self._mpesa_ready_item(
                "initiator",
                title,
                MISSING,
                self.env._(
                    "No initiator name or security credential: payments cannot be "
                    "checked, reversed or confirmed with M-PESA. Type the initiator "
                    "password (again after switching between test mode and "
                    "production)."
                ),
                fix,
            )
        request = sudo.mpesa_ready_balance_request_id
        if sudo.mpesa_ready_balance_key != self._mpesa_ready_key("balance"):
            state, sentence = (
                UNCHECKED,
                self.env._("Not checked with M-PESA since it last changed."),
            )
        elif sudo.mpesa_ready_balance_error:
            state, sentence = MISSING, sudo.mpesa_ready_balance_error
        elif request.state == "done":
            state, sentence = OK, self.env._("M-PESA answered a balance query.")
        elif request.state == "failed":
            state, sentence = MISSING, self._mpesa_ready_refusal(request)
        else:
            state, sentence = (
                UNCHECKED,
                self.env._("A balance query was sent; M-PESA has not answered yet."),
            )
        return self._mpesa_ready_item("initiator", title, state, sentence, fix)

    def _mpesa_ready_refusal(self, request):
        if request.result_code in const.INITIATOR_CONFIGURATION_ERRORS:
            return self.env._(
                "M-PESA refused the initiator (%(code)s: %(message)s). Type the "
                "initiator password again; check the initiator name and that the "
                "certificate is Safaricom's for this environment.",
                code=request.result_code,
                message=request.result_message,
            )
        return self.env._(
            "The balance query failed: %s", request.result_message or request.state
        )

    def _mpesa_ready_crons(self, key, title, xmlids):
        crons = self.env["ir.cron"].sudo()
        for xmlid in xmlids:
            crons |= self.env.ref(xmlid, raise_if_not_found=False) or crons
        inactive = crons.filtered(lambda cron: not cron.active)
        if inactive or not crons:
            state, sentence = (
                MISSING,
                self.env._(
                    "Not active: %s.",
                    ", ".join(inactive.mapped("name")) or ", ".join(xmlids),
                ),
            )
        else:
            state, sentence = (
                OK,
                self.env._("Active: %s.", ", ".join(crons.mapped("name"))),
            )
        return self._mpesa_ready_item(
            key,
            title,
            state,
            sentence,
            self.env._("Settings > Technical > Scheduled Actions"),
        )

    def _mpesa_ready_inbox(self):
        """Callbacks are answered at once and their money applied by the inbox job,
        which only Odoo's cron workers run: callbacks still waiting long after they
        came say that none is running."""
        title = self.env._("Callback inbox job")
        item = self._mpesa_ready_crons(
            "inbox_job", title, ("mpesa_payment.cron_apply_inbox",)
        )
        if item["state"] != OK:
            return item
        late = (
            self.env["mpesa.callback"]
            .sudo()
            ._waiting_since(
                fields.Datetime.subtract(
                    fields.Datetime.now(), minutes=INBOX_LATE_MINUTES
                ),
                # the saved provider: on the form the checklist is computed on a
                # draft record, whose NewId a search ignores (it matches nothing)
                self._origin,
            )
        )
        if not late:
            return item
        return self._mpesa_ready_item(
            "inbox_job",
            title,
            MISSING,
            self.env._(
                "Callbacks waiting more than %(minutes)s minutes for their money to "
                "be applied: %(count)s. Odoo's scheduled jobs are not running.",
                count=late,
                minutes=INBOX_LATE_MINUTES,
            ),
            self.env._(
                "Run Odoo with cron workers (--max-cron-threads, 2 by default; not 0)"
            ),
        )

    # === RUN CHECKS (the only part that calls Daraja) === #

    def _mpesa_ready_key(self, check):
        """What a stored check result is valid for: a digest of the values it
        checked (never the values themselves)."""
        sudo = self.sudo()
        values = [self.state or "", self._mpesa_base_url()]
        if check == "oauth":
            values += [sudo.mpesa_consumer_key, sudo.mpesa_consumer_secret]
        else:
            values += [
                sudo.mpesa_shortcode,
                sudo.mpesa_initiator_name,
                sudo.mpesa_security_credential,
            ]
        text = "\x1f".join(value or "" for value in values)
        return hashlib.sha256(text.encode()).hexdigest()

    def action_mpesa_run_checks(self):
        """Ask Daraja what only Daraja knows: do the consumer key and secret give a
        token, and does M-PESA accept the initiator (a balance query, answered later
        on our result URL)."""
        self.ensure_one()
        self.check_access("write")
        values = {
            "mpesa_ready_checked_on": fields.Datetime.now(),
            "mpesa_ready_oauth_key": self._mpesa_ready_key("oauth"),
            "mpesa_ready_oauth_error": False,
        }
        try:
            self.action_mpesa_test_connection()
        except UserError as error:
            values["mpesa_ready_oauth_error"] = error.args[0]
        sudo = self.sudo()
        # Refused keys say nothing of the initiator: it stays unchecked.
        if (
            not values["mpesa_ready_oauth_error"]
            and sudo.mpesa_initiator_name
            and sudo.mpesa_security_credential
        ):
            values.update(
                mpesa_ready_balance_key=self._mpesa_ready_key("balance"),
                mpesa_ready_balance_request_id=False,
                mpesa_ready_balance_error=False,
            )
            try:
                # A refused request leaves no request record waiting forever.
                with self.env.cr.savepoint():
                    request = self.env["mpesa.api.request"]._send(self, "balance")
                values["mpesa_ready_balance_request_id"] = request.id
            except UserError as error:
                values["mpesa_ready_balance_error"] = error.args[0]
        sudo.write(values)
        return True

    # === REGISTERED C2B URLS, ENVIRONMENT SWITCH === #

    def action_mpesa_register_c2b_urls(self):
        """Extends the registration (payment_provider.py) to remember the URL Safaricom
        now has: the Go-live Checklist compares it with the current one."""
        action = super().action_mpesa_register_c2b_urls()
        self.sudo().mpesa_c2b_registered_url = self._mpesa_c2b_urls()["ConfirmationURL"]
        return action

    def write(self, vals):
        """Switching between test mode and production clears the security
        credential: it was encrypted with the other environment's certificate (and
        is the other environment's initiator), so M-PESA would refuse it."""
        switching = self.browse()
        if "state" in vals and vals["state"] in LIVE_STATES:
            switching = self.filtered(
                lambda p: (
                    p.code == "mpesa"
                    and p.state in LIVE_STATES
                    and p.state != vals["state"]
                )
            )
        res = super().write(vals)
        if switching and not (
            vals.get("mpesa_security_credential")
            or vals.get("mpesa_initiator_password")
        ):
            for provider in switching.filtered(
                lambda p: p.sudo().mpesa_security_credential
            ):
                provider.sudo().mpesa_security_credential = False
                _logger.info(
                    "M-PESA provider %s: security credential cleared on switching to "
                    "%s",
                    provider.id,
                    provider.mpesa_environment,
                )
        return res

    @api.onchange("state")
    def _onchange_state_mpesa_readiness(self):
        """Going live (or back to test mode) says what it costs: the credential
        must be typed again, and which checklist items are still red."""
        origin_state = self._origin.state
        if (
            self.code != "mpesa"
            or self.state not in LIVE_STATES
            or origin_state not in LIVE_STATES
            or self.state == origin_state
        ):
            return None
        messages = []
        if self.sudo().mpesa_security_credential:
            self.sudo().mpesa_security_credential = False
            messages.append(
                self.env._(
                    "The security credential was encrypted for the other environment "
                    "and is cleared: type the initiator password again."
                )
            )
        if self.state == "enabled":
            red = [
                item["title"]
                for item in self._mpesa_readiness_items()
                if item["state"] == MISSING
            ]
            if red:
                messages.append(
                    self.env._(
                        "These items of the go-live checklist are red: %s. Payments "
                        "may fail or be refused until they are fixed.",
                        ", ".join(red),
                    )
                )
        if not messages:
            return None
        return {
            "warning": {
                "title": self.env._("M-PESA: before going live"),
                "message": "\n\n".join(messages),
            }
        }


def _is_local_host(host):
    """Whether ``host`` cannot be reached from the internet (by its name or IP)."""
    if not host or host == "localhost" or host.endswith((".localhost", ".local")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: only DNS knows
    return not address.is_global
