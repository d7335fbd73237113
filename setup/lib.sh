# Shared settings for the setup scripts. Sourced, never run.
# shellcheck shell=bash
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
LOCAL="$ROOT/.local"          # ignored: generated config, logs, screenshots, Odoo source cache
PY="$VENV/bin/python"
ODOO_BIN="$VENV/bin/odoo"

# PostgreSQL role used by Odoo (local development only, never production credentials).
export PGHOST="${PGHOST:-localhost}"
export PGPORT="${PGPORT:-5432}"
export PGUSER="${PGUSER:-odoo}"
export PGPASSWORD="${PGPASSWORD:-odoo}"

OUR_ADDONS="mpesa_payment,mpesa_reconciliation,mpesa_reports"
EMULATOR_PORT="${EMULATOR_PORT:-8070}"
ODOO_PORT="${ODOO_PORT:-8069}"

say() { printf '\033[1m[mpesa]\033[0m %s\n' "$*"; }
die() { printf '[mpesa] ERROR: %s\n' "$*" >&2; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# psql as the postgres superuser over the local socket (our PG* variables unset).
pg_admin() {
    as_root env -u PGHOST -u PGUSER -u PGPASSWORD runuser -u postgres -- psql -p "$PGPORT" "$@"
}

start_postgres() {
    if ! pg_isready -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null; then
        say "starting PostgreSQL"
        local ver
        ver=$(pg_lsclusters -h 2>/dev/null | awk 'NR==1{print $1}')
        if [ -z "$ver" ]; then
            ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
            as_root pg_createcluster "$ver" main >/dev/null
        fi
        as_root pg_ctlcluster "$ver" main start
        for _ in $(seq 30); do pg_isready -q -h "$PGHOST" -p "$PGPORT" && break; sleep 1; done
        pg_isready -q -h "$PGHOST" -p "$PGPORT" || die "PostgreSQL did not start"
    fi
    # A role for Odoo; Odoo refuses to connect as 'postgres'.
    if ! pg_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname='$PGUSER'" | grep -q 1; then
        say "creating PostgreSQL role $PGUSER"
        pg_admin -qc "CREATE ROLE $PGUSER LOGIN CREATEDB PASSWORD '$PGPASSWORD'"
    fi
}

# Write the Odoo config used by run and test (no secrets beyond the local DB role).
write_odoo_conf() {
    mkdir -p "$LOCAL"
    cat > "$LOCAL/odoo.conf" <<CONF
[options]
addons_path = $(cat "$LOCAL/odoo-src")/addons,$ROOT
db_host = $PGHOST
db_port = $PGPORT
db_user = $PGUSER
db_password = $PGPASSWORD
http_port = $ODOO_PORT
data_dir = $LOCAL/filestore
list_db = True
without_demo = False
CONF
}
