#!/usr/bin/env bash
# Start the demo: PostgreSQL, a demo database (created once, then reused), the Daraja emulator
# and Odoo. Ctrl-C stops everything. Logs: .local/logs/.
#   MPESA_DEMO_DB        database name (default mpesa_demo)
#   MPESA_DEMO_RESET=1   drop the demo database and create it again
#   EMULATOR_PORT, ODOO_PORT   (default 8070, 8069)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DB="${MPESA_DEMO_DB:-mpesa_demo}"
MODULES="${MPESA_DEMO_MODULES:-$OUR_ADDONS,website_sale}"  # override only to debug the setup
CONF="$LOCAL/odoo.conf"
LOGS="$LOCAL/logs"
SETUP_LOG="$LOGS/setup.log"
# The emulator's default credentials and Safaricom's public sandbox passkey; demo_data.py
# gives the same ones to the M-PESA provider.
export MPESA_DEMO_CONSUMER_KEY=emulator-key MPESA_DEMO_CONSUMER_SECRET=emulator-secret
export MPESA_DEMO_PASSKEY=bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919
export EMULATOR_PORT ODOO_PORT
# The emulator's private key, kept across restarts: the provider's security credential
# (the initiator password encrypted with its certificate by demo_data.py) stays valid.
export MPESA_DEMO_EMULATOR_KEY="$LOCAL/emulator-key.pem"
PIDS=()

sql() { psql -d "$1" -tAqc "$2" 2>/dev/null; }
port_busy() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
logged() {  # run a setup step, output to the setup log; on failure show its end and stop
    "$@" >>"$SETUP_LOG" 2>&1 || { tail -n 30 "$SETUP_LOG" >&2; die "setup failed, see $SETUP_LOG"; }
}
demo_data() { logged "$ODOO_BIN" shell -c "$CONF" -d "$DB" --no-http <"$ROOT/setup/demo_data.py"; }
addons_hash() {  # of what an update reloads: models, data, views (not tests, not static files)
    (cd "$ROOT" && find mpesa_payment mpesa_reconciliation mpesa_reports -path '*/tests' -prune \
        -o -type f \( -name '*.py' -o -name '*.xml' -o -name '*.csv' \) -print0 2>/dev/null \
        | sort -z | xargs -0r sha256sum | sha256sum) || true
}

demo_history() {  # 60 days of payments: a running Odoo, the emulator in the script
    say "replaying 60 days of M-PESA payments (a few minutes; log: $SETUP_LOG)"
    for port in "$EMULATOR_PORT" "$ODOO_PORT"; do
        port_busy "$port" && die "port $port is already in use (another demo still running?)"
    done
    # No cron worker: the script runs the jobs it needs, so the history is the same
    # every time.
    "$ODOO_BIN" -c "$CONF" -d "$DB" --db-filter "^$DB\$" --http-port "$ODOO_PORT" \
        --http-interface 127.0.0.1 --max-cron-threads 0 </dev/null >>"$SETUP_LOG" 2>&1 &
    PIDS+=($!)
    wait_http "http://localhost:$ODOO_PORT/web/health" "$!" "Odoo" "$SETUP_LOG"
    local started=$SECONDS
    logged "$PY" "$ROOT/setup/demo_history.py" --odoo "http://localhost:$ODOO_PORT" \
        --db "$DB" --port "$EMULATOR_PORT"
    say "history replayed in $((SECONDS - started)) s"
    kill -TERM "${PIDS[0]}"
    wait "${PIDS[0]}" 2>/dev/null || true
    PIDS=()
}

create_db() {
    # Drop only a database this script started creating (interrupted) or was asked to reset.
    if [ -n "$(sql postgres "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ] \
        && [ ! -f "$LOCAL/$DB.creating" ] && [ "${MPESA_DEMO_RESET:-}" != 1 ]; then
        die "database $DB exists but is not a finished demo database: MPESA_DEMO_RESET=1 drops it"
    fi
    say "creating the demo database $DB (a few minutes, once; log: $SETUP_LOG)"
    touch "$LOCAL/$DB.creating"
    PGOPTIONS="-c client_min_messages=warning" dropdb --if-exists "$DB"
    rm -rf "$LOCAL/filestore/filestore/$DB"
    # base first, then make the company Kenyan, then install: see the top of demo_data.py.
    logged "$ODOO_BIN" -c "$CONF" -d "$DB" -i base --stop-after-init --no-http
    demo_data
    say "installing $MODULES"
    local hash; hash=$(addons_hash)
    logged "$ODOO_BIN" -c "$CONF" -d "$DB" -i "$MODULES" --stop-after-init --no-http
    say "adding demo data"
    demo_data
    demo_history
    echo "$hash" >"$LOCAL/$DB.addons-hash"
    rm "$LOCAL/$DB.creating"
}

