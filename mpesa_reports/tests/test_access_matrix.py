from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import HttpCase, new_test_user, tagged

OUR_MODULES = ("mpesa_payment", "mpesa_reconciliation", "mpesa_reports")

R, W, C, U = "read", "write", "create", "unlink"
OPERATIONS = (R, W, C, U)
ALL = {R, W, C, U}
WIZARD = {R, W, C}  # a transient model its users fill in but never delete

# The roles, from the outside in.
PUBLIC = "public user"
PORTAL = "portal customer"
INTERNAL = "internal user without M-PESA groups"
USER = "M-PESA user"
RECONCILER = "reconciler"
MANAGER = "manager"
ADMIN = "admin (settings + M-PESA manager, like base.user_admin)"
OTHER_CO = "reconciler of another company"
ROLES = (PUBLIC, PORTAL, INTERNAL, USER, RECONCILER, MANAGER, ADMIN, OTHER_CO)

# Who may do what on every model our addons define (a role left out may do nothing).
# Model level; at record level the same holds on a record of the company that the
# M-PESA user owns and the portal customer paid, except that the reconciler of another
# company is refused everything (multi-company record rules).
EXPECTED = {
    # Raw Daraja payloads: admins only; managers look.
    "mpesa.callback": {MANAGER: {R}, ADMIN: ALL},
    # The ledger: portal customers see their own, staff their own/branch/department,
    # reconcilers all; only reconcilers mark them; nobody but admins creates/deletes.
    "mpesa.receipt": {
        PORTAL: {R},
        USER: {R},
        RECONCILER: {R, W},
        MANAGER: {R, W},
        ADMIN: ALL,
        OTHER_CO: {R, W},
    },
    "mpesa.api.request": {
        USER: {R},
        RECONCILER: {R},
        MANAGER: {R},
        ADMIN: ALL,
        OTHER_CO: {R},
    },
    "mpesa.receipt.lookup": {
        USER: WIZARD,
        RECONCILER: WIZARD,
        MANAGER: WIZARD,
        ADMIN: WIZARD,
        OTHER_CO: WIZARD,
    },
    # The queue: M-PESA's answers and the money path open exceptions (as superuser);
    # reconcilers work them through their actions, nobody opens one by hand.
    "mpesa.exception": {
        USER: {R},
        RECONCILER: {R, W},
        MANAGER: ALL,
        ADMIN: ALL,
        OTHER_CO: {R, W},
    },
    "mpesa.match.suggestion": {
        RECONCILER: {R},
        MANAGER: {R},
        ADMIN: {R},
        OTHER_CO: {R},
    },
    "mpesa.branch": {
        USER: {R},
        RECONCILER: {R},
        MANAGER: ALL,
        ADMIN: ALL,
        OTHER_CO: {R},
    },
    "mpesa.statement.import": {
        RECONCILER: WIZARD,
        MANAGER: WIZARD,
        ADMIN: WIZARD,
        OTHER_CO: WIZARD,
    },
    "mpesa.exception.allocate": {
        RECONCILER: WIZARD,
        MANAGER: WIZARD,
        ADMIN: WIZARD,
        OTHER_CO: WIZARD,
    },
    "mpesa.exception.allocate.line": {
        RECONCILER: ALL,
        MANAGER: ALL,
        ADMIN: ALL,
        OTHER_CO: ALL,
    },
    "mpesa.exception.dismiss": {
        RECONCILER: WIZARD,
        MANAGER: WIZARD,
        ADMIN: WIZARD,
        OTHER_CO: WIZARD,
    },
    # The analysis (SQL view) follows the ledger's read rules, read-only.
    "mpesa.receipt.report": {
        USER: {R},
        RECONCILER: {R},
        MANAGER: {R},
        ADMIN: {R},
        OTHER_CO: {R},
    },
    "mpesa.export": {
        RECONCILER: WIZARD,
        MANAGER: WIZARD,
        ADMIN: WIZARD,
        OTHER_CO: WIZARD,
    },
    "mpesa.daily.summary": {
        RECONCILER: WIZARD,
        MANAGER: WIZARD,
        ADMIN: WIZARD,
        OTHER_CO: WIZARD,
    },
    # Staff payment requests: users their own and their branch's (record rules),
    # reconcilers and managers all; only managers delete.
    "mpesa.collection": {
        USER: {R, W, C},
        RECONCILER: {R, W, C},
        MANAGER: ALL,
        ADMIN: ALL,
        OTHER_CO: {R, W, C},
    },
    # The prompt limits' counters and locks: written by the push as superuser.
    "mpesa.push.attempt": {MANAGER: {R}, ADMIN: {R}},
    "mpesa.push.lock": {ADMIN: {R}},
    # Dynamic QR images Daraja made for documents: printed as superuser; admins look.
    "mpesa.qr.code": {ADMIN: {R}},
    # Sending an overpayment back by B2C (money out): managers only.
    "mpesa.exception.return": {MANAGER: WIZARD, ADMIN: WIZARD},
    # Abstract (no table, no access rules): its methods read as the current user.
    "mpesa.dashboard": {},
    "mpesa.payable.mixin": {},
    "mpesa.account.choice.mixin": {},
}

