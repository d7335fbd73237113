#!/usr/bin/env bash
# The benchmarks (issue 15): builds its own database, runs every benchmark against its
# anchor measured in the same run, prints each figure with its ratio and target, and
# writes tests/bench/RESULTS.md. Not part of ./setup/test.sh. Takes about an hour on
# 2 cores at the default sizes. See tests/bench/README.md.
#   MPESA_BENCH_DB       database to (re)build, default mpesa_bench (copies: <db>_*)
#   BENCH_SECTIONS       which benchmarks: callbacks,matching,import,reports (all)
#   BENCH_QUICK=1        small sizes, to try the command out (a few minutes)
#   BENCH_ADDONS_ROOT    read our addons from there instead (e.g. an export of a commit)
#   BENCH_PORT           HTTP port of the 4-worker Odoo, default 8306
#   sizes: BENCH_SENDERS, BENCH_CALLBACKS, BENCH_BOOKS, BENCH_MATCH_SIZES,
#          BENCH_OCA_SAMPLE, BENCH_IMPORT_SIZES, BENCH_IMPORT_FULL, BENCH_LEDGER_SIZES
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bash "$ROOT/setup/install.sh"
start_postgres
# The import benchmark's anchor: OCA's sheet import, from PyPI like our other OCA addons.
"$PY" -m pip install -q --disable-pip-version-check \
    "odoo-addon-account_statement_import_sheet_file>=18.0,<18.1"

DB="${MPESA_BENCH_DB:-mpesa_bench}"
ADDONS="${BENCH_ADDONS_ROOT:-$ROOT}"
LOGS="$LOCAL/logs"; mkdir -p "$LOGS"
say "building benchmark database $DB (log: $LOGS/bench-install.log)"
dropdb --if-exists --force "$DB"
"$ODOO_BIN" -c "$LOCAL/odoo.conf" -d "$DB" \
    --addons-path="$(cat "$LOCAL/odoo-src")/addons,$ADDONS,$ADDONS/tests/odoo_addons" \
    -i "$OUR_ADDONS,payment_demo,account_reconcile_model_oca,account_statement_import_sheet_file" \
    --without-demo=all --stop-after-init --no-http --logfile "$LOGS/bench-install.log"

cd "$ROOT"
exec "$PY" tests/bench/run_bench.py "$DB"
