"""Translations of the addons: every text can be exported, the .pot files hold the texts
of the code, and the Swahili translation covers everything a customer reads.

Refresh the files with ./setup/i18n.sh (README, "Translations"); the Odoo test
mpesa_reports/tests/test_swahili.py shows the pages and the receipt in Swahili.
"""

import importlib.util
import re
from pathlib import Path

import polib
import pytest
from babel.messages import extract

REPO = Path(__file__).resolve().parent.parent
ADDONS = ("mpesa_payment", "mpesa_reconciliation", "mpesa_reports")
# What Odoo's exporter reads in code (odoo/tools/translate.py, TranslationModuleReader).
PYTHON_KEYWORDS = {"_": None, "_lt": None}
JS_KEYWORDS = {"_t": None}

# Where customers read our texts: payment form, status page, portal pages, their
# emails, the PDF receipt, and the messages of their payments (shown on the status
# page). A term used there must be translated in sw.po; staff texts may stay empty.
CUSTOMER_FACING = re.compile(
    r"^(?:"
    r"model_terms:ir\.ui\.view,arch_db:mpesa_\w+\.(?:inline_form|payment_status"
    r"|sale_order_portal_balance|portal_\w+|report_mpesa_receipt_document|how_to_pay\w*)"
    r"|model(?:_terms)?:mail\.template,(?:subject|body_html):"
    r"mpesa_\w+\.mail_template_mpesa_(?:receipt|receipt_issued|due|overdue)"
    r"|model_terms:payment\.provider,\w+_msg:mpesa_payment\.payment_provider_mpesa"
    r"|model:ir\.actions\.report,name:mpesa_\w+\.action_report_mpesa_receipt"
    r"|code:addons/mpesa_payment/(?:const\.py|controllers/main\.py"
    r"|models/payment_transaction\.py|static/src/js/payment_form\.js)"
    r"|code:addons/mpesa_reports/controllers/portal\.py"
    r")"
)
PLACEHOLDER = re.compile(r"%(?:\([a-z_]+\))?[sdf]")
# Left out when telling whether a text has words to translate: markup, placeholders,
# inline template expressions, the brand. (oca-checks-po empties a msgstr equal to its
# msgid, so "0712 345 678" or "M-PESA: %s" rightly stay empty.)
NOT_WORDS = re.compile(r"<[^>]*>|%(?:\([a-z_]+\))?[sdf]|\{\{.*?\}\}|M-PESA", re.DOTALL)


def _files(addon, pattern):
    return sorted(p for p in (REPO / addon).rglob(pattern) if "tests" not in p.parts)


def _code_terms(addon):
    """{msgid: file} of the texts Odoo's exporter finds in the addon's code."""
    terms = {}
    sources = [(path, "python", PYTHON_KEYWORDS) for path in _files(addon, "*.py")]
    sources += [
        (path, "javascript", JS_KEYWORDS)
        for path in _files(addon, "*.js")
        if "static/src" in path.as_posix()
    ]
    for path, method, keywords in sources:
        with path.open("rb") as source:
            for _lineno, message, _comments, _context in extract.extract(
                method, source, keywords=keywords, options={"encoding": "UTF-8"}
            ):
                terms.setdefault(message, path.relative_to(REPO).as_posix())
    return terms


def _pot(addon):
    path = REPO / addon / "i18n" / f"{addon}.pot"
    assert path.exists(), f"{path} is missing: run ./setup/i18n.sh"
    return polib.pofile(str(path))


@pytest.mark.parametrize("addon", ADDONS)
def test_every_text_of_the_code_is_in_the_pot(addon):
    """Odoo skips every text of a file it cannot read (an f-string among the
    arguments of _() is enough with its Babel 2.10), and a text added after the last
    refresh of the .pot is never translated."""
    exported = {entry.msgid for entry in _pot(addon)}
    missing = {m: path for m, path in _code_terms(addon).items() if m not in exported}
    assert not missing, f"not in {addon}.pot (run ./setup/i18n.sh): {missing}"


@pytest.mark.parametrize("addon", ADDONS)
def test_swahili_covers_every_customer_text(addon):
    pot_ids = {entry.msgid for entry in _pot(addon)}
    swahili = polib.pofile(str(REPO / addon / "i18n" / "sw.po"))
    assert {entry.msgid for entry in swahili} == pot_ids, (
        f"{addon}/i18n/sw.po does not match the .pot: run ./setup/i18n.sh"
    )
    customer = [
        entry
        for entry in swahili
        if any(
            CUSTOMER_FACING.match(f"{where}:{line}")
            for where, line in entry.occurrences
        )
    ]
    if addon != "mpesa_reconciliation":  # finance's addon: nothing for customers
        assert customer, "the customer-facing sources are recognised"
    untranslated = [
        e.msgid
        for e in customer
        if (not e.msgstr and re.search(r"[a-z]{2,}", NOT_WORDS.sub("", e.msgid)))
        or "fuzzy" in e.flags
    ]
    assert not untranslated, (
        f"customer texts without Swahili in {addon}: {untranslated}"
    )
    for entry in (e for e in customer if e.msgstr):
        assert sorted(PLACEHOLDER.findall(entry.msgstr)) == sorted(
            PLACEHOLDER.findall(entry.msgid)
        ), f"placeholders differ: {entry.msgid!r} -> {entry.msgstr!r}"


def _catalog(path, entries, header=""):
    catalog = polib.POFile()
    catalog.header = header
    for msgid, msgstr in entries:
        catalog.append(polib.POEntry(msgid=msgid, msgstr=msgstr))
    path.parent.mkdir(parents=True, exist_ok=True)
    catalog.save(str(path))


def test_refresh_keeps_translations(tmp_path):
    """setup/i18n_merge.py (run by setup/i18n.sh): a text moved to another addon keeps
    its Swahili, a new text is left to translate, a removed one goes, the glossary at
    the top stays."""
    spec = importlib.util.spec_from_file_location(
        "i18n_merge", REPO / "setup" / "i18n_merge.py"
    )
    i18n_merge = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(i18n_merge)
    floor, top = tmp_path / "mpesa_payment", tmp_path / "mpesa_reports"
    _catalog(floor / "i18n" / "sw.po", [("Try again", "Jaribu tena")], "Glossary")
    _catalog(floor / "i18n" / "mpesa_payment.pot", [("Try again", ""), ("Receipt", "")])
    _catalog(top / "i18n" / "sw.po", [("Receipt", "Risiti"), ("Old", "Zamani")])
    _catalog(top / "i18n" / "mpesa_reports.pot", [("New", "")])

    i18n_merge.main([str(floor), str(top)])

    floor_sw = polib.pofile(str(floor / "i18n" / "sw.po"))
    assert {e.msgid: e.msgstr for e in floor_sw} == {
        "Try again": "Jaribu tena",
        "Receipt": "Risiti",
    }
    assert floor_sw.header == "Glossary"
    top_sw = polib.pofile(str(top / "i18n" / "sw.po"))
    assert {e.msgid: e.msgstr for e in top_sw} == {"New": ""}