# Concrete records the rules must keep apart: (record, role, operation, allowed).
RECORD_CASES = [
    ("other_customer_receipt", PORTAL, R, False),
    ("other_customer_receipt", USER, R, False),  # not theirs, not their branch
    ("other_customer_receipt", RECONCILER, R, True),
    ("other_company_receipt", RECONCILER, R, False),
    ("other_company_receipt", MANAGER, R, False),
    ("other_company_receipt", OTHER_CO, R, True),
    ("other_company_receipt", OTHER_CO, W, True),
]


@tagged("post_install", "-at_install")
class TestAccessMatrix(HttpCase):
    """Who may read, create, write and delete every M-PESA model, and which records."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        company = env.company
        cls.other_company = env["res.company"].create({"name": "Other M-PESA Co"})
        cls.branch = env["mpesa.branch"].create({"name": "ACL Branch"})

        def user(login, groups, company=company):
            return new_test_user(
                env,
                login,
                groups=groups,
                company_id=company.id,
                company_ids=[Command.set(company.ids)],
            )

        cls.users = {
            PUBLIC: env.ref("base.public_user"),
            PORTAL: user("acl_portal", "base.group_portal"),
            INTERNAL: user("acl_internal", "base.group_user"),
            USER: user("acl_user", "mpesa_payment.group_mpesa_user"),
            RECONCILER: user(
                "acl_reconciler", "mpesa_reconciliation.group_mpesa_reconciler"
            ),
            MANAGER: user("acl_manager", "mpesa_payment.group_mpesa_manager"),
            ADMIN: user(
                "acl_admin", "base.group_system,mpesa_payment.group_mpesa_manager"
            ),
            OTHER_CO: user(
                "acl_other_co",
                "mpesa_reconciliation.group_mpesa_reconciler",
                company=cls.other_company,
            ),
        }
        cls.users[USER].mpesa_branch_ids = cls.branch
        cls.customer = cls.users[PORTAL].partner_id
        cls.other_customer = env["res.partner"].create({"name": "Another Customer"})

        provider = env["payment.provider"].create(
            {"name": "M-PESA ACL", "code": "mpesa", "company_id": company.id}
        )
        Receipt = env["mpesa.receipt"]
        common = {"provider_id": provider.id, "shortcode": "174379", "amount": 100}
        cls.receipt = Receipt.create(
            {
                **common,
                "name": "QACLOWN001",
                "partner_id": cls.customer.id,
                "user_id": cls.users[USER].id,
                "branch_id": cls.branch.id,
            }
        )
        cls.other_customer_receipt = Receipt.create(
            {**common, "name": "QACLOTHER1", "partner_id": cls.other_customer.id}
        )
        cls.other_company_receipt = Receipt.create(
            {**common, "name": "QACLOTHCO1", "company_id": cls.other_company.id}
        )
        journal = env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", company.id)], limit=1
        ) or env["account.journal"].create(
            {
                "name": "ACL Bank",
                "type": "bank",
                "code": "ACLB",
                "company_id": company.id,
            }
        )
        statement_line = env["account.bank.statement.line"].create(
            {"journal_id": journal.id, "amount": 100, "payment_ref": "QACLOWN001"}
        )
        env.flush_all()
        # One record of the company per persistent model.
        cls.records = {
            "mpesa.callback": env["mpesa.callback"].create(
                {"kind": "c2b_confirmation", "company_id": company.id}
            ),
            "mpesa.receipt": cls.receipt,
            # A status request about the M-PESA user's receipt: balance requests
            # are for reconcilers and managers only, and a user sees only the
            # requests of their receipts (mpesa_reconciliation's test_roles).
            "mpesa.api.request": env["mpesa.api.request"].create(
                {
                    "kind": "status",
                    "provider_id": provider.id,
                    "receipt_id": cls.receipt.id,
                }
            ),
            "mpesa.exception": env["mpesa.exception"].create(
                {"kind": "underpaid", "receipt_id": cls.receipt.id}
            ),
            "mpesa.match.suggestion": env["mpesa.match.suggestion"].create(
                {
                    "statement_line_id": statement_line.id,
                    "res_model": "account.move",
                    "res_id": 1,
                    "name": "INV/ACL/0001",
                }
            ),
            "mpesa.branch": cls.branch,
        }
        env.flush_all()
        cls.records["mpesa.receipt.report"] = env["mpesa.receipt.report"].search(
            [("receipt_id", "=", cls.receipt.id)]
        )

    def _our_models(self):
        """Every model (persistent, transient or abstract) one of our addons defines."""
        xmlids = self.env["ir.model.data"].search(
            [("model", "=", "ir.model"), ("module", "in", OUR_MODULES)]
        )
        names = self.env["ir.model"].browse(xmlids.mapped("res_id")).mapped("model")
        return {
            name
            for name in names
            if name in self.env and self.env[name]._original_module in OUR_MODULES
        }

    def _record_allowed(self, record, operation):
        try:
            if operation == R:
                record.read(["display_name"])
            else:
                # write/unlink/create are not performed: the same ACL + record rules
                # check, without the side effects of the business methods.
                record.check_access(operation)
        except AccessError:
            return False
        return True

    def test_matrix_covers_every_model(self):
        self.assertEqual(
            self._our_models(),
            set(EXPECTED),
            "every model of our addons must have a row in EXPECTED (and only those)",
        )
        self.assertTrue(self.env["mpesa.dashboard"]._abstract)

    def test_model_access(self):
        for model, cells in EXPECTED.items():
            for role in ROLES:
                Model = self.env[model].with_user(self.users[role])
                allowed = cells.get(role, set())
                for operation in OPERATIONS:
                    with self.subTest(model=model, role=role, operation=operation):
                        self.assertEqual(
                            Model.has_access(operation),
                            operation in allowed,
                            f"{model} / {role} / {operation}: expected "
                            f"{'allowed' if operation in allowed else 'refused'}",
                        )

    def test_record_access(self):
        for model, record in self.records.items():
            self.assertEqual(len(record), 1, model)
            for role in ROLES:
                allowed = EXPECTED[model].get(role, set())
                if role == OTHER_CO:
                    allowed = set()  # another company's record
                for operation in OPERATIONS:
                    with self.subTest(model=model, role=role, operation=operation):
                        self.assertEqual(
                            self._record_allowed(
                                record.with_user(self.users[role]), operation
                            ),
                            operation in allowed,
                            f"{model},{record.id} / {role} / {operation}: expected "
                            f"{'allowed' if operation in allowed else 'refused'}",
                        )
        for name, role, operation, allowed in RECORD_CASES:
            record = getattr(self, name).with_user(self.users[role])
            with self.subTest(record=name, role=role, operation=operation):
                self.assertEqual(
                    self._record_allowed(record, operation),
                    allowed,
                    f"mpesa.receipt {name} / {role} / {operation}: expected "
                    f"{'allowed' if allowed else 'refused'}",
                )

    def _forged_value(self, record, fname):
        """A plausible new value for a field: what a forger would write."""
        field = record._fields[fname]
        if field.type == "many2one":
            other = self.env[field.comodel_name].search(
                [("id", "!=", record[fname].id)], limit=1
            )
            return other.id
        if field.type in ("monetary", "float", "integer"):
            return (record[fname] or 0) + 1
        if field.type == "datetime":
            return "2020-01-01 00:00:00"
        if field.type == "selection":
            values = [v for v, _l in field._description_selection(self.env)]
            return next(v for v in values if v != record[fname])
        return "FORGED0010"

    def test_money_fields_written_by_every_role_are_refused(self):
        """Issue 11, finding 4: readonly in a view stops nobody calling write() over
        RPC. Every money field of the ledger (on the customer's own receipt, another
        customer's, another company's) and of an M-PESA transaction, written as
        every role: refused, and nothing changed. The assignment fields stay
        writable by those who assign."""
        receipts = (
            self.receipt,
            self.other_customer_receipt,
            self.other_company_receipt,
        )
        money = sorted(self.receipt._money_fields)
        before = {r: r.read(money)[0] for r in receipts}
        tx = self.env["payment.transaction"].create(
            {
                "provider_id": self.receipt.provider_id.id,
                "payment_method_id": self.env.ref("payment.payment_method_mpesa").id,
                "amount": 100,
                "currency_id": self.env.ref("base.KES").id,
                "partner_id": self.customer.id,
                "reference": "ACL-MONEY-TX",
            }
        )
        tx_money = sorted(tx._mpesa_money_fields)
        tx_before = tx.read(tx_money)[0]
        # Billing users may write payment transactions in core: one of them too.
        billing = new_test_user(
            self.env, "acl_billing", groups="account.group_account_invoice"
        )
        writers = [*(self.users[role] for role in ROLES), billing]
        for user in writers:
            for record, fnames in [*((r, money) for r in receipts), (tx, tx_money)]:
                for fname in fnames:
                    value = self._forged_value(record, fname)
                    with (
                        self.subTest(user=user.login, record=record, field=fname),
                        self.assertRaises(AccessError),
                    ):
                        record.with_user(user).write({fname: value})
        self.env.invalidate_all()
        for receipt in receipts:
            self.assertEqual(receipt.read(money)[0], before[receipt])
        self.assertEqual(tx.read(tx_money)[0], tx_before)
        # Assigning a payment to a branch or a salesperson is not money.
        manager = self.users[MANAGER]
        self.receipt.with_user(manager).write({"branch_id": self.branch.id})
        self.assertEqual(self.receipt.branch_id, self.branch)

    def test_portal_pages(self):
        anonymous = self.url_open("/my/mpesa", allow_redirects=False)
        self.assertIn(anonymous.status_code, (302, 303), "public: /my/mpesa")
        self.assertIn("/web/login", anonymous.headers["Location"])

        portal = self.users[PORTAL]
        self.authenticate(portal.login, portal.login)
        page = self.url_open("/my/mpesa")
        self.assertEqual(page.status_code, 200, "portal customer: /my/mpesa")
        self.assertIn("QACLOWN001", page.text, "portal customer: own receipt listed")
        self.assertNotIn("QACLOTHER1", page.text, "portal: other customer's receipt")
        self.assertNotIn("QACLOTHCO1", page.text, "portal: other company's receipt")
        for receipt in (self.other_customer_receipt, self.other_company_receipt):
            response = self.url_open(f"/my/mpesa/{receipt.id}/receipt")
            self.assertEqual(
                response.status_code, 404, f"portal: /my/mpesa/{receipt.id}/receipt"
            )
