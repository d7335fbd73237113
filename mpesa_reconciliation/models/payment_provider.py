import datetime as dt
import logging

import psycopg2

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from odoo.addons.mpesa_payment.daraja.client import PATHS, DarajaError
from odoo.addons.mpesa_payment.daraja.phone import PhoneError, normalize_msisdn
from odoo.addons.mpesa_payment.kenya_time import to_kenya

from ..statement import StatementError, parse_pull_rows

_logger = logging.getLogger(__name__)

# Pull Transactions (Safaricom's page: developer.safaricom.co.ke/apis/PullTransaction;
# the shapes are quoted in tests/emulator/daraja_emulator/orgapi.py).
# One query covers at most 48 hours, and M-PESA keeps transactions 48 hours for
# pulling; a scheduled pull reaches back a little less, so its start is never refused.
PULL_MAX_WINDOW = dt.timedelta(hours=48)
PULL_MAX_AGE = PULL_MAX_WINDOW - dt.timedelta(minutes=5)
# A scheduled pull starts this long before the end of the last one that succeeded: a
# payment M-PESA lists a little late is still seen.
PULL_OVERLAP = dt.timedelta(hours=1)
# Pages of one 48-hour query, at most (100 rows a page): more is a Daraja repeating
# itself, reported rather than looped on.
PULL_MAX_PAGES = 1000
# Register: ResponseStatus 1000 registered, 1001 already registered. Query:
# ResponseCode 1000 rows, 1001 none. Anything else, even with HTTP 200, is an error.
PULL_REGISTER_OK = ("1000", "1001")
PULL_ROWS, PULL_NO_ROWS = "1000", "1001"
PULL_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


