#!/usr/bin/env bash
# Check the M-PESA books of a database: every receipt once in the ledger and once in the
# journal, journal balance = M-PESA balance. Prints each difference; exits 1 if any.
#   ./setup/check_books.sh [database]     (default: the demo database)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DB="${1:-${MPESA_DEMO_DB:-mpesa_demo}}"
ODOO_SRC="$(cat "$LOCAL/odoo-src")"
# Odoo finds an addon's command only when --addons-path comes first.
exec "$PY" "$ODOO_SRC/odoo-bin" --addons-path="$ODOO_SRC/addons,$ROOT" mpesa-check-books \
    -c "$LOCAL/odoo.conf" -d "$DB"
