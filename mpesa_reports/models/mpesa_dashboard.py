from collections import defaultdict
from datetime import datetime, time, timedelta

import pytz

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.osv import expression
from odoo.tools import SQL

from odoo.addons.mpesa_payment.kenya_time import KENYA_TZ_NAME

from ..receipt_documents import linked_documents_sql

TX_STATES = {
    "done": ("done",),
    "pending": ("pending",),
    "failed": ("cancel", "error"),
}

# The product lines behind each receipt: its invoice's (or its transaction's invoices'),
# else its order's (or its transaction's orders'); a receipt without any keeps one row
# with no product (counted as "Not linked").
_PRODUCT_WEIGHTS_SQL = """
   WITH rec AS (
       SELECT r.id, r.amount, r.invoice_id, r.sale_order_id, r.transaction_id
         FROM mpesa_receipt r
        WHERE r.id IN %(receipt_ids)s
   ), rec_invoice AS (
       %(rec_invoice)s
   ), rec_order AS (
       %(rec_order)s
   ), weights AS (
       SELECT ri.receipt_id, aml.product_id, aml.price_total AS weight
         FROM rec_invoice ri
         JOIN account_move_line aml
           ON aml.move_id = ri.document_id AND aml.display_type = 'product'
        UNION ALL
       SELECT ro.receipt_id, sol.product_id, sol.price_total
         FROM rec_order ro
         JOIN sale_order_line sol
           ON sol.order_id = ro.document_id AND sol.display_type IS NULL
        WHERE ro.receipt_id NOT IN (SELECT receipt_id FROM rec_invoice)
   )
   SELECT rec.id, rec.amount, w.product_id, SUM(w.weight)
     FROM rec
LEFT JOIN weights w ON w.receipt_id = rec.id
 GROUP BY rec.id, rec.amount, w.product_id
"""


