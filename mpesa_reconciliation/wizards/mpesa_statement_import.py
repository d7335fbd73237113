import base64
import datetime as dt

from odoo import fields, models
from odoo.exceptions import UserError

from odoo.addons.mpesa_payment.amounts import shillings
from odoo.addons.mpesa_payment.kenya_time import kenya_date, to_kenya

from ..models.payment_provider import PULL_MAX_WINDOW
from ..statement import StatementError, parse_statement


class MpesaStatementImport(models.TransientModel):
    """Bring in the org-portal statement (CSV/XLSX) or the Pull API's rows."""

    _name = "mpesa.statement.import"
    # The M-PESA account: chosen by label among the user's companies' accounts (only
    # administrators read payment providers), used once its company is checked.
    _inherit = ["mpesa.account.choice.mixin"]
    _description = "Import an M-PESA Statement"

    source = fields.Selection(
        [("file", "Statement File (CSV / XLSX)"), ("pull", "Pull Transactions API")],
        default="file",
        required=True,
    )
    data_file = fields.Binary(string="Statement File")
    filename = fields.Char()
    date_from = fields.Datetime(
        default=lambda self: fields.Datetime.now() - PULL_MAX_WINDOW
    )
    date_to = fields.Datetime(default=fields.Datetime.now)
    result = fields.Text(readonly=True)

    def action_import(self):
        self.ensure_one()
        # Another company's account, named by a form or over RPC, is refused before
        # anything is read or written: the rows run as superuser.
        provider = self._mpesa_chosen_provider()
        if self.source == "file":
            if not self.data_file:
                raise UserError(self.env._("Choose the statement file to import."))
            try:
                statement = parse_statement(
                    base64.b64decode(self.data_file), self.filename
                )
            except StatementError as error:
                raise UserError(
                    self.env._("Nothing was imported. %s", error)
                ) from error
            summary = self._import_rows(statement.rows)
            summary["skipped"] = statement.skipped
            self._add_opening_balance(statement)
            summary["closing"] = statement.closing_balance
            summary["closing_at"] = statement.end
            # Rows without any balance: imported as usual, but nothing to check the
            # journal against, and no opening balance to bring in.
            summary["unchecked"] = (
                bool(statement.rows) and statement.closing_balance is None
            )
        else:
            # Windows, pages, error codes: one home for the pull, shared with the
            # scheduled pull (payment.provider._mpesa_pull).
            summary = provider._mpesa_pull(self.date_from, self.date_to)
        self.result = self._describe(summary)
        return {
            "type": "ir.actions.act_window",
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
        }

    # === IMPORT === #

    def _import_rows(self, rows):
        """Create what is new, add the 'import' source to what we had. Idempotent:
        the same or an overlapping statement creates nothing twice."""
        provider = self.provider_id.sudo()  # staff may not read providers
        Receipt = self.env["mpesa.receipt"].sudo()
        shortcode = provider.mpesa_shortcode
        codes = [row.receipt for row in rows]
        self._check_own_shortcode(codes)
        existing = {
            r.name: r
            for r in Receipt.search(
                [
                    ("company_id", "=", provider.company_id.id),
                    ("shortcode", "=", shortcode),
                    ("name", "in", codes),
                ]
            )
        }
        created = Receipt
        new_rows = [row for row in rows if row.receipt not in existing]
        for receipt in existing.values():
            seen = receipt._seen_by_vals("import")
            if seen:
                receipt.write(seen)
        self._confirm_paybill(existing, rows)
        reversals = self._book_reversals(new_rows)
        booked_as_reversals = set(reversals.mapped("name"))
        new_rows = [row for row in new_rows if row.receipt not in booked_as_reversals]
        vals_list = [self._receipt_vals(row, provider, shortcode) for row in new_rows]
        if vals_list:
            created = Receipt.create(vals_list)
        payments = created.filtered(lambda r: r.kind == "payment")
        for receipt in payments:
            receipt._mpesa_apply_recovered()
        return {
            "created": len(created | reversals),
            "recovered": len(payments),
            "known": len(existing),
        }

    def _book_reversals(self, rows):
        """The rows of reversals M-PESA confirmed without naming them (R000001, a
        status query): the money out of that payment, booked as its reversal (met
        with its money in), not as a withdrawal. Returns the money out booked."""
        provider = self.provider_id.sudo()
        Receipt = self.env["mpesa.receipt"].sudo()
        booked = Receipt
        for row in filter(lambda row: row.is_reversal, rows):
            reversed_ = Receipt.search(
                [
                    ("company_id", "=", provider.company_id.id),
                    ("shortcode", "=", provider.mpesa_shortcode),
                    ("name", "=", row.linked_receipt),
                    ("kind", "=", "payment"),
                    ("state", "=", "reversed"),
                ]
            )
            if reversed_ and not reversed_._mpesa_reversal_out():
                booked |= reversed_._mpesa_book_reversal(
                    row.receipt, float(row.withdrawn), row.completed_at
                )
        return booked

    def _check_own_shortcode(self, codes):
        """M-PESA receipt codes are unique across M-PESA: rows that another shortcode
        already holds, of this company or of another one, come from that shortcode's
        statement, imported under the wrong account (the money would be booked
        twice: another company's, in this company's journal too)."""
        provider = self.provider_id.sudo()
        theirs = (
            self.env["mpesa.receipt"]
            .sudo()
            .search(
                [
                    "|",
                    ("company_id", "!=", provider.company_id.id),
                    ("shortcode", "!=", provider.mpesa_shortcode),
                    ("name", "in", codes),
                ],
                limit=1,
            )
        )
        if theirs:
            other = theirs.provider_id._mpesa_shortcode_label()
            if theirs.company_id != provider.company_id:
                other = f"{other} ({theirs.company_id.name})"
            raise UserError(
                self.env._(
                    "Nothing was imported: receipt %(code)s belongs to %(other)s, so "
                    "this is its statement. Import it as the M-PESA account "
                    "%(other)s, not %(this)s.",
                    code=theirs.name,
                    other=other,
                    this=provider._mpesa_shortcode_label(),
                )
            )

    def _receipt_vals(self, row, provider, shortcode):
        kind = "payment"
        if row.withdrawn:
            kind = "charge" if row.is_charge else "withdrawal"
        return {
            "name": row.receipt,
            "provider_id": provider.id,
            "company_id": provider.company_id.id,
            "shortcode": shortcode,
            "amount": float(row.paid_in or row.withdrawn),
            "kind": kind,
            "phone": row.phone,
            "customer_name": row.customer_name,
            "reference": row.account_ref,
            "paid_at": row.completed_at,
            "linked_receipt": row.linked_receipt or False,
            "channel": "import",
            **self.env["mpesa.receipt"]._seen_by_vals("import"),
            "recovered": kind == "payment",
            "state": "received" if kind == "payment" else "applied",
        }

    def _confirm_paybill(self, existing, rows):
        """M-PESA's own statement confirms the paybill notifications it lists."""
        amounts = {row.receipt: abs(float(row.amount)) for row in rows}
        for code, receipt in existing.items():
            if receipt.verification == "unverified":
                receipt.verification = "verified"
            elif receipt.verification == "pending":
                receipt._mpesa_confirmed(amounts[code])

    # === BALANCES === #

    def _journal(self):
        return self.provider_id.sudo().journal_id

    def _journal_balance(self, as_of=None):
        return self._journal()._mpesa_journal_balance(as_of=as_of)

    def _add_opening_balance(self, statement):
        """First statement of an empty journal: bring in the balance it starts from,
        so that the journal's balance can equal M-PESA's."""
        if not statement.opening_balance or not statement.start:
            return
        journal = self._journal()
        first_day = kenya_date(statement.start)  # the statement's times are UTC
        StLine = self.env["account.bank.statement.line"].sudo()
        earlier = StLine.search_count(
            [("journal_id", "=", journal.id), ("date", "<", first_day)]
        )
        if earlier or StLine.search_count(
            [
                ("journal_id", "=", journal.id),
                ("payment_ref", "=like", "Opening balance%"),
            ]
        ):
            return
        StLine.create(
            {
                "journal_id": journal.id,
                "date": first_day - dt.timedelta(days=1),
                "payment_ref": "Opening balance per M-PESA statement",
                "amount": float(statement.opening_balance),
            }
        )

    def _describe(self, summary):
        lines = [
            self.env._(
                "%(n)s new receipts (%(r)s recovered payments that never reached "
                "us by callback).",
                n=summary["created"],
                r=summary["recovered"],
            ),
            self.env._(
                "%s receipts were already known: nothing created twice.",
                summary["known"],
            ),
        ]
        if summary.get("skipped"):
            lines.append(
                self.env._("%s rows not Completed were ignored.", summary["skipped"])
            )
        if summary.get("closing") is not None:
            lines += self._balance_lines(summary)
        elif summary.get("unchecked"):
            lines.append(
                self.env._(
                    "The statement has no Balance column (or it is empty): the "
                    "balances were not checked against the M-PESA journal, and no "
                    "opening balance was brought in."
                )
            )
        return "\n".join(lines)

    def _balance_lines(self, summary):
        """M-PESA's closing balance against the journal as of the statement's last
        row, and their difference when they disagree. The closing balance is
        M-PESA's after that row: money received since is in the journal, not in it."""
        closing = summary["closing"]
        journal = self._journal_balance(as_of=summary["closing_at"])
        lines = [
            self.env._(
                "Statement closing balance: KES %(closing)s; journal balance at the "
                "statement's last row (%(moment)s, Nairobi time): KES %(journal)s.",
                closing=shillings(closing),
                moment=to_kenya(summary["closing_at"]).strftime("%d/%m/%Y %H:%M:%S"),
                journal=shillings(journal),
            )
        ]
        difference = self.provider_id.sudo().mpesa_currency_id.round(
            float(closing) - journal
        )
        if difference:
            lines.append(
                self.env._(
                    "Difference: KES %s. The nightly books check lists what makes it "
                    "under Books Differences on the M-PESA account.",
                    shillings(difference),
                )
            )
        return lines
