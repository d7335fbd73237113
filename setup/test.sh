#!/usr/bin/env bash
# The whole test suite: lint, every addon's Odoo tests (Chromium tours included) on a
# fresh database, the pytest tests under tests/. Two cores: the Odoo tests take one for
# most of the run, everything else runs beside them on the other. Ends with
# "N passed, N failed".
#   MPESA_TEST_DB   database to (re)create, default mpesa_test
#   MPESA_TEST_TAGS override odoo-bin --test-tags (quick local loops)
#   MPESA_TEST_ALONE_TAGS  tests run again with mpesa_payment alone (section 3a)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bash "$ROOT/setup/install.sh"
start_postgres

DB="${MPESA_TEST_DB:-mpesa_test}"
TEST_PORT="${MPESA_TEST_PORT:-8169}"
LOGS="$LOCAL/logs"; mkdir -p "$LOGS" "$LOCAL/screenshots"
ODOO_LOG="$LOGS/odoo-tests.log"
BESIDE_LOG="$LOGS/beside.log"
RESULTS="$LOGS/beside.results"   # "passed failed skipped what" per step of section 3
E2E="$ROOT/tests/odoo_addons"
MODULES="$OUR_ADDONS,mpesa_e2e"
ADDONS_PATH="$(cat "$LOCAL/odoo-src")/addons,$ROOT,$E2E"
# Long Odoo test classes without a browser: they run beside the others (section 3c), on
# the copy of the test database tests/live starts from, so that both cores end together.
BESIDE_CLASSES="/mpesa_reconciliation:TestMoneyProperties,/mpesa_payment:TestPayloadFuzz"
BESIDE_CLASSES="$BESIDE_CLASSES,/mpesa_payment:TestRouteFuzz"
BESIDE_CLASSES="$BESIDE_CLASSES,/mpesa_reconciliation:TestStatementMemory"
BESIDE_CLASSES="$BESIDE_CLASSES,/mpesa_reconciliation:TestStatementFuzz"
BESIDE_CLASSES="$BESIDE_CLASSES,/mpesa_reconciliation:TestRefunds,/mpesa_reconciliation:TestBranches"
if [ -n "${MPESA_TEST_TAGS:-}" ]; then
    TAGS="$MPESA_TEST_TAGS"; BESIDE_TAGS=""
else
    TAGS="/mpesa_payment,/mpesa_reconciliation,/mpesa_reports,/mpesa_e2e"
    TAGS="$TAGS,-${BESIDE_CLASSES//,/,-}"
    BESIDE_TAGS="$BESIDE_CLASSES"
fi
LIVE_DB="${DB}_live"
RESTART_TEST="tests/live/test_live_faults.py::test_postgresql_restarted_during_a_burst"
passed=0; failed=0; skipped=0

count() { passed=$((passed + $1)); failed=$((failed + $2)); skipped=$((skipped + ${3:-0})); }
odoo() { "$ODOO_BIN" -c "$LOCAL/odoo.conf" --log-level=test --without-demo=all "$@"; }
result() { echo "$*" >> "$RESULTS"; }  # passed failed skipped what
odoo_summary() { "$PY" "$ROOT/setup/odoo_test_summary.py" "$1" "$2"; }
run_pytest() {  # junit file, then pytest's arguments
    local junit="$1"; shift
    (cd "$ROOT" && MPESA_LIVE_TEMPLATE_DB="$LIVE_DB" "$PY" -m pytest -q \
        -p no:cacheprovider --junitxml="$junit" "$@")
}

