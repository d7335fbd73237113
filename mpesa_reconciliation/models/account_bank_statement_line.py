import logging
from decimal import Decimal

from odoo import api, fields, models
from odoo.exceptions import UserError

from odoo.addons.mpesa_payment.amounts import shillings
from odoo.addons.mpesa_payment.kenya_time import kenya_date
from odoo.addons.mpesa_payment.models.account_move import OPEN_INVOICE_DOMAIN

from ..matching import Candidate, Config, Line, Matcher

_logger = logging.getLogger(__name__)

AUTO_THRESHOLD_PARAM = "mpesa_reconciliation.auto_threshold"


class AccountBankStatementLine(models.Model):
    _inherit = "account.bank.statement.line"

    mpesa_receipt_id = fields.Many2one(
        "mpesa.receipt", readonly=True, index="btree_not_null", copy=False
    )
    mpesa_suggestion_ids = fields.One2many(
        "mpesa.match.suggestion", "statement_line_id", string="M-PESA Suggestions"
    )

    def _do_auto_reconcile(self, models):
        """OCA's rules would reconcile an M-PESA line with the invoice it names, beside
        the payment the money path creates for the same money: the receivable would be
        credited twice. M-PESA lines meet their payments in the money path, or wait
        for our suggestions."""
        if self.mpesa_receipt_id:
            return None
        return super()._do_auto_reconcile(models)

    def reconcile_bank_line(self):
        """Override of OCA's Reconcile: money of an M-PESA receipt that is not applied
        yet reaches a document only by the money path (a suggestion's Accept, the
        exception queue), which books its payment first. Matched by hand to an
        invoice's receivable, the invoice would be paid beside the ledger, and the
        queue would credit the customer a second time."""
        receipt = self.mpesa_receipt_id.sudo()
        if (
            receipt
            and not self.env.context.get("mpesa_money_path")
            and receipt._mpesa_left() > 0
        ):
            raise UserError(
                self.env._(
                    "KES %(left)s of M-PESA receipt %(code)s is not applied yet. "
                    "Accept one of its M-PESA Suggestions, or settle it from its "
                    "exception (Allocate, Keep as Credit): they book the payment and "
                    "reconcile this line.",
                    left=shillings(receipt._mpesa_left()),
                    code=receipt.name,
                )
            )
        return super().reconcile_bank_line()

    def _mpesa_reconcile_with(self, move_lines):
        """Reconcile through OCA's reconciliation data, as a click in the widget would."""
        self.ensure_one()
        # From a clean proposal, as the screen's Reset button does: after an undo the
        # stored proposal still holds the cancelled payment's line.
        self.clean_reconcile()
        for move_line in move_lines:
            self._add_account_move_line(move_line, keep_current=True)
        if not self.reconcile_data_info.get("can_reconcile"):
            return False
        self.with_context(mpesa_money_path=True).reconcile_bank_line()
        return True

    def _mpesa_reconcile_to(self, account):
        """Reconcile this line's whole amount to ``account``, as the accountant does
        in OCA's screen by giving the open (suspense) line that account. Built from
        the line alone: OCA's matching rules could propose the invoice a reversed
        payment reopened."""
        self.ensure_one()
        info = self._default_reconcile_data(from_unreconcile=True)
        data = [
            dict(line, kind="other", account_id=[account.id, account.display_name])
            if line["kind"] == "suspense"
            else line
            for line in info["data"]
        ]
        self.reconcile_data_info = self._recompute_suspense_line(
            data, info["reconcile_auxiliary_id"], self.manual_reference
        )
        if not self.reconcile_data_info.get("can_reconcile"):
            return False
        self.with_context(mpesa_money_path=True).reconcile_bank_line()
        return True

    # === SUGGESTIONS === #

    @api.model
    def _mpesa_matcher(self, companies):
        """Load every open candidate once and index it (no query per line)."""
        param = self.env["ir.config_parameter"].sudo().get_param(AUTO_THRESHOLD_PARAM)
        config = Config(auto_threshold=float(param)) if param else Config()
        invoices = self.env["account.move"].search(
            [("company_id", "in", companies.ids), *OPEN_INVOICE_DOMAIN]
        )
        orders = self._mpesa_open_orders(companies)
        candidates = [self._mpesa_invoice_candidate(inv) for inv in invoices] + [
            self._mpesa_order_candidate(order) for order in orders
        ]
        partners = (
            invoices.commercial_partner_id | orders.partner_id.commercial_partner_id
        )
        phones = {p.id: [p.mpesa_msisdn] for p in partners if p.mpesa_msisdn}
        names = {p.id: p.name or "" for p in partners}
        return Matcher(
            candidates, partner_phones=phones, partner_names=names, config=config
        )

    @api.model
    def _mpesa_open_orders(self, companies):
        """Orders a payment may still be for: confirmed or quoted, not fully invoiced,
        with something left to pay (amount_paid is computed, so filtered in Python)."""
        orders = self.env["sale.order"].search(
            [
                ("company_id", "in", companies.ids),
                ("state", "in", ("draft", "sent", "sale")),
                ("invoice_status", "!=", "invoiced"),
            ]
        )
        return orders.filtered(lambda o: o.amount_total - o.amount_paid > 0.005)

    @api.model
    def _mpesa_invoice_candidate(self, inv):
        """An open invoice as the matcher sees it: what is still due, by when, and its
        payment reference."""
        return self._mpesa_candidate(
            inv,
            inv.commercial_partner_id,
            self.env["mpesa.receipt"]._in_kes(inv, inv.amount_residual),
            inv.invoice_date_due or inv.invoice_date or inv.date,
            inv.payment_reference,
        )

    @api.model
    def _mpesa_order_candidate(self, order):
        """An open order as the matcher sees it: what is left to pay after deposits,
        and the customer's own reference."""
        return self._mpesa_candidate(
            order,
            order.partner_id.commercial_partner_id,
            self.env["mpesa.receipt"]._in_kes(
                order, order.amount_total - order.amount_paid
            ),
            # a UTC moment: its day is Nairobi's, like the line's
            kenya_date(order.date_order),
            order.client_order_ref,
        )

    @api.model
    def _mpesa_candidate(self, document, partner, amount_due, date, reference):
        """The matcher's view of a document: a customer may type its reference or
        their own M-PESA account number, so both are the document's references."""
        return Candidate(
            model=document._name,
            id=document.id,
            name=document.name,
            partner_id=partner.id,
            partner_name=partner.name or "",
            amount_due=Decimal(str(amount_due)),
            date=date,
            references=tuple(filter(None, [reference, partner.mpesa_account_ref])),
        )

    def _mpesa_line(self):
        receipt = self.mpesa_receipt_id
        return Line(
            id=self.id,
            amount=Decimal(str(self.amount)),
            reference=receipt.reference or self.payment_ref or "",
            date=self.date,
            partner_id=self.partner_id.commercial_partner_id.id or None,
            phone=receipt.phone or "",
            customer_name=receipt.customer_name or "",
        )

    def _mpesa_match(self):
        """Rank candidates for these lines, {line id: (certain, suggestions)}: each
        line among the open documents of its own company. The matching job takes
        every company's lines at once; one matcher over all companies offered one
        company's money another's invoices, and the job failed on the certain ones
        ("Incompatible companies") as long as such a line waited."""
        results = {}
        for company, lines in self.grouped("company_id").items():
            matcher = self._mpesa_matcher(company)
            results.update(matcher.match_all([line._mpesa_line() for line in lines]))
        return results

    def _mpesa_refresh_suggestions(self, auto=True):
        """Rank candidates for these unreconciled M-PESA lines; reconcile the certain
        ones when ``auto``. Returns the lines reconciled automatically."""
        lines = self.filtered(
            lambda st: st.mpesa_receipt_id and not st.is_reconciled and st.amount > 0
        )
        if not lines:
            return self.browse()
        results = lines._mpesa_match()
        Suggestion = self.env["mpesa.match.suggestion"].sudo()
        lines.mpesa_suggestion_ids.sudo().unlink()
        vals_list = []
        for line in lines:
            _auto, suggestions = results.get(line.id, (None, []))
            vals_list += [
                {
                    "statement_line_id": line.id,
                    "res_model": s.model,
                    "res_id": s.record_id,
                    "name": s.name,
                    "score": s.score,
                    "reasons": ", ".join(s.reasons),
                    "amount_match": s.amount_match,
                    "sequence": rank,
                }
                for rank, s in enumerate(suggestions, start=1)
            ]
        created = Suggestion.create(vals_list)
        reconciled = self.browse()
        if auto:
            for line in lines:
                best, _all = results.get(line.id, (None, []))
                if best is None:
                    continue
                suggestion = created.filtered(
                    lambda s, line=line, best=best: (
                        s.statement_line_id == line
                        and s.res_model == best.model
                        and s.res_id == best.record_id
                    )
                )
                if suggestion and suggestion._accept():
                    reconciled |= line
        return reconciled

    @api.model
    def _cron_mpesa_suggestions(self):
        lines = self.search(
            [("mpesa_receipt_id", "!=", False), ("is_reconciled", "=", False)]
        )
        lines._mpesa_refresh_suggestions()