class MpesaDashboard(models.AbstractModel):
    """The figures finance looks at every morning, each with the records behind it.

    Everything is read as the current user: record rules decide what is counted, so a
    branch clerk sees their branch's money and nothing else.
    """

    _name = "mpesa.dashboard"
    _description = "M-PESA Dashboard"

    # === PERIOD === #

    @api.model
    def _user_tz(self):
        name = self.env.context.get("tz") or self.env.user.tz or KENYA_TZ_NAME
        try:
            return pytz.timezone(name)
        except pytz.UnknownTimeZoneError:
            return pytz.timezone(KENYA_TZ_NAME)

    @api.model
    def _today(self, tz):
        return pytz.utc.localize(fields.Datetime.now()).astimezone(tz).date()

    @api.model
    def _presets(self, today):
        """Today, this week (from the language's first weekday) and this month."""
        lang = self.env["res.lang"]._get_data(code=self.env.lang or "en_US")
        week_start = int(lang.week_start or 1) - 1  # 0 = Monday, like date.weekday()
        first_day = today - timedelta(days=(today.weekday() - week_start) % 7)
        month_start = today.replace(day=1)
        next_month = (month_start + timedelta(days=32)).replace(day=1)
        return {
            "today": [str(today), str(today)],
            "week": [str(first_day), str(first_day + timedelta(days=6))],
            "month": [str(month_start), str(next_month - timedelta(days=1))],
        }

    @api.model
    def _utc_bounds(self, date_from, date_to, tz):
        """[start, end) in naive UTC for whole days of ``tz`` (the stored datetimes)."""

        def utc(day):
            local = tz.localize(datetime.combine(day, time.min))
            return local.astimezone(pytz.utc).replace(tzinfo=None)

        return utc(date_from), utc(date_to + timedelta(days=1))

    # === FIGURES === #

    @api.model
    def _check_dashboard_access(self):
        if not self.env.user.has_group("mpesa_payment.group_mpesa_user"):
            raise AccessError(
                self.env._("Only M-PESA users can see the M-PESA dashboard.")
            )

    @api.model
    def _figure(self, model, domain, name, count=0, amount=0.0, **extra):
        """A number and the act_window domain that lists the records behind it."""
        return {
            "count": count,
            "amount": amount,
            "res_model": model,
            "domain": domain,
            "name": name,
            **extra,
        }

    @api.model
    def get_figures(self, date_from=False, date_to=False):
        """Every figure of the dashboard for the days ``date_from`` to ``date_to``
        (inclusive, ISO dates in the user's time zone; default today).

        Returns plain data: each figure has its count and/or amount, and the model and
        domain of the records behind it.
        """
        self._check_dashboard_access()
        tz = self._user_tz()
        today = self._today(tz)
        try:
            start_day = fields.Date.to_date(date_from) or today
            end_day = fields.Date.to_date(date_to) or start_day
        except ValueError as error:
            raise UserError(self.env._("Invalid date: %s", error)) from error
        if end_day < start_day:
            start_day, end_day = end_day, start_day
        start, end = self._utc_bounds(start_day, end_day, tz)
        period = [
            ("paid_at", ">=", fields.Datetime.to_string(start)),
            ("paid_at", "<", fields.Datetime.to_string(end)),
        ]
        received_domain = expression.AND(
            [[("kind", "=", "payment"), ("state", "!=", "reversed")], period]
        )
        currency = self.env.company.currency_id
        kes = self.env.ref("base.KES", raise_if_not_found=False)
        if kes and kes.active:
            currency = kes
        return {
            "date_from": str(start_day),
            "date_to": str(end_day),
            "today": str(today),
            "tz": tz.zone,
            "presets": self._presets(today),
            "currency_id": currency.id,
            "received": self._received(received_domain),
            "transactions": self._transactions(start, end),
            "exceptions": self._exceptions(),
            "unmatched": self._unmatched(),
            "by_product": self._by_product(received_domain),
            "by_branch": self._by_group(received_domain, "branch_id"),
            "by_team": self._by_group(received_domain, "team_id"),
            "by_channel": self._by_group(received_domain, "channel"),
            "by_shortcode": self._by_shortcode(received_domain),
            "balances": self._balances(),
        }

    @api.model
    def _received(self, domain):
        return self._receipt_total(domain, self.env._("M-PESA Payments Received"))

    @api.model
    def _receipt_total(self, domain, name):
        """Count and amount of the receipts in ``domain``, with their drill-down."""
        [(count, amount)] = self.env["mpesa.receipt"]._read_group(
            domain, aggregates=["__count", "amount:sum"]
        )
        return self._figure(
            "mpesa.receipt", domain, name, count=count, amount=amount or 0.0
        )

    @api.model
    def _transactions(self, start, end):
        """Payment requests (STK pushes, payment links, checkouts) by outcome."""
        Tx = self.env["payment.transaction"]
        if not Tx.has_access("read"):
            return False
        providers = self.env["payment.provider"]._mpesa_providers(active=False)
        base = [
            ("provider_id", "in", providers.ids),
            ("create_date", ">=", fields.Datetime.to_string(start)),
            ("create_date", "<", fields.Datetime.to_string(end)),
        ]
        rows = {
            state: (count, amount or 0.0)
            for state, count, amount in Tx._read_group(
                expression.AND([base, [("state", "in", sum(TX_STATES.values(), ()))]]),
                groupby=["state"],
                aggregates=["__count", "amount:sum"],
            )
        }
        names = {
            "done": self.env._("Successful M-PESA Transactions"),
            "pending": self.env._("Pending M-PESA Transactions"),
            "failed": self.env._("Failed M-PESA Transactions"),
        }
        result = {}
        for key, states in TX_STATES.items():
            count = sum(rows.get(s, (0, 0.0))[0] for s in states)
            amount = sum(rows.get(s, (0, 0.0))[1] for s in states)
            result[key] = self._figure(
                "payment.transaction",
                expression.AND([base, [("state", "in", list(states))]]),
                names[key],
                count=count,
                amount=amount,
            )
        return result

    @api.model
    def _age_buckets(self):
        now = fields.Datetime.now()
        day_ago = fields.Datetime.to_string(now - timedelta(days=1))
        week_ago = fields.Datetime.to_string(now - timedelta(days=7))
        return [
            ("fresh", self.env._("< 1 day"), [("create_date", ">", day_ago)]),
            (
                "week",
                self.env._("1-7 days"),
                [("create_date", "<=", day_ago), ("create_date", ">", week_ago)],
            ),
            ("old", self.env._("> 7 days"), [("create_date", "<=", week_ago)]),
        ]

    @api.model
    def _exceptions(self):
        """Open exceptions (whatever their date: they still wait), by kind and age."""
        open_ = [("state", "=", "open")]
        buckets = self._age_buckets()
        counts = self._exception_counts(open_, buckets)
        rows = [
            self._exception_row(kind, counts[kind], open_, buckets)
            for kind in sorted(counts, key=lambda k: -sum(counts[k].values()))
        ]
        columns = [
            self._figure(
                "mpesa.exception",
                open_ + age,
                self.env._("Exceptions open %s", bucket_label),
                count=sum(counts[k].get(key, 0) for k in counts),
                key=key,
                label=bucket_label,
            )
            for key, bucket_label, age in buckets
        ]
        return {
            "rows": rows,
            "columns": columns,
            "total": self._figure(
                "mpesa.exception",
                open_,
                self.env._("Exceptions Awaiting Review"),
                count=sum(c["count"] for c in columns),
            ),
        }

    @api.model
    def _exception_counts(self, open_, buckets):
        """{kind: {age bucket: count}}: one grouped count per age bucket, not per cell."""
        counts = defaultdict(dict)
        for key, _label, age in buckets:
            for kind, count in self.env["mpesa.exception"]._read_group(
                open_ + age, groupby=["kind"], aggregates=["__count"]
            ):
                counts[kind][key] = count
        return counts

    @api.model
    def _exception_row(self, kind, kind_counts, open_, buckets):
        """One kind's row of the exception table: a figure per age bucket and the
        kind's total, each opening the exceptions behind it."""
        kinds = dict(
            self.env["mpesa.exception"]._fields["kind"]._description_selection(self.env)
        )
        kind_domain = open_ + [("kind", "=", kind)]
        label = kinds.get(kind, kind)
        cells = [
            self._figure(
                "mpesa.exception",
                kind_domain + age,
                self.env._("%(kind)s, %(age)s", kind=label, age=bucket_label),
                count=kind_counts.get(key, 0),
            )
            for key, bucket_label, age in buckets
        ]
        return {
            "kind": kind,
            "label": label,
            "cells": cells,
            "total": self._figure(
                "mpesa.exception",
                kind_domain,
                label,
                count=sum(c["count"] for c in cells),
            ),
        }

    @api.model
    def _unmatched(self):
        """Receipts not reconciled yet and not in the exception queue (any date)."""
        domain = [("reconcile_state", "=", "unreconciled")]
        return self._receipt_total(domain, self.env._("Unmatched M-PESA Receipts"))

    @api.model
    def _by_shortcode(self, domain):
        """Received money by paybill or till: each shortcode is its own provider,
        with its own journal, named as finance knows it ('Till 5123456')."""
        figures = self._by_group(domain, "provider_id")
        for figure in figures:
            provider = self.env["payment.provider"].sudo().browse(figure["key"])
            label = provider._mpesa_shortcode_label()
            figure.update(label=label, name=self.env._("M-PESA Payments: %s", label))
        return sorted(figures, key=lambda f: (-f["amount"], f["label"]))

    @api.model
    def _by_group(self, domain, field_name):
        """Received money by branch, department or channel."""
        Receipt = self.env["mpesa.receipt"]
        field = Receipt._fields[field_name]
        labels = {
            "branch_id": self.env._("No branch"),
            "team_id": self.env._("No department"),
            "channel": self.env._("Unknown channel"),
        }
        selection = (
            dict(field._description_selection(self.env))
            if field.type == "selection"
            else {}
        )
        result = []
        for value, count, amount in Receipt._read_group(
            domain, groupby=[field_name], aggregates=["__count", "amount:sum"]
        ):
            if field.type == "many2one":
                key = value.id
                label = value.sudo().display_name if value else labels[field_name]
            else:
                key = value
                label = (
                    selection.get(value, labels[field_name])
                    if value
                    else labels[field_name]
                )
            result.append(
                self._figure(
                    "mpesa.receipt",
                    expression.AND([domain, [(field_name, "=", key or False)]]),
                    self.env._("M-PESA Payments: %s", label),
                    count=count,
                    amount=amount or 0.0,
                    key=key or False,
                    label=label,
                )
            )
        return sorted(result, key=lambda f: (-f["amount"], f["label"]))

    @api.model
    def _by_product(self, domain):
        """Received money by product or service sold: each receipt is spread over the
        lines of the invoice(s) it paid, or else of the order(s), by their share of
        the total. A receipt linked to no document counts as "Not linked"."""
        totals, receipts = self._spread_over_products(self._product_weights(domain))
        products = (
            self.env["product.product"]
            .sudo()
            .browse([k for k in totals if isinstance(k, int)])
        )
        names = {p.id: p.display_name for p in products}
        names["other"] = self.env._("Other (lines without product)")
        names["none"] = self.env._("Not linked to an invoice or order")
        currency = self.env.company.currency_id
        result = [
            self._figure(
                "mpesa.receipt",
                expression.AND([domain, [("id", "in", sorted(receipts[key]))]]),
                self.env._("M-PESA Payments: %s", names[key]),
                count=len(receipts[key]),
                amount=currency.round(total),
                key=key,
                label=names[key],
            )
            for key, total in totals.items()
        ]
        return sorted(result, key=lambda f: (-f["amount"], f["label"]))

    @api.model
    def _product_weights(self, domain):
        """(receipt id, amount, product id, weight) rows, in one query: a receipt's
        lines may come through its invoice, its order or its transaction's documents,
        and reading them record by record would not scale to a month of payments."""
        query = self.env["mpesa.receipt"]._search(domain)
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                _PRODUCT_WEIGHTS_SQL,
                receipt_ids=query.subselect(),
                rec_invoice=linked_documents_sql(self.env, "invoice"),
                rec_order=linked_documents_sql(self.env, "order"),
            )
        )
        return self.env.cr.fetchall()

    @api.model
    def _spread_over_products(self, rows):
        """Each receipt's amount shared over its products by their weight (equal shares
        when the lines weigh nothing): ({product id, "other" or "none": amount},
        {same key: receipt ids})."""
        per_receipt = defaultdict(list)
        amounts = {}
        for receipt_id, amount, product_id, weight in rows:
            amounts[receipt_id] = amount or 0.0
            per_receipt[receipt_id].append((product_id, weight))
        totals = defaultdict(float)
        receipts = defaultdict(set)
        for receipt_id, parts in per_receipt.items():
            amount = amounts[receipt_id]
            linked = [(p, w or 0.0) for p, w in parts if p is not None or w is not None]
            if not linked:
                totals["none"] += amount
                receipts["none"].add(receipt_id)
                continue
            weight_sum = sum(w for _p, w in linked)
            for product_id, weight in linked:
                share = weight / weight_sum if weight_sum else 1.0 / len(linked)
                key = product_id or "other"
                totals[key] += amount * share
                receipts[key].add(receipt_id)
        return totals, receipts

    @api.model
    def _balances(self):
        """Per M-PESA shortcode: the balance Safaricom last reported against what the
        books hold in its journal. Company-wide money: for reconcilers only."""
        if not self.env.user.has_group("mpesa_reconciliation.group_mpesa_reconciler"):
            return False
        providers = (
            self.env["payment.provider"]
            ._mpesa_providers(active=False)
            .filtered("journal_id")  # computed, not searchable
        )
        return [self._balance_row(provider) for provider in providers]

    @api.model
    def _balance_row(self, provider):
        """One shortcode's balances: M-PESA's last reported figure, its journal's as
        of that moment (money received since is not in M-PESA's figure), and the
        difference between the two (none until Safaricom has answered a balance
        check); the journal's balance now besides."""
        journal = provider.journal_id.with_env(self.env)
        journal_name = journal.sudo().display_name
        mpesa_balance = provider.mpesa_balance
        checked = provider.mpesa_balance_date
        journal_now = self._journal_figure(
            journal, self.env._("Statement Lines of %s", journal_name)
        )
        journal_at_check = (
            self._journal_figure(
                journal,
                self.env._(
                    "Statement Lines of %s up to the M-PESA Balance Check",
                    journal_name,
                ),
                as_of=checked,
            )
            if checked
            else journal_now
        )
        difference = (
            provider.mpesa_currency_id.round(mpesa_balance - journal_at_check["amount"])
            if checked
            else False
        )
        return {
            "provider_id": provider.id,
            "provider": provider.name,
            "journal": journal_name,
            "shortcode": provider.mpesa_shortcode,
            "label": provider._mpesa_shortcode_label(),
            "mpesa": self._figure(
                "mpesa.api.request",
                [("provider_id", "=", provider.id), ("kind", "=", "balance")],
                self.env._("M-PESA Balance Checks"),
                amount=mpesa_balance,
                date=fields.Datetime.to_string(checked) if checked else False,
            ),
            # Compared with M-PESA's: the journal as of the balance check.
            "journal_balance": journal_at_check,
            "journal_now": journal_now,
            # The lines it is the difference from: the journal's as of the check.
            "difference": {**journal_at_check, "count": 0, "amount": difference},
        }

    @api.model
    def _journal_figure(self, journal, name, as_of=None):
        """The balance of an M-PESA journal, now or ``as_of`` a UTC moment (then
        dated), and the statement lines that make it."""
        amount, count = journal._mpesa_journal_totals(as_of=as_of)
        return self._figure(
            "account.bank.statement.line",
            journal._mpesa_journal_balance_domain(as_of=as_of),
            name,
            count=count,
            amount=amount,
            date=fields.Datetime.to_string(as_of) if as_of else False,
        )
