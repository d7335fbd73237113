#!/usr/bin/env bash
# The whole test suite: lint, every addon's Odoo tests (Chromium tours included) on a
# fresh database, then the pytest tests under tests/. Ends with "N passed, N failed".
#   MPESA_TEST_DB   database to (re)create, default mpesa_test
#   MPESA_TEST_TAGS override odoo-bin --test-tags (quick local loops)
#   MPESA_TEST_ALONE_TAGS  tests run again with mpesa_payment alone (section 2b)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bash "$ROOT/setup/install.sh"
start_postgres

DB="${MPESA_TEST_DB:-mpesa_test}"
TEST_PORT="${MPESA_TEST_PORT:-8169}"
LOGS="$LOCAL/logs"; mkdir -p "$LOGS" "$LOCAL/screenshots"
ODOO_LOG="$LOGS/odoo-tests.log"
E2E="$ROOT/tests/odoo_addons"
MODULES="$OUR_ADDONS,mpesa_e2e"
TAGS="${MPESA_TEST_TAGS:-/mpesa_payment,/mpesa_reconciliation,/mpesa_reports,/mpesa_e2e}"
passed=0; failed=0; skipped=0

count() { passed=$((passed + $1)); failed=$((failed + $2)); skipped=$((skipped + ${3:-0})); }

# --- 1. Lint (each linter is one check) ----------------------------------------------
say "lint: ruff"
if "$VENV/bin/ruff" check "$ROOT" && "$VENV/bin/ruff" format --check --quiet "$ROOT"; then
    count 1 0; else count 0 1; echo "FAILED: ruff"; fi
say "lint: pylint-odoo"
addon_dirs=(); for a in ${OUR_ADDONS//,/ } mpesa_e2e; do
    [ -d "$ROOT/$a" ] && addon_dirs+=("$ROOT/$a") || addon_dirs+=("$E2E/$a"); done
if "$VENV/bin/pylint" --rcfile="$ROOT/.pylintrc" --disable=missing-readme "${addon_dirs[@]}"; then
    count 1 0; else count 0 1; echo "FAILED: pylint-odoo"; fi
say "lint: oca-odoo-pre-commit-hooks (module and .po checks)"
po_files=(); for d in "${addon_dirs[@]}"; do
    for f in "$d"/i18n/*.po "$d"/i18n/*.pot; do [ -f "$f" ] && po_files+=("$f"); done; done
if "$VENV/bin/oca-checks-odoo-module" "${addon_dirs[@]}" \
        && { [ ${#po_files[@]} -eq 0 ] || "$VENV/bin/oca-checks-po" "${po_files[@]}"; }; then
    count 1 0; else count 0 1; echo "FAILED: oca-odoo-pre-commit-hooks"; fi
say "lint: method length (no production method over 50 lines)"
if "$PY" "$ROOT/setup/method_length.py"; then
    count 1 0; else count 0 1; echo "FAILED: method length"; fi

# --- 2b. The one-message tests with mpesa_payment alone ------------------------------
# "One email per payment, whichever of our addons are installed": the same tests again
# on a small fresh database without mpesa_reconciliation and mpesa_reports (~2.5 min:
# installing, then Odoo builds the asset bundles before any HttpCase; the tests take
# seconds). It runs beside section 2, on the second core, on its own port. Skipped in
# quick loops (MPESA_TEST_TAGS set) unless MPESA_TEST_ALONE_TAGS is set;
# MPESA_TEST_ALONE_TAGS="" skips it always.
ALONE_DB="${DB}_alone"
ALONE_LOG="$LOGS/odoo-tests-alone.log"
flows="/mpesa_payment:TestProcessingFlows"
ALONE_DEFAULT="$flows.test_one_email_per_stk_payment_with_the_pdf_receipt"
ALONE_DEFAULT="$ALONE_DEFAULT,$flows.test_one_email_when_an_order_is_paid"
[ -n "${MPESA_TEST_TAGS:-}" ] && ALONE_DEFAULT=""
ALONE_TAGS="${MPESA_TEST_ALONE_TAGS-$ALONE_DEFAULT}"
alone_pid=""
if [ -n "$ALONE_TAGS" ]; then
    say "Odoo tests with mpesa_payment alone on $ALONE_DB, in the background (log: ${ALONE_LOG#"$ROOT"/})"
    dropdb --if-exists "$ALONE_DB"
    "$ODOO_BIN" -c "$LOCAL/odoo.conf" -d "$ALONE_DB" \
        --addons-path="$(cat "$LOCAL/odoo-src")/addons,$ROOT" \
        -i mpesa_payment --test-tags "$ALONE_TAGS" --stop-after-init \
        --http-port "$((TEST_PORT + 1))" --log-level=test --logfile "$ALONE_LOG" \
        --without-demo=all &
    alone_pid=$!
fi

# --- 2. Odoo tests on a fresh database ----------------------------------------------
say "Odoo tests on fresh database $DB (log: ${ODOO_LOG#"$ROOT"/})"
dropdb --if-exists "$DB"
set +e
"$ODOO_BIN" -c "$LOCAL/odoo.conf" -d "$DB" \
    --addons-path="$(cat "$LOCAL/odoo-src")/addons,$ROOT,$E2E" \
    -i "$MODULES" --test-tags "$TAGS" --stop-after-init \
    --http-port "$TEST_PORT" --screenshots "$LOCAL/screenshots" \
    --log-level=test --logfile "$ODOO_LOG" --without-demo=all
odoo_rc=$?
set -e
read -r o_pass o_fail o_skip < <("$PY" "$ROOT/setup/odoo_test_summary.py" "$ODOO_LOG" "$odoo_rc")
count "$o_pass" "$o_fail" "$o_skip"
say "Odoo tests: $o_pass passed, $o_fail failed, $o_skip skipped"

if [ -n "$alone_pid" ]; then
    set +e; wait "$alone_pid"; alone_rc=$?; set -e
    read -r a_pass a_fail a_skip < <("$PY" "$ROOT/setup/odoo_test_summary.py" \
        "$ALONE_LOG" "$alone_rc")
    count "$a_pass" "$a_fail" "$a_skip"
    say "Odoo tests, mpesa_payment alone: $a_pass passed, $a_fail failed, $a_skip skipped"
fi

# --- 3. pytest (emulator, setup, plain-Python units) ---------------------------------
say "pytest tests/"
junit="$LOGS/pytest.xml"
set +e
# tests/live copies the database the Odoo tests just used and runs a real multi-worker
# Odoo on it.
(cd "$ROOT" && MPESA_LIVE_TEMPLATE_DB="$DB" "$PY" -m pytest tests -q -p no:cacheprovider \
    --junitxml="$junit" --ignore=tests/odoo_addons)
py_rc=$?
set -e
read -r p_pass p_fail p_skip < <("$PY" "$ROOT/setup/junit_summary.py" "$junit" "$py_rc")
count "$p_pass" "$p_fail" "$p_skip"

echo
line="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
echo "$line"
[ "$failed" -eq 0 ]