class PaymentProvider(models.Model):
    # One file per feature: the books check's fields live in books_check.py.
    _inherit = "payment.provider"  # pylint: disable=consider-merging-classes-inherited

    mpesa_pull_nominated_number = fields.Char(
        string="Nominated Number",
        groups="base.group_system",
        help="The Safaricom number registered with the shortcode (M-PESA org portal, "
        "Organization > Details). Safaricom asks for it to register for Pull "
        "Transactions.",
    )
    mpesa_pull_registered = fields.Datetime(
        string="Pull Registered On", readonly=True, copy=False
    )
    mpesa_pull_window = fields.Integer(
        string="Pull Window (hours)",
        default=6,
        help="Every scheduled pull asks M-PESA for at least the last this many hours "
        "(1 to 48), and from the end of the last successful pull when that is older: "
        "the windows overlap, so a payment whose callback never came is found "
        "without importing a statement. Payments already known are not created twice.",
    )
    mpesa_pull_last = fields.Datetime(
        string="Last Pull",
        readonly=True,
        copy=False,
        help="Up to when the last successful pull got M-PESA's transactions. A failed "
        "pull leaves it: the next one asks for the same period again.",
    )
    mpesa_pull_result = fields.Char(
        string="Last Pull Result", readonly=True, copy=False
    )
    mpesa_pull_error = fields.Text(string="Last Pull Error", readonly=True, copy=False)

    @api.constrains("mpesa_pull_window")
    def _check_mpesa_pull_window(self):
        for provider in self:
            if not 1 <= provider.mpesa_pull_window <= 48:
                raise ValidationError(
                    self.env._(
                        "The pull window is 1 to 48 hours: M-PESA keeps transactions "
                        "48 hours for pulling."
                    )
                )

    # === REGISTRATION === #

    def action_mpesa_register_pull(self):
        """Register the shortcode for Pull Transactions (one-time at Safaricom; a
        second registration is answered "already registered", which is fine)."""
        self.ensure_one()
        self.check_access("write")
        sudo = self.sudo()
        nominated = self._mpesa_pull_nominated_msisdn()
        status, description = self._mpesa_pull_register_send(
            {
                "ShortCode": sudo.mpesa_shortcode,
                "RequestType": "Pull",
                "NominatedNumber": nominated,
                "CallBackURL": self._mpesa_pull_callback_url(),
            }
        )
        sudo.write(
            {
                "mpesa_pull_nominated_number": nominated,
                "mpesa_pull_registered": fields.Datetime.now(),
                "mpesa_pull_error": False,
            }
        )
        _logger.info(
            "M-PESA shortcode %s registered for Pull Transactions: %s %s",
            sudo.mpesa_shortcode,
            status,
            description,
        )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "title": self.env._("Registered for Pull Transactions"),
                "message": self.env._(
                    "Safaricom answered: %(msg)s (%(code)s). Missed payments are now "
                    "pulled every 30 minutes.",
                    msg=description,
                    code=status,
                ),
                "sticky": False,
            },
        }

    def _mpesa_pull_nominated_msisdn(self):
        """The nominated number as Safaricom takes it (2547XXXXXXXX); the administrator
        is told what to enter rather than Safaricom refusing it later."""
        number = self.sudo().mpesa_pull_nominated_number
        if not number:
            raise UserError(
                self.env._(
                    "Enter the nominated number first: the Safaricom number "
                    "registered with the shortcode (M-PESA org portal, Organization "
                    "> Details)."
                )
            )
        try:
            return normalize_msisdn(number)
        except PhoneError as error:
            raise UserError(self.env._("Nominated number: %s", error)) from error

    def _mpesa_pull_callback_url(self):
        """Where Safaricom posts pulled transactions. It documents no body for this URL:
        the C2B confirmation URL keeps whatever is posted (a payment notification is
        processed as one). A live provider's URL is checked as Safaricom would."""
        url = self._mpesa_c2b_urls()["ConfirmationURL"]
        if self.state == "enabled":
            problems = self._mpesa_c2b_url_problems({"CallBackURL": url})
            if problems:
                raise UserError(
                    self.env._(
                        "Safaricom would refuse this URL:\n%s", "\n".join(problems)
                    )
                )
        return url

    def _mpesa_pull_register_send(self, payload):
        """Post the registration; (status, description) of an accepted answer, else
        UserError: Daraja answers a refusal with HTTP 200 too."""
        try:
            answer = self._mpesa_client().post(PATHS["pull_register"], payload)
        except DarajaError as error:
            raise self._mpesa_refusal(
                error,
                self.env._(
                    "Safaricom refused the Pull Transactions registration: %(msg)s "
                    "(%(code)s)"
                ),
            ) from error
        # The Daraja 2.0 sample spells the keys with a space ("Response Status").
        status = str(answer.get("ResponseStatus", answer.get("Response Status", "")))
        description = (
            answer.get("ResponseDescription")
            or answer.get("Response Description")
            or ""
        )
        if status not in PULL_REGISTER_OK:
            raise UserError(
                self.env._(
                    "Safaricom did not register the shortcode for Pull Transactions: "
                    "%(msg)s (%(code)s)",
                    msg=description or self.env._("no description"),
                    code=status or self.env._("no ResponseStatus"),
                )
            )
        return status, description

    # === PULL === #

    def _mpesa_pull(self, start, end):
        """Pull M-PESA's transactions between ``start`` and ``end`` (naive UTC) and
        record them as the statement import does, through the ledger's money path:
        new payments are created and applied by their reference, known ones gain the
        import as a source (and a paybill notification its confirmation), nothing is
        created twice. Raises UserError, having recorded nothing, if M-PESA does not
        give every row. Returns the import summary."""
        self.ensure_one()
        rows = self._mpesa_pull_rows(start, end)
        importer = self.env["mpesa.statement.import"].create(
            {
                "provider_id": self.id,
                "source": "pull",
                "date_from": start,
                "date_to": end,
            }
        )
        return importer._import_rows(rows)

    def _mpesa_pull_rows(self, start, end):
        """Every row between ``start`` and ``end``: 48 hours a query, every page,
        each receipt once (windows meet, and Daraja may repeat a page)."""
        self.ensure_one()
        if not (start and end) or end <= start:
            raise UserError(self.env._("Choose a period to pull."))
        # Whole seconds, as Daraja takes them: the period covers start and end.
        start = start.replace(microsecond=0)
        if end.microsecond:
            end = end.replace(microsecond=0) + dt.timedelta(seconds=1)
        client = self._mpesa_client()
        shortcode = self.sudo().mpesa_shortcode
        rows = {}
        while start < end:
            stop = min(start + PULL_MAX_WINDOW, end)
            payload = {
                "ShortCode": shortcode,
                "StartDate": self._mpesa_pull_date(start),
                "EndDate": self._mpesa_pull_date(stop),
            }
            seen, offset = set(), 0
            for _page in range(PULL_MAX_PAGES):
                records = self._mpesa_pull_page(
                    client, {**payload, "OffSetValue": str(offset)}
                )
                try:
                    page = parse_pull_rows(records)
                except StatementError as error:
                    raise UserError(
                        self.env._("M-PESA sent a row we cannot read: %s", error)
                    ) from error
                fresh = {row.receipt for row in page} - seen
                if not fresh:  # empty, or the same rows again
                    break
                seen |= fresh
                for row in page:
                    rows.setdefault(row.receipt, row)
                offset += len(records)
            else:
                raise UserError(
                    self.env._(
                        "M-PESA sent more than %(pages)s pages for %(start)s to "
                        "%(stop)s: pull shorter periods.",
                        pages=PULL_MAX_PAGES,
                        start=payload["StartDate"],
                        stop=payload["EndDate"],
                    )
                )
            start = stop
        return sorted(rows.values(), key=lambda row: row.completed_at)

    def _mpesa_pull_page(self, client, payload):
        """One page of the query: its rows ([] when M-PESA has none), or UserError
        when M-PESA answers an error, also with HTTP 200 (any ResponseCode but
        1000 and 1001)."""
        try:
            answer = client.post(PATHS["pull_query"], payload)
        except DarajaError as error:
            raise self._mpesa_refusal(
                error, self.env._("M-PESA refused the pull request: %(msg)s (%(code)s)")
            ) from error
        code = str(answer.get("ResponseCode", ""))
        if code == PULL_NO_ROWS:
            return []
        if code != PULL_ROWS:
            raise UserError(
                self.env._(
                    "M-PESA could not pull the transactions: %(msg)s (ResponseCode "
                    "%(code)s)",
                    msg=answer.get("ResponseMessage")
                    or answer.get("ResponseDescription")
                    or self.env._("no message"),
                    code=code or self.env._("missing"),
                )
            )
        response = answer.get("Response") or []
        if not isinstance(response, list):
            raise UserError(
                self.env._("M-PESA's pull answer has no list of transactions.")
            )
        # Daraja nests the page's rows in one more list: [[{...}, ...]].
        return [
            record
            for item in response
            for record in (item if isinstance(item, list) else [item])
        ]

    @staticmethod
    def _mpesa_pull_date(value):
        """Naive UTC -> Daraja's StartDate/EndDate, in Kenya time."""
        return to_kenya(value).strftime(PULL_DATE_FORMAT)

    # === SCHEDULED PULL === #

    @api.model
    def _cron_mpesa_pull(self):
        """Pull the last hours of every registered M-PESA provider in use."""
        providers = self.search(
            [
                ("code", "=", "mpesa"),
                ("state", "in", ("enabled", "test")),
                ("mpesa_pull_registered", "!=", False),
            ]
        )
        for provider in providers:
            provider.with_company(provider.company_id)._mpesa_pull_scheduled()

    def _mpesa_pull_scheduled(self):
        """One scheduled pull, up to now. On failure nothing is recorded, the error is
        kept for the administrator, and the start stays where it was: the next run
        asks for the same period again, so nothing is skipped. Returns the import
        summary, or None on failure."""
        self.ensure_one()
        # Not fields.Datetime.now(), which drops the fraction of a second: a payment
        # made earlier in the current second is in the period too.
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        start, missed = self._mpesa_pull_start(now)
        try:
            with self.env.cr.savepoint():
                summary = self._mpesa_pull(start, now)
        except (UserError, psycopg2.Error) as error:
            self._mpesa_pull_failed(error, start, now)
            return None
        self.sudo().write(
            {
                "mpesa_pull_last": now,
                "mpesa_pull_result": self._mpesa_pull_result(
                    summary, start, now, missed
                ),
                "mpesa_pull_error": False,
            }
        )
        return summary

    def _mpesa_pull_failed(self, error, start, now):
        """Keep a failed pull's reason for the administrator (Last Pull Error) and in
        the log; the start is left as it was, so the next run asks again."""
        if isinstance(error, UserError):
            message = error.args[0]
        else:  # a callback recording the same receipt at the same moment
            message = self.env._(
                "The database was busy (%s): the next run pulls this period again.",
                type(error).__name__,
            )
        _logger.warning(
            "M-PESA pull for %s from %s to %s failed: %s",
            self.sudo().mpesa_shortcode,
            start,
            now,
            message,
        )
        self.sudo().mpesa_pull_error = self.env._(
            "%(when)s (Kenya time), pulling from %(start)s: %(msg)s",
            when=self._mpesa_pull_date(now),
            start=self._mpesa_pull_date(start),
            msg=message,
        )

    def _mpesa_pull_result(self, summary, start, now, missed):
        """The Last Pull Result text; when the period wanted is older than M-PESA
        keeps (``missed``), it says which statement to import to cover the gap."""
        result = self.env._(
            "%(new)s new receipts (%(recovered)s payments whose callback never came), "
            "%(known)s already known; from %(start)s to %(end)s (Kenya time).",
            new=summary["created"],
            recovered=summary["recovered"],
            known=summary["known"],
            start=self._mpesa_pull_date(start),
            end=self._mpesa_pull_date(now),
        )
        if missed:
            warning = self.env._(
                "M-PESA keeps 48 hours for pulling: import the statement from "
                "%(start)s to %(end)s (Kenya time) to find any payment missed then.",
                start=self._mpesa_pull_date(missed),
                end=self._mpesa_pull_date(start),
            )
            _logger.warning(
                "M-PESA pull for %s: %s", self.sudo().mpesa_shortcode, warning
            )
            result = f"{result} {warning}"
        return result

    def _mpesa_pull_start(self, now):
        """Where a scheduled pull starts: the window before ``now``, or the end of
        the last successful pull less the overlap when that is earlier; never before
        what M-PESA still keeps. Returns (start, start wanted but too old or None)."""
        start = now - dt.timedelta(hours=self.mpesa_pull_window or 6)
        if self.mpesa_pull_last:
            start = min(start, self.mpesa_pull_last - PULL_OVERLAP)
        oldest = now - PULL_MAX_AGE
        if start < oldest:
            return oldest, start
        return start, None
