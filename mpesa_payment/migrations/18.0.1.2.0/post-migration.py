"""mpesa.receipt's Seen By was a Char, ``channels``, holding the channels that reported
a receipt as a sorted comma-separated list ("c2b,stk"). It is now one stored flag per
channel (seen_by_stk, seen_by_c2b, seen_by_query, seen_by_import), which Odoo has
added as empty columns by now: fill them from the old column, which Odoo leaves in
the table, then drop it."""

from odoo.tools import SQL

# The channels when ``channels`` was dropped: a migration does not follow later
# changes to the model's list.
CHANNELS = ("stk", "c2b", "query", "import")


def migrate(cr, version):
    cr.execute(
        """SELECT 1 FROM information_schema.columns
            WHERE table_name = 'mpesa_receipt' AND column_name = 'channels'"""
    )
    if not cr.fetchone():
        return
    # The first channel (``channel``) saw the receipt too, were it missing from the
    # list; NULL is written FALSE.
    flags = SQL(", ").join(
        SQL(
            "%s = COALESCE(channel = %s OR %s = ANY(string_to_array(channels, ',')),"
            " FALSE)",
            SQL.identifier(f"seen_by_{code}"),
            code,
            code,
        )
        for code in CHANNELS
    )
    cr.execute(SQL("UPDATE mpesa_receipt SET %s", flags))
    cr.execute("ALTER TABLE mpesa_receipt DROP COLUMN channels")
