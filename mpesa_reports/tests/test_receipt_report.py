from datetime import datetime

from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import tagged

from odoo.addons.mpesa_reconciliation.tests.common import (
    SHORTCODE,
    ReconciliationCommon,
)


class ReportCommon(ReconciliationCommon):
    """Branches, a department, product categories and one user per M-PESA role."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.branch_cbd = cls.env["mpesa.branch"].create({"name": "Nairobi CBD"})
        cls.branch_msa = cls.env["mpesa.branch"].create({"name": "Mombasa"})
        cls.categ_food = cls.env["product.category"].create({"name": "Food"})
        cls.categ_tools = cls.env["product.category"].create({"name": "Tools"})
        cls.product_a.categ_id = cls.categ_food
        cls.product_b.categ_id = cls.categ_tools
        users = "mpesa_payment.group_mpesa_user"
        cls.cashier = cls._staff(
            "mpesa_cashier", users, mpesa_branch_ids=[Command.set(cls.branch_cbd.ids)]
        )
        cls.seller = cls._staff("mpesa_seller", users)
        cls.team = cls.env["crm.team"].create(
            {"name": "Wholesale", "member_ids": [Command.link(cls.seller.id)]}
        )
        reconcilers = "mpesa_reconciliation.group_mpesa_reconciler"
        cls.reconciler = cls._staff("mpesa_reconciler", reconcilers)
        cls.plain = cls._staff("plain_employee", "base.group_user")
        cls.company_data_2 = cls.setup_other_company(name="Mombasa Traders")
        cls.company_2 = cls.company_data_2["company"]
        cls.other_reconciler = cls._staff(
            "mpesa_reconciler_2", reconcilers, company=cls.company_2
        )
        cls.mpesa_2 = cls._prepare_provider(
            "mpesa",
            company=cls.company_2,
            update_values={
                "mpesa_shortcode": "600999",
                "journal_id": cls.company_data_2["default_journal_bank"].id,
            },
        )

    def _receipt(self, code, amount, paid_at, channel="c2b", provider=None, **vals):
        """A receipt written straight into the ledger (no HTTP flow)."""
        provider = provider or self.mpesa
        receipt = self.env["mpesa.receipt"]._record(
            {
                "name": code,
                "provider_id": provider.id,
                "amount": amount,
                "paid_at": paid_at,
                "phone": "2547******149",
                **vals,
            },
            channel=channel,
        )
        self.env.flush_all()
        return receipt

    def _rows(self, env=None, **kwargs):
        env = env or self.env
        return env["mpesa.receipt.report"].search(
            [("name", "in", kwargs.get("codes") or self.codes)], order="name"
        )


@tagged("post_install", "-at_install")
class TestReceiptReport(ReportCommon):
    def setUp(self):
        super().setUp()
        self.codes = []

    def _add(self, code, amount, paid_at, channel="c2b", **vals):
        self.codes.append(code)
        return self._receipt(code, amount, paid_at, channel=channel, **vals)

    def test_rows_match_the_ledger(self):
        paid = datetime(2026, 3, 10, 8, 30)
        c2b = self._add(
            "RPT0000001",
            1000,
            paid,
            partner_id=self.partner.id,
            branch_id=self.branch_cbd.id,
            user_id=self.cashier.id,
            team_id=self.team.id,
            reference="ACC-1",
        )
        self._add("RPT0000002", 250, paid, channel="stk", branch_id=self.branch_msa.id)
        self._add("RPT0000003", 30, paid, channel="import", kind="charge")
        claimed = self._add("RPT0000004", 400, paid, channel="query")
        claimed.sudo().write({"state": "review", "review_reason": "Customer claim"})
        self.env.flush_all()
        rows = self._rows()
        self.assertEqual(rows.mapped("name"), sorted(self.codes))
        row = rows[0]
        self.assertEqual(row.receipt_id, c2b)
        self.assertEqual(row.date, paid)
        self.assertEqual(str(row.local_date), "2026-03-10")
        self.assertEqual(row.amount, 1000)
        self.assertEqual(row.expected_amount, 1000)
        self.assertEqual(row.net_amount, 1000)
        self.assertEqual(row.receipt_count, 1)
        self.assertEqual(
            (row.kind, row.state, row.reconcile_state, row.channel),
            ("payment", "received", "unreconciled", "c2b"),
        )
        self.assertEqual(
            (row.branch_id, row.team_id, row.user_id, row.partner_id),
            (self.branch_cbd, self.team, self.cashier, self.partner),
        )
        self.assertEqual(
            (row.company_id, row.shortcode, row.provider_id),
            (self.env.company, SHORTCODE, self.mpesa),
        )
        charge = rows.filtered(lambda r: r.name == "RPT0000003")
        self.assertEqual((charge.kind, charge.net_amount), ("charge", -30))
        review = rows.filtered(lambda r: r.name == "RPT0000004")
        self.assertEqual(
            (review.state, review.reconcile_state), ("review", "exception")
        )

        # Totals by channel, and the payments-only view the action opens with.
        Report = self.env["mpesa.receipt.report"]
        domain = [("name", "in", self.codes)]
        by_channel = {
            channel: (count, amount)
            for channel, count, amount in Report._read_group(
                domain, ["channel"], ["__count", "amount:sum"]
            )
        }
        self.assertEqual(
            by_channel,
            {"c2b": (1, 1000), "stk": (1, 250), "import": (1, 30), "query": (1, 400)},
        )
        [(count, total, net)] = Report._read_group(
            domain + [("kind", "=", "payment")],
            [],
            ["receipt_count:sum", "amount:sum", "net_amount:sum"],
        )
        self.assertEqual((count, total, net), (3, 1650, 1650))
        [(net_all,)] = Report._read_group(domain, [], ["net_amount:sum"])
        self.assertEqual(net_all, 1620)

    def test_days_are_nairobi_days(self):
        """20:59 UTC is 23:59 in Nairobi, 21:01 UTC is 00:01 the next day."""
        self._add("RPTTZ00001", 100, datetime(2026, 3, 9, 20, 59))
        self._add("RPTTZ00002", 200, datetime(2026, 3, 9, 21, 1))
        self._add("RPTTZ00003", 300, datetime(2026, 3, 10, 20, 59, 59))
        Report = self.env["mpesa.receipt.report"]
        domain = [("name", "in", self.codes)]
        by_local_day = {
            str(day): amount
            for day, amount in Report._read_group(
                domain, ["local_date:day"], ["amount:sum"]
            )
        }
        self.assertEqual(by_local_day, {"2026-03-09": 100, "2026-03-10": 500})
        # The pivot's "Day" follows the user's time zone: in Nairobi the same split.
        by_day = {
            f"{day:%Y-%m-%d}": amount
            for day, amount in Report.with_context(tz="Africa/Nairobi")._read_group(
                domain, ["date:day"], ["amount:sum"]
            )
        }
        self.assertEqual(by_day, {"2026-03-09": 100, "2026-03-10": 500})
        # In UTC the first two are on the same day.
        by_utc_day = {
            f"{day:%Y-%m-%d}": amount
            for day, amount in Report.with_context(tz="UTC")._read_group(
                domain, ["date:day"], ["amount:sum"]
            )
        }
        self.assertEqual(by_utc_day, {"2026-03-09": 300, "2026-03-10": 300})

    def test_group_by_category_and_branch(self):
        paid = datetime(2026, 3, 10, 9, 0)
        # Invoice: first line Food, second Tools -> Food.
        invoice = self.init_invoice(
            "out_invoice",
            partner=self.partner,
            products=[self.product_a, self.product_b],
            currency=self.currency_kes,
            post=True,
        )
        # Order: first line Tools.
        order = self.env["sale.order"].create(
            {
                "partner_id": self.partner.id,
                "order_line": [
                    Command.create({"product_id": self.product_b.id, "price_unit": 70}),
                    Command.create({"product_id": self.product_a.id, "price_unit": 30}),
                ],
            }
        )
        # A push paying an order: the category comes through its transaction.
        tx = self._create_mpesa_tx(
            reference="RPT-TX-1", sale_order_ids=[Command.set(order.ids)]
        )
        self._add(
            "RPTCAT0001",
            500,
            paid,
            invoice_id=invoice.id,
            branch_id=self.branch_cbd.id,
        )
        self._add(
            "RPTCAT0002",
            100,
            paid,
            sale_order_id=order.id,
            branch_id=self.branch_cbd.id,
        )
        self._add(
            "RPTCAT0003",
            1250,
            paid,
            channel="stk",
            transaction_id=tx.id,
            branch_id=self.branch_msa.id,
        )
        self._add("RPTCAT0004", 40, paid)
        Report = self.env["mpesa.receipt.report"]
        domain = [("name", "in", self.codes)]
        by_categ = {
            categ.name: (count, amount)
            for categ, count, amount in Report._read_group(
                domain, ["categ_id"], ["__count", "amount:sum"]
            )
        }
        self.assertEqual(
            by_categ, {"Food": (1, 500), "Tools": (2, 1350), False: (1, 40)}
        )
        row = self._rows(codes=["RPTCAT0003"])
        self.assertEqual((row.sale_order_id, row.categ_id), (order, self.categ_tools))
        by_branch = {
            branch.name: amount
            for branch, amount in Report._read_group(
                domain, ["branch_id"], ["amount:sum"]
            )
        }
        self.assertEqual(by_branch, {"Nairobi CBD": 600, "Mombasa": 1250, False: 40})
        by_branch_categ = {
            (branch.name, categ.name): amount
            for branch, categ, amount in Report._read_group(
                domain, ["branch_id", "categ_id"], ["amount:sum"]
            )
        }
        self.assertEqual(by_branch_categ[("Nairobi CBD", "Food")], 500)
        self.assertEqual(by_branch_categ[("Nairobi CBD", "Tools")], 100)
        self.assertEqual(by_branch_categ[("Mombasa", "Tools")], 1250)

    def test_paybill_payment_through_the_emulator(self):
        """A real C2B payment of an invoice: applied, reconciled once processed."""
        invoice = self._invoice(750)
        receipt = self._c2b(invoice.name, 750)
        self._post_process(receipt)
        self.env.invalidate_all()
        row = self._rows(codes=[receipt.name])
        self.assertEqual(row.amount, 750)
        self.assertEqual(row.channel, "c2b")
        self.assertEqual(row.state, "applied")
        self.assertEqual(row.reconcile_state, "reconciled")
        self.assertEqual(row.invoice_id, invoice)
        self.assertEqual(row.partner_id, self.partner)
        self.assertEqual(row.date, receipt.paid_at)

    def test_access_follows_the_receipt_rules(self):
        paid = datetime(2026, 3, 10, 9, 0)
        self._add("RPTACC0001", 100, paid, branch_id=self.branch_cbd.id)
        self._add("RPTACC0002", 200, paid, branch_id=self.branch_msa.id)
        self._add("RPTACC0003", 300, paid, user_id=self.cashier.id)
        self._add("RPTACC0004", 400, paid, team_id=self.team.id)
        self._add("RPTACC0005", 500, paid)
        other = self._add("RPTACC0006", 600, paid, provider=self.mpesa_2)
        self.assertEqual(other.company_id, self.company_2)

        def visible(user):
            Report = self.env["mpesa.receipt.report"].with_user(user)
            return Report.search([("name", "in", self.codes)]).mapped("name")

        # Branch or own receipts for the cashier, the department's for the seller.
        self.assertEqual(sorted(visible(self.cashier)), ["RPTACC0001", "RPTACC0003"])
        self.assertEqual(visible(self.seller), ["RPTACC0004"])
        # Reconcilers: everything of their company, nothing of another one.
        self.assertEqual(
            sorted(visible(self.reconciler)), [f"RPTACC000{i}" for i in range(1, 6)]
        )
        self.assertEqual(visible(self.other_reconciler), ["RPTACC0006"])
        # Same rows as the ledger itself, and the totals follow.
        for user in (self.cashier, self.seller, self.reconciler, self.other_reconciler):
            ledger = (
                self.env["mpesa.receipt"]
                .with_user(user)
                .search([("name", "in", self.codes)])
            )
            self.assertEqual(sorted(visible(user)), sorted(ledger.mapped("name")))
        [(cashier_total,)] = (
            self.env["mpesa.receipt.report"]
            .with_user(self.cashier)
            ._read_group([("name", "in", self.codes)], [], ["amount:sum"])
        )
        self.assertEqual(cashier_total, 400)
        # No M-PESA group: no access at all.
        with self.assertRaises(AccessError):
            self.env["mpesa.receipt.report"].with_user(self.plain).search([])
        # Read-only for everybody.
        with self.assertRaises(AccessError):
            self.env["mpesa.receipt.report"].with_user(self.reconciler).create(
                {"name": "X"}
            )

    def test_ledger_indexes(self):
        self.env.cr.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'mpesa_receipt'"
        )
        definitions = [row[0] for row in self.env.cr.fetchall()]
        for columns in (
            "paid_at",
            "company_id",
            "reconcile_state",
            "branch_id",
            "channel",
            "kind",
            "company_id, paid_at",
        ):
            self.assertTrue(
                any(f"USING btree ({columns})" in d for d in definitions),
                f"no index on mpesa_receipt ({columns})",
            )
        self.env.cr.execute(
            "SELECT viewname FROM pg_views WHERE viewname = 'mpesa_receipt_report'"
        )
        self.assertEqual(self.env.cr.fetchall(), [("mpesa_receipt_report",)])
