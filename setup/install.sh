#!/usr/bin/env bash
# Install everything the run and test commands need. Idempotent: a second run only checks.
#   ODOO_SOURCE  Odoo 18.0 source: a local source tree or an archive URL (.tar.gz/.zip).
#                Unset: /opt/odoo18 (or /opt/odoo, /usr/src/odoo18) if present, else the
#                official Odoo 18.0 nightly source archive.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NIGHTLY_URL="https://nightly.odoo.com/18.0/nightly/src/odoo_18.0.latest.tar.gz"
APT_PACKAGES=(postgresql postgresql-client libpq-dev chromium wkhtmltopdf
              libldap2-dev libsasl2-dev libxml2-dev libxslt1-dev libjpeg-dev zlib1g-dev
              python3-venv curl)

install_system_packages() {
    local missing=()
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return
    say "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

is_odoo18_tree() {
    [ -f "$1/odoo/release.py" ] && [ -d "$1/addons" ] \
        && grep -q "version_info = (18, 0" "$1/odoo/release.py"
}

# Resolve ODOO_SOURCE into a local Odoo 18.0 source tree; print its path.
resolve_odoo_source() {
    local src="${ODOO_SOURCE:-}"
    if [ -z "$src" ]; then
        for cand in /opt/odoo18 /opt/odoo /usr/src/odoo18; do
            if is_odoo18_tree "$cand"; then echo "$cand"; return; fi
        done
        src="$NIGHTLY_URL"
    fi
    if [ -d "$src" ]; then
        is_odoo18_tree "$src" || die "ODOO_SOURCE=$src is not an Odoo 18.0 source tree (no odoo/release.py for 18.0)."
        (cd "$src" && pwd); return
    fi
    local cache="$LOCAL/odoo-source" stamp="$LOCAL/odoo-source.url"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$src" ] && is_odoo18_tree "$cache"; then
        echo "$cache"; return
    fi
    say "downloading Odoo 18.0 from $src" >&2
    local tmp; tmp=$(mktemp -d)
    if [ -f "$src" ]; then cp "$src" "$tmp/odoo.archive"
    elif ! curl -fsSL --retry 2 --connect-timeout 20 -o "$tmp/odoo.archive" "$src"; then
        rm -rf "$tmp"
        die "Odoo 18.0 could not be fetched from $src: set ODOO_SOURCE to an Odoo 18.0 source directory or archive URL, e.g. ODOO_SOURCE=/path/to/odoo-18.0 ./setup/test.sh"
    fi
    mkdir -p "$tmp/x"
    case "$src" in
        *.zip) (cd "$tmp/x" && python3 -m zipfile -e ../odoo.archive .) ;;
        *) tar -xf "$tmp/odoo.archive" -C "$tmp/x" ;;
    esac
    local top; top=$(dirname "$(find "$tmp/x" -maxdepth 3 -path '*/odoo/release.py' | head -1)")
    top=$(dirname "$top")
    is_odoo18_tree "$top" || die "The archive at $src holds no Odoo 18.0 source: set ODOO_SOURCE to an Odoo 18.0 source directory or archive URL."
    rm -rf "$cache"; mkdir -p "$LOCAL"; mv "$top" "$cache"; rm -rf "$tmp"
    echo "$src" > "$stamp"
    echo "$cache"
}

install_python() {
    local odoo_src="$1"
    [ -x "$PY" ] || { say "creating virtualenv in .venv"; python3 -m venv "$VENV"; }
    local want; want=$( { echo "$odoo_src"; cat "$ROOT/requirements.txt" "$odoo_src/requirements.txt" \
        "$ROOT/setup/odoo_requirements.py" "$ROOT/tests/emulator/pyproject.toml"; } | sha256sum | cut -c1-16)
    if [ -f "$VENV/.mpesa-stamp" ] && [ "$(cat "$VENV/.mpesa-stamp")" = "$want" ]; then
        return
    fi
    say "installing Python packages (Odoo, its dependencies, requirements.txt)"
    local pip=("$PY" -m pip install -q --disable-pip-version-check)
    "${pip[@]}" --upgrade pip setuptools wheel packaging
    "$PY" "$ROOT/setup/odoo_requirements.py" "$odoo_src/requirements.txt" > "$LOCAL/odoo-requirements.txt"
    "${pip[@]}" -r "$LOCAL/odoo-requirements.txt"
    # Editable, without re-resolving its unpinned setup.py dependencies: pip then knows
    # odoo==18.0 and OCA wheels requiring it install normally. "compat" mode puts the
    # source dir on sys.path, so the regular `odoo` package wins over the `odoo/addons`
    # namespace folder that OCA wheels create in site-packages.
    "${pip[@]}" --no-deps --no-build-isolation --config-settings editable_mode=compat \
        -e "$odoo_src"
    "${pip[@]}" -r "$ROOT/requirements.txt"
    "${pip[@]}" -e "$ROOT/tests/emulator"
    echo "$want" > "$VENV/.mpesa-stamp"
}

main() {
    mkdir -p "$LOCAL"
    install_system_packages
    local odoo_src; odoo_src=$(resolve_odoo_source)
    echo "$odoo_src" > "$LOCAL/odoo-src"
    install_python "$odoo_src"
    start_postgres
    write_odoo_conf
    command -v chromium >/dev/null || die "chromium is missing: tours cannot run"
    say "installed: Odoo $("$PY" -c 'import odoo.release as r; print(r.version)') from $odoo_src"
}

main "$@"