# --- 1. Lint (each linter is one check) ----------------------------------------------
lint() {
    local addon_dirs=() po_files=() a d f
    say "lint: ruff"
    if "$VENV/bin/ruff" check "$ROOT" && "$VENV/bin/ruff" format --check --quiet "$ROOT"
    then result 1 0 0 ruff; else result 0 1 0 ruff; fi
    say "lint: pylint-odoo"
    for a in ${OUR_ADDONS//,/ } mpesa_e2e; do
        [ -d "$ROOT/$a" ] && addon_dirs+=("$ROOT/$a") || addon_dirs+=("$E2E/$a"); done
    if "$VENV/bin/pylint" --rcfile="$ROOT/.pylintrc" --disable=missing-readme \
        "${addon_dirs[@]}"
    then result 1 0 0 pylint-odoo; else result 0 1 0 pylint-odoo; fi
    say "lint: oca-odoo-pre-commit-hooks (module and .po checks)"
    for d in "${addon_dirs[@]}"; do
        for f in "$d"/i18n/*.po "$d"/i18n/*.pot; do [ -f "$f" ] && po_files+=("$f"); done
    done
    if "$VENV/bin/oca-checks-odoo-module" "${addon_dirs[@]}" \
        && { [ ${#po_files[@]} -eq 0 ] || "$VENV/bin/oca-checks-po" "${po_files[@]}"; }
    then result 1 0 0 oca-odoo-pre-commit-hooks
    else result 0 1 0 oca-odoo-pre-commit-hooks; fi
    say "lint: method length (no production method over 50 lines)"
    if "$PY" "$ROOT/setup/method_length.py"
    then result 1 0 0 method length; else result 0 1 0 method length; fi
}

# --- 3. Beside the Odoo tests, on the second core, one after the other ---------------
beside_odoo_tests() {
    set +e  # each step runs whatever the one before it gave
    lint
    # a. "One email per payment, whichever of our addons are installed": the one-message
    #    tests again on a small fresh database without mpesa_reconciliation and
    #    mpesa_reports (~2.5 min, nearly all of it installing and building asset
    #    bundles). Skipped in quick loops (MPESA_TEST_TAGS set) unless
    #    MPESA_TEST_ALONE_TAGS is set; MPESA_TEST_ALONE_TAGS="" skips it always.
    if [ -n "$ALONE_TAGS" ]; then
        say "Odoo tests with mpesa_payment alone on $ALONE_DB (log: ${ALONE_LOG#"$ROOT"/})"
        dropdb --if-exists "$ALONE_DB"
        odoo -d "$ALONE_DB" --addons-path="$(cat "$LOCAL/odoo-src")/addons,$ROOT" \
            -i mpesa_payment --test-tags "$ALONE_TAGS" --stop-after-init \
            --http-port "$((TEST_PORT + 1))" --logfile "$ALONE_LOG"
        rc=$?
        result "$(odoo_summary "$ALONE_LOG" $rc)" Odoo tests, mpesa_payment alone
    fi
    # b. The copy of the test database that tests/live starts from (section 2 makes it).
    while [ ! -e "$LOGS/installed" ]; do kill -0 $$ 2>/dev/null || return; sleep 2; done
    [ "$(cat "$LOGS/installed")" = 0 ] || return
    # c. The Odoo test classes that run beside the others, on that copy (rolled back).
    if [ -n "$BESIDE_TAGS" ]; then
        say "Odoo tests $BESIDE_TAGS on $LIVE_DB (log: ${BESIDE_ODOO_LOG#"$ROOT"/})"
        odoo -d "$LIVE_DB" --addons-path="$ADDONS_PATH" --test-tags "$BESIDE_TAGS" \
            --stop-after-init --http-port "$((TEST_PORT + 2))" --logfile "$BESIDE_ODOO_LOG"
        rc=$?
        result "$(odoo_summary "$BESIDE_ODOO_LOG" $rc)" Odoo tests beside
    fi
    # d. pytest on tests/: the emulator, tests/live (a real multi-worker Odoo on a copy
    #    of $LIVE_DB), the Odoo test summary; all but the PostgreSQL restart test.
    say "pytest tests/ (all but $RESTART_TEST)"
    run_pytest "$LOGS/pytest.xml" tests --ignore=tests/odoo_addons --deselect "$RESTART_TEST"
    rc=$?
    result "$("$PY" "$ROOT/setup/junit_summary.py" "$LOGS/pytest.xml" $rc)" pytest
}
ALONE_DB="${DB}_alone"
ALONE_LOG="$LOGS/odoo-tests-alone.log"
BESIDE_ODOO_LOG="$LOGS/odoo-tests-beside.log"
flows="/mpesa_payment:TestProcessingFlows"
ALONE_DEFAULT="$flows.test_one_email_per_stk_payment_with_the_pdf_receipt"
ALONE_DEFAULT="$ALONE_DEFAULT,$flows.test_one_email_when_an_order_is_paid"
[ -n "${MPESA_TEST_TAGS:-}" ] && ALONE_DEFAULT=""
ALONE_TAGS="${MPESA_TEST_ALONE_TAGS-$ALONE_DEFAULT}"
# Odoo appends to its log file: each run starts its logs afresh.
rm -f "$RESULTS" "$LOGS/installed" "$ODOO_LOG" "$ALONE_LOG" "$BESIDE_ODOO_LOG"
say "lint, then tests beside the Odoo tests, on the second core (log: ${BESIDE_LOG#"$ROOT"/})"
beside_odoo_tests > "$BESIDE_LOG" 2>&1 &
beside_pid=$!

# --- 2. Odoo tests on a fresh database ----------------------------------------------
# Installed first without tests (every test class is post_install), so that a copy of
# the fresh database can serve tests/live, then tested. Both write the one log (Odoo
# appends): what Odoo logs as an error while installing fails the run, as before.
say "installing $MODULES in fresh database $DB (log: ${ODOO_LOG#"$ROOT"/})"
dropdb --if-exists "$DB"
dropdb --if-exists "$LIVE_DB"
set +e
odoo -d "$DB" --addons-path="$ADDONS_PATH" -i "$MODULES" --stop-after-init --no-http \
    --logfile "$ODOO_LOG"
install_rc=$?
if [ "$install_rc" = 0 ]; then
    install_rc=1
    for attempt in 1 2 3 4 5; do  # Odoo's last connections may still be closing
        createdb -T "$DB" "$LIVE_DB" && { install_rc=0; break; }
        sleep "$attempt"
    done
    rm -rf "$LOCAL/filestore/filestore/$LIVE_DB"
    [ -d "$LOCAL/filestore/filestore/$DB" ] \
        && cp -r "$LOCAL/filestore/filestore/$DB" "$LOCAL/filestore/filestore/$LIVE_DB"
fi
echo "$install_rc" > "$LOGS/installed"
set -e
if [ "$install_rc" != 0 ]; then
    count 0 1; echo "FAILED: installing $MODULES (see ${ODOO_LOG#"$ROOT"/})"
else
    say "Odoo tests on $DB (log: ${ODOO_LOG#"$ROOT"/})"
    set +e
    odoo -d "$DB" --addons-path="$ADDONS_PATH" --test-tags "$TAGS" --stop-after-init \
        --http-port "$TEST_PORT" --screenshots "$LOCAL/screenshots" --logfile "$ODOO_LOG"
    odoo_rc=$?
    set -e
    read -r o_pass o_fail o_skip < <(odoo_summary "$ODOO_LOG" "$odoo_rc")
    count "$o_pass" "$o_fail" "$o_skip"
    say "Odoo tests: $o_pass passed, $o_fail failed, $o_skip skipped"
fi

set +e; wait "$beside_pid"; set -e
cat "$BESIDE_LOG"
while read -r b_pass b_fail b_skip what; do
    if [[ ! "$b_pass $b_fail $b_skip" =~ ^[0-9]+\ [0-9]+\ [0-9]+$ ]]; then
        count 0 1; echo "FAILED: unreadable result: $b_pass $b_fail $b_skip $what"; continue
    fi
    count "$b_pass" "$b_fail" "$b_skip"
    say "$what: $b_pass passed, $b_fail failed, $b_skip skipped"
done < <(cat "$RESULTS" 2>/dev/null)
# A step that never said how it ended (the job beside died) is a failure.
expected=("ruff" "method length")
[ "$install_rc" = 0 ] && expected+=("pytest")
[ -n "$ALONE_TAGS" ] && expected+=("Odoo tests, mpesa_payment alone")
[ "$install_rc" = 0 ] && [ -n "$BESIDE_TAGS" ] && expected+=("Odoo tests beside")
for what in "${expected[@]}"; do
    grep -q " $what\$" "$RESULTS" 2>/dev/null \
        || { count 0 1; echo "FAILED: $what did not run to its end"; }
done

# --- 4. The PostgreSQL restart test, alone -------------------------------------------
# It restarts PostgreSQL, which cuts every other connection: it runs once nothing else
# does.
if [ "$install_rc" = 0 ]; then
    say "pytest $RESTART_TEST"
    set +e
    run_pytest "$LOGS/pytest-restart.xml" "$RESTART_TEST"
    restart_rc=$?
    set -e
    read -r r_pass r_fail r_skip < <("$PY" "$ROOT/setup/junit_summary.py" \
        "$LOGS/pytest-restart.xml" "$restart_rc")
    count "$r_pass" "$r_fail" "$r_skip"
fi

echo
line="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
echo "$line"
[ "$failed" -eq 0 ]