# shellcheck disable=SC2317  # called from the traps below
stop_all() {
    trap - INT TERM EXIT
    [ ${#PIDS[@]} -gt 0 ] || return 0
    say "stopping"
    local pid killer
    # A process group under job control (set -m), else the process alone.
    for pid in "${PIDS[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    (sleep 15; for pid in "${PIDS[@]}"; do
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null; done) &
    killer=$!
    wait "${PIDS[@]}" 2>/dev/null || true
    kill -- "-$killer" 2>/dev/null || true
    wait "$killer" 2>/dev/null || true
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap stop_all EXIT

wait_http() {  # URL PID NAME LOG: wait until URL answers, fail if the process ended
    for _ in $(seq 120); do
        curl -s -o /dev/null --max-time 2 "$1" && return 0
        kill -0 "$2" 2>/dev/null || { tail -n 20 "$4" >&2; die "$3 stopped, see $4"; }
        sleep 0.5
    done
    die "$3 did not answer on $1, see $4"
}

main() {
    bash "$ROOT/setup/install.sh"
    start_postgres
    mkdir -p "$LOGS"
    : >"$SETUP_LOG"

    if [ "${MPESA_DEMO_RESET:-}" != 1 ] \
        && [ -n "$(sql "$DB" "SELECT value FROM ir_config_parameter WHERE key='mpesa_demo.ready'")" ]; then
        say "reusing the demo database $DB (MPESA_DEMO_RESET=1 to start afresh)"
        local hash; hash=$(addons_hash)
        if [ "$hash" != "$(cat "$LOCAL/$DB.addons-hash" 2>/dev/null)" ]; then
            say "the addons changed: updating them in $DB"
            logged "$ODOO_BIN" -c "$CONF" -d "$DB" -u "$OUR_ADDONS" --stop-after-init --no-http
            echo "$hash" >"$LOCAL/$DB.addons-hash"
        fi
    else
        create_db
    fi
    # Callback URLs are built from web.base.url; freeze it so a login from another host
    # name does not change it.
    sql "$DB" "INSERT INTO ir_config_parameter (key, value) VALUES
        ('web.base.url', 'http://localhost:$ODOO_PORT'), ('web.base.url.freeze', 'True')
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value" >/dev/null
    if [ "$(sql "$DB" "SELECT 1 FROM information_schema.columns
            WHERE table_name = 'payment_provider' AND column_name = 'mpesa_api_url'")" = 1 ]; then
        sql "$DB" "UPDATE payment_provider SET mpesa_api_url = 'http://127.0.0.1:$EMULATOR_PORT'
            WHERE code = 'mpesa'" >/dev/null
    fi

    for port in "$EMULATOR_PORT" "$ODOO_PORT"; do
        port_busy "$port" && die "port $port is already in use (another demo still running?)"
    done
    # M-PESA as the books left it (every shilling of the demo went through the emulator):
    # each shortcode's balance is its journal's, so Check Balance agrees with the books,
    # and the demo's till exists.
    local emulator_args=() code kind till passkey balance
    while IFS='|' read -r code kind till passkey balance; do
        [ -n "$code" ] || continue
        [ "$kind" = till ] || [ "$code" = 174379 ] || continue  # the emulator's paybill
        [ "$kind" = till ] && [ -n "$till" ] && emulator_args+=(--till "$code:$till:$passkey")
        emulator_args+=(--balance "$code=$balance")
    done < <(sql "$DB" "SELECT p.mpesa_shortcode, p.mpesa_shortcode_type,
            coalesce(p.mpesa_till_number, ''), coalesce(p.mpesa_passkey, ''),
            (SELECT coalesce(sum(l.amount), 0) FROM account_bank_statement_line l
                JOIN account_move m ON m.id = l.move_id
                WHERE m.state = 'posted' AND m.journal_id = (SELECT min(ml.journal_id)
                    FROM account_payment_method_line ml WHERE ml.payment_provider_id = p.id))
        FROM payment_provider p WHERE p.code = 'mpesa' AND p.mpesa_shortcode IS NOT NULL
        ORDER BY p.id")
    set -m  # each service in its own process group, so stop_all can end it with its children
    "$PY" -m daraja_emulator --host 127.0.0.1 --port "$EMULATOR_PORT" --manual \
        --consumer-key "$MPESA_DEMO_CONSUMER_KEY" --consumer-secret "$MPESA_DEMO_CONSUMER_SECRET" \
        --shortcode 174379 --passkey "$MPESA_DEMO_PASSKEY" --key-file "$MPESA_DEMO_EMULATOR_KEY" \
        "${emulator_args[@]}" </dev/null >"$LOGS/emulator.log" 2>&1 &
    PIDS+=($!)
    wait_http "http://127.0.0.1:$EMULATOR_PORT/phone" "$!" "the Daraja emulator" "$LOGS/emulator.log"
    # Local only, like the emulator: the demo's admin password is "admin".
    "$ODOO_BIN" -c "$CONF" -d "$DB" --db-filter "^$DB\$" --http-port "$ODOO_PORT" \
        --http-interface 127.0.0.1 </dev/null >"$LOGS/odoo.log" 2>&1 &
    PIDS+=($!)
    wait_http "http://localhost:$ODOO_PORT/web/health" "$!" "Odoo" "$LOGS/odoo.log"
    # The emulator forgets the C2B URLs it was given when it stops: registered again, as
    # an admin does on the provider, so paybill and till payments from the virtual phone
    # reach Odoo.
    PYTHONPATH="$ROOT/setup" "$PY" - "http://localhost:$ODOO_PORT" "$DB" \
        >>"$SETUP_LOG" 2>&1 <<'PY' || say "C2B URLs not registered, see $SETUP_LOG"
import sys

from demo_history import Odoo

odoo = Odoo(sys.argv[1], sys.argv[2])
domain = [("code", "=", "mpesa"), ("state", "!=", "disabled")]
for provider in odoo("payment.provider", "search", domain):
    odoo("payment.provider", "action_mpesa_register_c2b_urls", [provider])
PY

    cat <<EOF

  M-PESA demo is running (database $DB)
    Shop            http://localhost:$ODOO_PORT/shop
    Backend         http://localhost:$ODOO_PORT/odoo      login admin / admin
    Virtual phone   http://localhost:$EMULATOR_PORT/phone  (every STK prompt waits here)
    Logs            $LOGS/odoo.log, $LOGS/emulator.log
EOF
    local links
    links=$(sql "$DB" "SELECT format('    %-15s %-19s KES %9s  http://localhost:$ODOO_PORT/my/%s/%s?access_token=%s',
            doc.name, p.name, to_char(doc.amount_total, 'FM999,999,990'), doc.kind, doc.id, doc.access_token)
        FROM ir_model_data d
        JOIN (SELECT 'sale.order' model, 'orders' kind, id, name, partner_id, amount_total, access_token
                FROM sale_order WHERE state IN ('draft', 'sent')
              UNION ALL SELECT 'account.move', 'invoices', id, name, partner_id, amount_total, access_token
                FROM account_move WHERE state = 'posted' AND payment_state = 'not_paid') doc
            ON doc.model = d.model AND doc.id = d.res_id
        JOIN res_partner p ON p.id = doc.partner_id
        WHERE d.module = 'mpesa_demo' ORDER BY doc.kind DESC, doc.name")
    [ -z "$links" ] || printf '  Pay as a customer (open quotations and invoices):\n%s\n' "$links"
    printf '\n  Press Ctrl-C to stop.\n\n'

    local rc=0
    wait -n "${PIDS[@]}" || rc=$?
    die "a service stopped (exit $rc), see $LOGS/odoo.log and $LOGS/emulator.log"
}

main "$@"
