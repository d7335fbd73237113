"""The documents an M-PESA receipt pays, in SQL: its own invoice (or order) link, else
those of its transaction. One home for the rule the analysis view and the dashboard's
by-product figures both read."""

from odoo.tools import SQL

# (receipt column, payment.transaction many2many) of each kind of document.
DOCUMENT_LINKS = {
    "invoice": ("invoice_id", "invoice_ids"),
    "order": ("sale_order_id", "sale_order_ids"),
}


def _transaction_rel(env, kind):
    """(table, transaction column, document column) of the transaction's link."""
    rel = env["payment.transaction"]._fields[DOCUMENT_LINKS[kind][1]]
    return (
        SQL.identifier(rel.relation),
        SQL.identifier(rel.column1),
        SQL.identifier(rel.column2),
    )


def first_document_sql(env, kind, alias="r"):
    """A scalar: the receipt's own document, else its transaction's first one."""
    table, tx_col, doc_col = _transaction_rel(env, kind)
    own = SQL.identifier(alias, DOCUMENT_LINKS[kind][0])
    return SQL(
        """COALESCE(%(own)s, (
            SELECT rel.%(doc_col)s FROM %(table)s rel
             WHERE rel.%(tx_col)s = %(tx)s
             ORDER BY rel.%(doc_col)s LIMIT 1))""",
        own=own,
        doc_col=doc_col,
        table=table,
        tx_col=tx_col,
        tx=SQL.identifier(alias, "transaction_id"),
    )


def linked_documents_sql(env, kind, source="rec"):
    """Rows (receipt_id, document_id) of every document the receipts in ``source`` (a
    CTE with id, transaction_id and the receipt's own link) pay."""
    table, tx_col, doc_col = _transaction_rel(env, kind)
    own = SQL.identifier(source, DOCUMENT_LINKS[kind][0])
    return SQL(
        """SELECT %(src)s.id AS receipt_id, %(own)s AS document_id
             FROM %(src)s WHERE %(own)s IS NOT NULL
            UNION
           SELECT %(src)s.id, rel.%(doc_col)s
             FROM %(src)s
             JOIN %(table)s rel ON rel.%(tx_col)s = %(src)s.transaction_id
            WHERE %(own)s IS NULL""",
        src=SQL.identifier(source),
        own=own,
        doc_col=doc_col,
        table=table,
        tx_col=tx_col,
    )
