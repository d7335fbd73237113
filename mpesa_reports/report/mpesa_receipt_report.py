from odoo import api, fields, models, tools
from odoo.tools import SQL
from odoo.tools.sql import create_index, make_index_name

from odoo.addons.mpesa_payment.kenya_time import KENYA_TZ_NAME
from odoo.addons.mpesa_payment.models.mpesa_receipt import CHANNELS

from ..receipt_documents import first_document_sql

# Indexes on the receipts table that keep the analysis fast on millions of rows.
# Single columns use Odoo's own index names, so a column the ORM already indexes
# (index=True on the field) is not indexed twice.
RECEIPT_INDEXES = [
    ("paid_at",),
    ("company_id",),
    ("state",),
    ("reconcile_state",),
    ("branch_id",),
    ("team_id",),
    ("user_id",),
    ("partner_id",),
    ("channel",),
    ("kind",),
]
RECEIPT_COMPOSITE_INDEXES = {
    # A period of one company: every pivot and export starts with this filter.
    "mpesa_receipt_report_company_paid_at_index": ("company_id", "paid_at"),
}


class MpesaReceiptReport(models.Model):
    """M-PESA Analysis: one row per receipt of the M-PESA ledger, read-only.

    Product category: the category of the first product line (by sequence) of the
    invoice the receipt paid, else of its sales order (the receipt's own link first,
    then its transaction's). A receipt is never split over categories, so counts and
    amounts always add up to the ledger.
    """

    _name = "mpesa.receipt.report"
    _description = "M-PESA Analysis"
    _auto = False
    _rec_name = "name"
    _order = "date desc, id desc"

    receipt_id = fields.Many2one("mpesa.receipt", readonly=True)
    name = fields.Char(string="Receipt Code", readonly=True)
    date = fields.Datetime(string="Paid On", readonly=True)
    local_date = fields.Date(
        string="Day (Nairobi)",
        readonly=True,
        help="The day of the payment in Africa/Nairobi, whatever your time zone.",
    )
    currency_id = fields.Many2one("res.currency", readonly=True)
    amount = fields.Monetary(readonly=True)
    net_amount = fields.Monetary(
        readonly=True,
        help="Payments in count positive, charges and withdrawals negative.",
    )
    expected_amount = fields.Monetary(readonly=True)
    receipt_count = fields.Integer(string="# Receipts", readonly=True)
    kind = fields.Selection(selection="_selection_kind", readonly=True)
    state = fields.Selection(
        selection="_selection_state", string="Status", readonly=True
    )
    reconcile_state = fields.Selection(
        selection="_selection_reconcile_state",
        string="Reconciliation Status",
        readonly=True,
    )
    channel = fields.Selection(CHANNELS, readonly=True)
    recovered = fields.Boolean(readonly=True)
    categ_id = fields.Many2one(
        "product.category", string="Product Category", readonly=True
    )
    branch_id = fields.Many2one("mpesa.branch", readonly=True)
    team_id = fields.Many2one("crm.team", string="Department", readonly=True)
    user_id = fields.Many2one("res.users", string="Staff Owner", readonly=True)
    partner_id = fields.Many2one("res.partner", string="Customer", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    provider_id = fields.Many2one("payment.provider", readonly=True)
    shortcode = fields.Char(readonly=True)
    invoice_id = fields.Many2one("account.move", readonly=True)
    sale_order_id = fields.Many2one("sale.order", string="Sales Order", readonly=True)
    transaction_id = fields.Many2one("payment.transaction", readonly=True)

    def _selection_kind(self):
        return (
            self.env["mpesa.receipt"]._fields["kind"]._description_selection(self.env)
        )

    def _selection_state(self):
        return (
            self.env["mpesa.receipt"]._fields["state"]._description_selection(self.env)
        )

    def _selection_reconcile_state(self):
        field = self.env["mpesa.receipt"]._fields["reconcile_state"]
        return field._description_selection(self.env)

    # === SQL === #

    @api.model
    def _categ_sql(self):
        """Scalar subqueries: PostgreSQL only runs them when a query asks for the
        category (the view is flattened into the caller's query)."""
        return SQL(
            """COALESCE(
                (SELECT pt.categ_id
                   FROM account_move_line aml
                   JOIN product_product pp ON pp.id = aml.product_id
                   JOIN product_template pt ON pt.id = pp.product_tmpl_id
                  WHERE aml.move_id = %(invoice)s
                    AND aml.display_type = 'product'
                  ORDER BY aml.sequence, aml.id
                  LIMIT 1),
                (SELECT pt.categ_id
                   FROM sale_order_line sol
                   JOIN product_product pp ON pp.id = sol.product_id
                   JOIN product_template pt ON pt.id = pp.product_tmpl_id
                  WHERE sol.order_id = %(order)s
                    AND sol.display_type IS NULL
                  ORDER BY sol.sequence, sol.id
                  LIMIT 1)
            )""",
            invoice=first_document_sql(self.env, "invoice"),
            order=first_document_sql(self.env, "order"),
        )

    @api.model
    def _query(self):
        return SQL(
            """
            SELECT r.id AS id,
                   r.id AS receipt_id,
                   r.name AS name,
                   r.paid_at AS date,
                   (r.paid_at AT TIME ZONE 'UTC' AT TIME ZONE %(kenya)s)::date
                       AS local_date,
                   r.currency_id AS currency_id,
                   r.amount AS amount,
                   CASE WHEN r.kind = 'payment' THEN r.amount ELSE -r.amount END
                       AS net_amount,
                   r.expected_amount AS expected_amount,
                   1 AS receipt_count,
                   r.kind AS kind,
                   r.state AS state,
                   r.reconcile_state AS reconcile_state,
                   r.channel AS channel,
                   COALESCE(r.recovered, FALSE) AS recovered,
                   %(categ)s AS categ_id,
                   r.branch_id AS branch_id,
                   r.team_id AS team_id,
                   r.user_id AS user_id,
                   r.partner_id AS partner_id,
                   r.company_id AS company_id,
                   r.provider_id AS provider_id,
                   r.shortcode AS shortcode,
                   %(invoice)s AS invoice_id,
                   %(order)s AS sale_order_id,
                   r.transaction_id AS transaction_id
              FROM mpesa_receipt r
            """,
            kenya=KENYA_TZ_NAME,
            categ=self._categ_sql(),
            invoice=first_document_sql(self.env, "invoice"),
            order=first_document_sql(self.env, "order"),
        )

    def init(self):
        """Override of the ORM to create the receipts' indexes the analysis reads and the
        SQL view itself."""
        cr = self.env.cr
        for columns in RECEIPT_INDEXES:
            create_index(
                cr,
                make_index_name("mpesa_receipt", columns[0]),
                "mpesa_receipt",
                list(columns),
            )
        for name, columns in RECEIPT_COMPOSITE_INDEXES.items():
            create_index(cr, name, "mpesa_receipt", list(columns))
        tools.drop_view_if_exists(cr, self._table)
        cr.execute(
            SQL(
                "CREATE OR REPLACE VIEW %s AS (%s)",
                SQL.identifier(self._table),
                self._query(),
            )
        )

    def action_open_receipt(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "mpesa.receipt",
            "res_id": self.receipt_id.id,
            "view_mode": "form",
        }
