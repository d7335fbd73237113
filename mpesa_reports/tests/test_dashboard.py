from datetime import date, datetime, timedelta

import pytz

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import ReportsCommon

# 20:59 UTC is 23:59 in Nairobi (1 March); 21:01 UTC is 00:01 on 2 March.
LAST_MINUTE_OF_MARCH_1 = "2026-03-01 20:59:00"
FIRST_MINUTE_OF_MARCH_2 = "2026-03-01 21:01:00"
MARCH_2_MORNING = "2026-03-02 08:00:00"


@tagged("post_install", "-at_install")
class TestDashboard(ReportsCommon):
    """The dashboard's figures against the records behind them."""

    def _figures(self, user, date_from, date_to=None):
        return (
            self.env["mpesa.dashboard"]
            .with_user(user)
            .get_figures(date_from, date_to or date_from)
        )

    def _records(self, user, figure):
        """What a click on ``figure`` lists, as ``user``."""
        return self.env[figure["res_model"]].with_user(user).search(figure["domain"])

    def _by_label(self, lines):
        return {line["label"]: (line["count"], line["amount"]) for line in lines}

    def _three_receipts(self):
        """An invoice of two products paid on the last minute of 1 March (Nairobi),
        a payment naming no known account on the first minute of 2 March and a second
        invoice paid but not reconciled the same morning."""
        invoice = self._product_invoice([(self.lamp, 600.0), (self.install, 400.0)])
        paid = self._c2b(invoice.name, 1000)
        self._post_process(paid)
        stray = self._c2b("NOSUCHREF", 250)
        invoice2 = self._product_invoice([(self.install, 300.0)])
        unmatched = self._c2b(invoice2.name, 300)
        self._write(
            paid,
            {
                "paid_at": LAST_MINUTE_OF_MARCH_1,
                "branch_id": self.nairobi.id,
                "team_id": self.field_team.id,
            },
        )
        self._write(
            stray, {"paid_at": FIRST_MINUTE_OF_MARCH_2, "branch_id": self.mombasa.id}
        )
        self._write(unmatched, {"paid_at": MARCH_2_MORNING})
        self.assertEqual(paid.state, "applied")
        self.assertEqual(paid.reconcile_state, "reconciled")
        self.assertEqual(stray.state, "review")
        self.assertEqual(stray.reconcile_state, "exception")
        self.assertEqual(unmatched.state, "applied")
        self.assertEqual(unmatched.reconcile_state, "unreconciled")
        return paid, stray, unmatched

    def test_received_breakdowns_and_the_nairobi_midnight(self):
        paid, stray, unmatched = self._three_receipts()

        march_1 = self._figures(self.finance, "2026-03-01")
        self.assertEqual(
            (march_1["date_from"], march_1["date_to"]), ("2026-03-01",) * 2
        )
        self.assertEqual(march_1["tz"], "Africa/Nairobi")
        self.assertEqual(march_1["received"]["count"], 1)
        self.assertEqual(march_1["received"]["amount"], 1000.0)
        self.assertEqual(self._records(self.finance, march_1["received"]), paid)
        self.assertEqual(
            self._by_label(march_1["by_product"]),
            {"Solar Lamp": (1, 600.0), "Installation Service": (1, 400.0)},
        )
        for line in march_1["by_product"]:
            self.assertEqual(self._records(self.finance, line), paid)
        self.assertEqual(
            self._by_label(march_1["by_branch"]), {"Nairobi CBD": (1, 1000.0)}
        )
        self.assertEqual(
            self._by_label(march_1["by_team"]), {"Field Sales": (1, 1000.0)}
        )
        self.assertEqual(
            self._by_label(march_1["by_channel"]), {"Paybill / Till (C2B)": (1, 1000.0)}
        )

        march_2 = self._figures(self.finance, "2026-03-02")
        self.assertEqual(march_2["received"]["count"], 2)
        self.assertEqual(march_2["received"]["amount"], 550.0)
        self.assertEqual(
            self._records(self.finance, march_2["received"]), stray | unmatched
        )
        self.assertEqual(
            self._by_label(march_2["by_product"]),
            {
                "Installation Service": (1, 300.0),
                "Not linked to an invoice or order": (1, 250.0),
            },
        )
        by_branch = {line["label"]: line for line in march_2["by_branch"]}
        self.assertEqual(set(by_branch), {"Mombasa Road", "No branch"})
        self.assertEqual(by_branch["Mombasa Road"]["amount"], 250.0)
        self.assertEqual(self._records(self.finance, by_branch["No branch"]), unmatched)
        # The paid invoice brings its sales team (issue 11, finding 9).
        self.assertEqual(
            self._by_label(march_2["by_team"]),
            {"Sales": (1, 300.0), "No department": (1, 250.0)},
        )

        both = self._figures(self.finance, "2026-03-01", "2026-03-02")
        self.assertEqual(both["received"]["count"], 3)
        self.assertEqual(both["received"]["amount"], 1550.0)
        self.assertEqual(
            self._by_label(both["by_product"]),
            {
                "Installation Service": (2, 700.0),
                "Solar Lamp": (1, 600.0),
                "Not linked to an invoice or order": (1, 250.0),
            },
        )
        # The largest amount first.
        self.assertEqual(both["by_product"][0]["label"], "Installation Service")
        self.assertEqual(
            self._figures(self.finance, "2026-03-03")["received"]["count"], 0
        )

        # For a user in UTC, both minutes are on 1 March.
        self._write(self.finance, {"tz": "UTC"})
        in_utc = self._figures(self.finance, "2026-03-01")
        self.assertEqual(in_utc["tz"], "UTC")
        self.assertEqual(in_utc["received"]["amount"], 1250.0)
        self.assertEqual(self._records(self.finance, in_utc["received"]), paid | stray)

    def test_reversed_money_is_not_received(self):
        receipt = self._c2b("NOSUCHREF", 700)
        self._write(receipt, {"paid_at": MARCH_2_MORNING})
        self.assertEqual(
            self._figures(self.finance, "2026-03-02")["received"]["amount"], 700
        )
        self._write(receipt, {"state": "reversed"})
        figures = self._figures(self.finance, "2026-03-02")
        self.assertEqual(figures["received"]["count"], 0)
        self.assertEqual(figures["received"]["amount"], 0.0)

    def test_unmatched_exceptions_and_balance(self):
        _paid, stray, unmatched = self._three_receipts()
        now = fields.Datetime.now()
        Exception_ = self.env["mpesa.exception"].sudo()
        with self._db_lock():
            claims = Exception_.create(
                [
                    {"kind": "claim", "claim_code": "QCLAIM3DAY"},
                    {"kind": "claim", "claim_code": "QCLAIM10DY"},
                    {"kind": "underpaid", "claim_code": "QUNDERPAID"},
                ]
            )
            self.env.flush_all()
        three_days, ten_days, fresh = claims
        self._set_create_date(three_days, now - timedelta(days=3))
        self._set_create_date(ten_days, now - timedelta(days=10))
        self._set_create_date(fresh, now - timedelta(hours=2))
        self._set_create_date(stray.exception_ids, now - timedelta(minutes=5))
        self._write(
            self.mpesa,
            {"mpesa_balance": 1000.0, "mpesa_balance_date": "2026-03-02 06:00:00"},
        )

        figures = self._figures(self.finance, "2026-03-02")

        # Unmatched: any date, only what is still to reconcile.
        self.assertEqual(figures["unmatched"]["count"], 1)
        self.assertEqual(figures["unmatched"]["amount"], 300.0)
        self.assertEqual(self._records(self.finance, figures["unmatched"]), unmatched)

        # Exceptions awaiting review by type and age (< 1 day, 1-7 days, > 7 days).
        exceptions = figures["exceptions"]
        self.assertEqual(exceptions["total"]["count"], 4)
        self.assertEqual([col["count"] for col in exceptions["columns"]], [2, 1, 1])
        rows = {row["kind"]: row for row in exceptions["rows"]}
        self.assertEqual(
            {kind: [c["count"] for c in row["cells"]] for kind, row in rows.items()},
            {
                "unknown_reference": [1, 0, 0],
                "underpaid": [1, 0, 0],
                "claim": [0, 1, 1],
            },
        )
        self.assertEqual(rows["claim"]["label"], "Customer Claims Payment")
        self.assertEqual(
            self._records(self.finance, rows["claim"]["cells"][1]), three_days
        )
        self.assertEqual(
            self._records(self.finance, rows["claim"]["cells"][2]), ten_days
        )
        self.assertEqual(
            self._records(self.finance, rows["unknown_reference"]["total"]),
            stray.exception_ids,
        )
        self.assertEqual(
            self._records(self.finance, exceptions["columns"][0]),
            fresh | stray.exception_ids,
        )
        # A resolved exception no longer waits.
        with self._db_lock():
            ten_days.with_user(self.finance).action_mark_duplicate()
            self.env.flush_all()
        after = self._figures(self.finance, "2026-03-02")["exceptions"]
        self.assertEqual([col["count"] for col in after["columns"]], [2, 1, 0])

        # M-PESA balance against the journal as of M-PESA's check (06:00 UTC on
        # 2 March): 1,000 reported, 1,250 in the books then; the 300 paid at 08:00
        # came after the check (1,550 in the books now).
        [balance] = figures["balances"]
        self.assertEqual(balance["provider_id"], self.mpesa.id)
        self.assertEqual(balance["mpesa"]["amount"], 1000.0)
        self.assertEqual(balance["mpesa"]["date"], "2026-03-02 06:00:00")
        self.assertEqual(self._journal_balance(), 1550.0)
        at_check = balance["journal_balance"]
        self.assertEqual(at_check["amount"], 1250.0)
        self.assertEqual(at_check["date"], "2026-03-02 06:00:00")
        self.assertEqual(balance["difference"]["amount"], -250.0)
        lines = self._records(self.finance, at_check)
        self.assertEqual(at_check["count"], 2)
        self.assertEqual(set(lines.mapped("mpesa_receipt_id.amount")), {1000.0, 250.0})
        self.assertEqual(self._records(self.finance, balance["difference"]), lines)
        now = balance["journal_now"]
        self.assertEqual((now["count"], now["amount"]), (3, 1550.0))
        self.assertFalse(now["date"])
        self.assertEqual(
            set(self._records(self.finance, now).mapped("mpesa_receipt_id.amount")),
            {1000.0, 250.0, 300.0},
        )

    def test_transactions_by_outcome(self):
        invoice = self._product_invoice([(self.lamp, 600.0)])
        paid = self._c2b(invoice.name, 600)
        with self._db_lock():
            pending = self._create_mpesa_tx(reference="DASH-PENDING")
            pending._set_pending()
            canceled = self._create_mpesa_tx(reference="DASH-CANCEL")
            canceled._set_canceled()
            failed = self._create_mpesa_tx(reference="DASH-ERROR", amount=99.0)
            failed._set_error("Daraja said no")
            other_provider = self._create_transaction(
                "redirect",
                reference="DASH-OTHER",
                provider_id=self.dummy_provider.id,
                payment_method_id=self.env.ref("payment.payment_method_unknown").id,
            )
            other_provider._set_done()
            self.env.flush_all()
        txs = paid.transaction_id | pending | canceled | failed | other_provider
        self.assertEqual(paid.transaction_id.state, "done")
        self._set_create_date(txs, self._utc(LAST_MINUTE_OF_MARCH_1))
        late = self._create_mpesa_tx(reference="DASH-LATE")
        self._set_create_date(late, self._utc(FIRST_MINUTE_OF_MARCH_2))
        self._write(late, {"state": "pending"})

        tx = self._figures(self.finance, "2026-03-01")["transactions"]
        self.assertEqual((tx["done"]["count"], tx["done"]["amount"]), (1, 600.0))
        self.assertEqual(self._records(self.finance, tx["done"]), paid.transaction_id)
        self.assertEqual((tx["pending"]["count"], tx["pending"]["amount"]), (1, 1250.0))
        self.assertEqual(self._records(self.finance, tx["pending"]), pending)
        self.assertEqual((tx["failed"]["count"], tx["failed"]["amount"]), (2, 1349.0))
        self.assertEqual(self._records(self.finance, tx["failed"]), canceled | failed)
        next_day = self._figures(self.finance, "2026-03-02")["transactions"]
        self.assertEqual(self._records(self.finance, next_day["pending"]), late)
        self.assertEqual(next_day["done"]["count"] + next_day["failed"]["count"], 0)

    def test_access(self):
        nairobi = self._c2b("NOSUCH1", 100)
        mombasa = self._c2b("NOSUCH2", 200)
        self._write(nairobi, {"branch_id": self.nairobi.id, "paid_at": MARCH_2_MORNING})
        self._write(mombasa, {"branch_id": self.mombasa.id, "paid_at": MARCH_2_MORNING})

        for user in (self.outsider, self.portal_user):
            with self.assertRaises(AccessError, msg=user.login):
                self._figures(user, "2026-03-02")

        clerk = self._figures(self.clerk, "2026-03-02")
        self.assertEqual(clerk["received"]["amount"], 100.0)
        self.assertEqual(self._records(self.clerk, clerk["received"]), nairobi)
        self.assertEqual(
            self._by_label(clerk["by_branch"]), {"Nairobi CBD": (1, 100.0)}
        )
        self.assertEqual(clerk["exceptions"]["total"]["count"], 1)
        self.assertEqual(
            self._records(self.clerk, clerk["exceptions"]["total"]),
            nairobi.exception_ids,
        )
        self.assertFalse(clerk["transactions"], "a clerk cannot read transactions")
        self.assertFalse(clerk["balances"], "company balances are for reconcilers")

        finance = self._figures(self.finance, "2026-03-02")
        self.assertEqual(finance["received"]["amount"], 300.0)
        self.assertEqual(
            self._by_label(finance["by_branch"]),
            {"Mombasa Road": (1, 200.0), "Nairobi CBD": (1, 100.0)},
        )
        self.assertEqual(finance["exceptions"]["total"]["count"], 2)
        self.assertTrue(finance["balances"])

    def test_default_period_and_presets(self):
        figures = self._figures(self.finance, False, False)
        today = datetime.now(pytz.timezone("Africa/Nairobi")).date()
        self.assertEqual(figures["date_from"], str(today))
        self.assertEqual(figures["date_to"], str(today))
        self.assertEqual(figures["presets"]["today"], [str(today)] * 2)
        # A Wednesday: its week starts on the language's first day (Sunday in en_US).
        Dashboard = self.env["mpesa.dashboard"]
        self.assertEqual(
            Dashboard.with_context(lang="en_US")._presets(date(2026, 3, 4)),
            {
                "today": ["2026-03-04", "2026-03-04"],
                "week": ["2026-03-01", "2026-03-07"],
                "month": ["2026-03-01", "2026-03-31"],
            },
        )
        # Reversed bounds are put in order.
        swapped = self._figures(self.finance, "2026-03-05", "2026-03-01")
        self.assertEqual(
            (swapped["date_from"], swapped["date_to"]), ("2026-03-01", "2026-03-05")
        )
