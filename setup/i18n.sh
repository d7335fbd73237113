#!/usr/bin/env bash
# Refresh the translation files of our addons after their texts changed:
# exports each addon's i18n/<addon>.pot with Odoo's own exporter (odoo-bin --i18n-export
# without a language writes a template), then merges every i18n/<lang>.po with it
# (setup/i18n_merge.py: new terms untranslated, gone terms dropped, translations kept).
#   MPESA_I18N_DB  database to (re)create for the export, default mpesa_i18n
# Then translate the new customer-facing terms in sw.po (glossary at its top) and run the
# lint step of ./setup/test.sh (oca-checks-po).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bash "$ROOT/setup/install.sh"
start_postgres

DB="${MPESA_I18N_DB:-mpesa_i18n}"
ADDONS_PATH="$(cat "$LOCAL/odoo-src")/addons,$ROOT"
LOG="$LOCAL/logs/i18n.log"; mkdir -p "$LOCAL/logs"
odoo() { "$ODOO_BIN" -c "$LOCAL/odoo.conf" -d "$DB" --addons-path="$ADDONS_PATH" \
    --stop-after-init --logfile "$LOG" "$@"; }

say "installing $OUR_ADDONS in $DB (log: ${LOG#"$ROOT"/})"
dropdb --if-exists "$DB"
odoo -i "$OUR_ADDONS" --without-demo=all
for addon in ${OUR_ADDONS//,/ }; do
    mkdir -p "$ROOT/$addon/i18n"
    say "exporting $addon/i18n/$addon.pot"
    odoo --i18n-export="$ROOT/$addon/i18n/$addon.pot" --modules="$addon"
done
dropdb "$DB"
(cd "$ROOT" && "$PY" setup/i18n_merge.py ${OUR_ADDONS//,/ })
# OCA's layout (sorted, wrapped at 78 columns, no msgstr equal to its msgid).
for addon in ${OUR_ADDONS//,/ }; do
    "$VENV/bin/oca-checks-po" --fix "$ROOT/$addon"/i18n/*.po* >/dev/null || true
done
"$VENV/bin/oca-checks-po" "$ROOT"/mpesa_*/i18n/*.po*
say "done: translate the new customer texts in */i18n/sw.po (pytest tests/test_i18n.py lists them)"
