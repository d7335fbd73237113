"""In-process benchmarks over a benchmark database: matching, statement import,
reports and the books check, each against its anchor measured in the same process.

    python tests/bench/bench_ledger.py SECTION DB OUT.json [SIZES]

SECTION is ``configure`` (once, on the built database), ``matching``, ``import``,
``reports`` (reports and the books check: they share the synthetic ledger). Each
section works on the database it is given (``setup/bench.sh`` hands it a copy).
Run by ``tests/bench/run_bench.py``; see tests/bench/README.md.
"""

import base64
import csv
import hashlib
import io
import random
import re
import sys
import tracemalloc
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import Timer, odoo_env, write_json

SEED = 2026
JOURNAL_CODE = "MPBN"
ANCHOR_JOURNAL_CODE = "BNKA"
SHORTCODE = "174379"
FIRST = ("MARY", "JOHN", "PETER", "GRACE", "JAMES", "ANN", "DAVID", "JANE", "JOSEPH")
FIRST += ("ESTHER", "SAMUEL", "RUTH", "DANIEL", "FAITH", "PAUL", "MERCY", "GEORGE")
LAST = ("KAMAU", "OTIENO", "WANJIRU", "MWANGI", "ACHIENG", "KIPROTICH", "NJOROGE")
LAST += ("WAMBUI", "OCHIENG", "CHEBET", "KARIUKI", "AKINYI", "MUTUA", "NYAMBURA")
TYPO_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


# === CONFIGURE (the built database, once) === #


def configure(env):
    """The company keeps its books in KES; the M-PESA provider books into a KES bank
    journal of its own; a second bank journal holds the anchor's lines."""
    company = env.company
    kes = env.ref("base.KES")
    kes.active = True
    company.currency_id = kes
    journal = env["account.journal"].create(
        {"name": "M-PESA Bench", "code": JOURNAL_CODE, "type": "bank"}
    )
    env["account.journal"].create(
        {"name": "Bank (anchor)", "code": ANCHOR_JOURNAL_CODE, "type": "bank"}
    )
    provider = env.ref("mpesa_payment.payment_provider_mpesa")
    provider.write(
        {
            "state": "test",
            "mpesa_consumer_key": "bench",
            "mpesa_consumer_secret": "bench",
            "mpesa_shortcode": SHORTCODE,
            "mpesa_shortcode_type": "paybill",
            "mpesa_passkey": "bench",
            "journal_id": journal.id,
        }
    )
    # OCA's rules are off for M-PESA lines (mpesa_reconciliation); for the anchor's
    # lines they only propose: nothing is reconciled while the lines are created.
    env["account.reconcile.model"].search([]).write({"auto_reconcile": False})
    return {"company_currency": company.currency_id.name, "journal": journal.id}


def provider_of(env):
    return env.ref("mpesa_payment.payment_provider_mpesa")


def journal_of(env, code):
    return env["account.journal"].search([("code", "=", code)], limit=1)


# === DATA: customers, invoices, what they pay === #


def typo(rng, text, edits):
    chars = list(text)
    for _ in range(edits):
        op, pos = rng.randrange(4), rng.randrange(len(chars))
        if op == 0:
            chars[pos] = rng.choice(TYPO_CHARS)
        elif op == 1 and len(chars) > 6:
            del chars[pos]
        elif op == 2:
            chars.insert(pos, rng.choice(TYPO_CHARS))
        elif pos + 1 < len(chars):
            chars[pos], chars[pos + 1] = chars[pos + 1], chars[pos]
    return "".join(chars)


def styled(rng, reference):
    return rng.choice(
        (
            reference.lower(),
            reference.replace("/", " "),
            reference.replace("/", "-"),
            reference,
        )
    )


def make_partners(env, rng, count):
    """Customers with a name, a phone typed the Odoo way, 30% an account number."""
    kenya = env.ref("base.ke")
    vals, msisdns = [], []
    for index in range(count):
        msisdn = f"2547{rng.randrange(10**8):08d}"
        msisdns.append(msisdn)
        name = f"{rng.choice(FIRST).title()} {rng.choice(LAST).title()}"
        vals.append(
            {
                "name": name,
                "mobile": f"0{msisdn[3:6]} {msisdn[6:9]} {msisdn[9:]}",
                "country_id": kenya.id,
                "mpesa_account_ref": f"ACC-{index:06d}"
                if rng.random() < 0.3
                else False,
            }
        )
    partners = env["res.partner"].create(vals)
    return list(zip(partners, msisdns, strict=True))


# Creating 10k invoices, receipts or bank lines one ORM create at a time takes most
# of an hour on 2 shared cores (about 4 to 7 a second here). So one of each is created
# through the ORM, as the application makes them, and copied in SQL: every column of
# the template rows (accounts, states, flags, journal items) with the values of each
# copy (number, customer, amounts, dates) put in. Both our matcher and OCA's rules
# read these same rows.


def columns(cr, table):
    cr.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
        " ORDER BY ordinal_position",
        [table],
    )
    return [name for (name,) in cr.fetchall()]


def clone(cr, table, where, params, overrides):
    """INSERT a copy of the template rows of ``table`` (``t``, matching ``where``)
    for each row of the temporary table ``d``, with ``overrides`` (column -> SQL)."""
    names = [c for c in columns(cr, table) if c != "id" or "id" in overrides]
    values = [overrides.get(c, f"t.{c}") for c in names]
    cr.execute(
        f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(values)}"
        f" FROM {table} t CROSS JOIN bench_data d WHERE {where}",
        params,
    )


def load_data(cr, rows, spec):
    """The values of the copies, in the temporary table ``d`` (bench_data)."""
    cr.execute("DROP TABLE IF EXISTS bench_data")
    cr.execute(f"CREATE TEMP TABLE bench_data ({spec})")
    names = [c.split()[0] for c in spec.split(",") if "DEFAULT" not in c]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerows(rows)
    buffer.seek(0)
    cr.copy_expert(
        f"COPY bench_data ({', '.join(names)}) FROM STDIN WITH (FORMAT csv)", buffer
    )


def template_invoice(env, partner):
    invoice = env["account.move"].create(
        {
            "move_type": "out_invoice",
            "partner_id": partner.id,
            "invoice_date": date(2026, 1, 1),
            "invoice_line_ids": [
                (
                    0,
                    0,
                    {
                        "name": "Goods",
                        "quantity": 1,
                        "price_unit": 100,
                        "tax_ids": [(6, 0, [])],
                    },
                )
            ],
        }
    )
    invoice.action_post()
    env.flush_all()
    return invoice


AMOUNTS = (
    "amount_untaxed",
    "amount_total",
    "amount_residual",
    "amount_untaxed_signed",
    "amount_untaxed_in_currency_signed",
    "amount_total_signed",
    "amount_total_in_currency_signed",
    "amount_residual_signed",
)
LINE_AMOUNTS = (
    "debit",
    "credit",
    "balance",
    "amount_currency",
    "amount_residual",
    "amount_residual_currency",
    "price_subtotal",
    "price_total",
)


def make_invoices(env, rng, partners, count):
    """Posted customer invoices, one line each, no tax: copies of one made by the
    ORM (INV/2026/00001, left open too), numbered INV/2026/00002... (payment
    reference = number)."""
    template = template_invoice(env, partners[0][0])
    rows = []
    for index in range(count):
        partner, _msisdn = rng.choice(partners)
        day = date(2026, 1, 1) + timedelta(rng.randrange(120))
        amount = rng.randrange(100, 50000)
        rows.append((index + 2, partner.id, partner.name, day, amount))
    cr = env.cr
    load_data(
        cr,
        rows,
        "n int, partner int, pname varchar, day date, amount numeric,"
        " mid int DEFAULT nextval('account_move_id_seq')",
    )
    number = "'INV/2026/' || lpad(d.n::text, 5, '0')"
    move = {
        "id": "d.mid",
        "name": number,
        "payment_reference": number,
        "sequence_number": "d.n",
        "partner_id": "d.partner",
        "commercial_partner_id": "d.partner",
        "invoice_partner_display_name": "d.pname",
        "date": "d.day",
        "invoice_date": "d.day",
        "invoice_date_due": "d.day",
        "access_token": "NULL",
        **{name: f"sign(t.{name}) * d.amount" for name in AMOUNTS},
    }
    clone(cr, "account_move", "t.id = %s", [template.id], move)
    line = {
        "move_id": "d.mid",
        "partner_id": "d.partner",
        "move_name": number,
        # the receivable's label is the payment reference, as Odoo writes it
        "name": f"CASE WHEN t.display_type = 'payment_term' THEN {number}"
        " ELSE t.name END",
        "date": "d.day",
        "invoice_date": "d.day",
        "date_maturity": "d.day",
        "price_unit": "d.amount",
        **{name: f"sign(t.{name}) * d.amount" for name in LINE_AMOUNTS},
    }
    clone(cr, "account_move_line", "t.move_id = %s", [template.id], line)
    env.invalidate_all()
    env.cr.commit()
    return env["account.move"].search(
        [
            ("move_type", "=", "out_invoice"),
            ("state", "=", "posted"),
            ("id", "!=", template.id),
        ],
        order="id",
    )


def line_reference(rng, invoice, partner, related):
    """45% the number as typed, 15% with typos, 10% an account number, else none."""
    if not related:
        return rng.choice(("", "PAYMENT", f"X{rng.randrange(10**7)}"))
    roll = rng.random()
    if roll < 0.45:
        return styled(rng, invoice.name)
    if roll < 0.60:
        return typo(rng, invoice.name.replace("/", ""), rng.choice((1, 1, 2)))
    if roll < 0.70 and partner.mpesa_account_ref:
        return partner.mpesa_account_ref
    return rng.choice(("", "", "PAYMENT", "school fees"))


def line_phone(rng, msisdn):
    roll = rng.random()
    if roll < 0.30:
        return msisdn
    if roll < 0.60:
        return hashlib.sha256(msisdn.encode()).hexdigest()
    if roll < 0.85:
        return f"{msisdn[:4]}****{msisdn[-3:]}"
    return ""


def line_amount(rng, due):
    roll = rng.random()
    if roll < 0.10:
        return due + rng.choice((-0.5, 0.5, 1.0))
    if roll < 0.25:
        return round(due / 2, 2)
    if roll < 0.35:
        return due + rng.randrange(100, 5000)
    return due


def payments(rng, invoices, partners):
    """One payment per invoice (92% for an open invoice, chosen at random; 8% for
    nothing open): [(values, intended invoice id or None)]."""
    by_partner = {p.id: msisdn for p, msisdn in partners}
    out = []
    for index in range(len(invoices)):
        invoice = rng.choice(invoices)
        related = rng.random() < 0.92
        partner = invoice.partner_id
        msisdn = by_partner[partner.id] if related else f"2547{rng.randrange(10**8)}"
        name = ""
        if related and rng.random() < 0.7:
            words = partner.name.upper().split()
            name = words[0] if rng.random() < 0.3 else " ".join(words)
        out.append(
            (
                {
                    "code": f"BN{index:08d}",
                    "amount": line_amount(rng, invoice.amount_residual),
                    "reference": line_reference(rng, invoice, partner, related),
                    "phone": line_phone(rng, msisdn),
                    "customer_name": name,
                    "paid_at": datetime(2026, 5, 1) + timedelta(minutes=index),
                },
                invoice.id if related else None,
            )
        )
    return out


# === MATCHING === #


STATEMENT_LINE = {
    "move_id": "d.mid",
    "payment_ref": "d.label",
    "internal_index": "to_char(d.day, 'YYYYMMDD') || lpad(d.lid::text, 10, '0')",
    "amount": "d.amount",
    "amount_currency": "d.amount",
    "amount_residual": "d.amount",
}


def clone_statement_lines(env, template, rows, receipt_overrides=None):
    """Copies of the statement line ``template`` (its move, journal items and, with
    ``receipt_overrides``, its receipt) for each of ``rows``."""
    cr = env.cr
    load_data(
        cr,
        rows,
        "n int, code varchar, label varchar, partner_name varchar, amount numeric,"
        " phone varchar, customer_name varchar, reference varchar,"
        " paid_at timestamp, day date,"
        " mid int DEFAULT nextval('account_move_id_seq'),"
        " lid int DEFAULT nextval('account_bank_statement_line_id_seq'),"
        " rid int DEFAULT nextval('mpesa_receipt_id_seq')",
    )
    move = {
        "id": "d.mid",
        "name": "t.name || '-' || d.n",
        "ref": "d.label",
        "date": "d.day",
        "statement_line_id": "NULL",  # set below: the line does not exist yet
    }
    clone(cr, "account_move", "t.id = %s", [template.move_id.id], move)
    if receipt_overrides is not None:
        receipt = {"id": "d.rid", "statement_line_id": "NULL", **receipt_overrides}
        clone(
            cr,
            "mpesa_receipt",
            "t.id = %s",
            [template.mpesa_receipt_id.id],
            receipt,
        )
    line = {**STATEMENT_LINE, "id": "d.lid", "partner_name": "d.partner_name"}
    if receipt_overrides is not None:
        line["mpesa_receipt_id"] = "d.rid"
    clone(cr, "account_bank_statement_line", "t.id = %s", [template.id], line)
    cr.execute(
        "UPDATE account_move m SET statement_line_id = d.lid"
        " FROM bench_data d WHERE m.id = d.mid"
    )
    if receipt_overrides is not None:
        cr.execute(
            "UPDATE mpesa_receipt r SET statement_line_id = d.lid"
            " FROM bench_data d WHERE r.id = d.rid"
        )
    items = {
        "move_id": "d.mid",
        "move_name": "t.move_name || '-' || d.n",
        "date": "d.day",
        "name": "d.label",
        **{name: f"sign(t.{name}) * abs(d.amount)" for name in LINE_AMOUNTS},
    }
    clone(cr, "account_move_line", "t.move_id = %s", [template.move_id.id], items)
    cr.execute("SELECT lid FROM bench_data ORDER BY n")
    ids = [lid for (lid,) in cr.fetchall()]
    env.cr.commit()
    env.invalidate_all()
    return env["account.bank.statement.line"].browse(ids)


def payment_rows(paid):
    return [
        (
            index,
            values["code"],
            " ".join(filter(None, [values["code"], values["reference"]])),
            values["customer_name"],
            values["amount"],
            values["phone"],
            values["customer_name"],
            values["reference"],
            values["paid_at"],
            values["paid_at"].date(),
        )
        for index, (values, _target) in enumerate(paid)
    ]


def make_receipts(env, provider, paid):
    """The receipts with their bank lines in the provider's journal, as a paybill
    payment nobody applied leaves them: one through the ledger's own create, the
    others copied from it."""
    template = env["mpesa.receipt"].create(
        {
            "name": "BNTEMPLATE",
            "provider_id": provider.id,
            "shortcode": SHORTCODE,
            "amount": 100,
            "reference": "TEMPLATE",
            "paid_at": datetime(2026, 5, 1),
            "channel": "c2b",
            "seen_by_c2b": True,
        }
    )
    env.flush_all()
    lines = clone_statement_lines(
        env,
        template.statement_line_id,
        payment_rows(paid),
        {
            "name": "d.code",
            "amount": "d.amount",
            "phone": "d.phone",
            "customer_name": "d.customer_name",
            "reference": "d.reference",
            "paid_at": "d.paid_at",
            "partner_id": "NULL",
        },
    )
    template.statement_line_id.unlink()
    env.cr.execute("DELETE FROM mpesa_receipt WHERE id = %s", [template.id])
    env.cr.commit()
    return lines


def make_anchor_lines(env, paid):
    """The same payments as plain bank statement lines for OCA's rules: the same
    label as ours, and the payer's name where M-PESA gave one."""
    journal = journal_of(env, ANCHOR_JOURNAL_CODE)
    template = env["account.bank.statement.line"].create(
        {
            "journal_id": journal.id,
            "date": date(2026, 5, 1),
            "payment_ref": "TEMPLATE",
            "amount": 100,
        }
    )
    env.flush_all()
    lines = clone_statement_lines(env, template, payment_rows(paid))
    template.unlink()
    env.cr.commit()
    return lines


def rate(outcomes, targets):
    """Correct and wrong top matches over the lines paying an open invoice, and the
    lines paying nothing open that got a proposal anyway."""
    related = [key for key, target in targets.items() if target]
    unrelated = [key for key, target in targets.items() if not target]
    correct = sum(1 for key in related if outcomes.get(key) == targets[key])
    wrong = sum(1 for key in related if outcomes.get(key) not in (None, targets[key]))
    spurious = sum(1 for key in unrelated if outcomes.get(key))
    return {
        "lines": len(targets),
        "correct_pct": round(100.0 * correct / max(1, len(related)), 1),
        "wrong_pct": round(100.0 * wrong / max(1, len(related)), 2),
        "none_pct": round(
            100.0 * (len(related) - correct - wrong) / max(1, len(related)), 1
        ),
        "proposed_for_nothing_pct": round(100.0 * spurious / max(1, len(unrelated)), 1),
    }


def ours(env, lines, targets_by_line):
    """The accountant's refresh of suggestions over every unreconciled line (what the
    scheduled action and the button run), then the engine alone on the same lines."""
    env.invalidate_all()
    queries = env.cr.sql_log_count
    with Timer() as refresh:
        lines._mpesa_refresh_suggestions(auto=False)
        env.flush_all()
    queries = env.cr.sql_log_count - queries
    env.invalidate_all()
    with Timer() as build:
        matcher = lines._mpesa_matcher(lines.company_id)
    line_data = [line._mpesa_line() for line in lines]
    with Timer() as match:
        results = matcher.match_all(line_data)
    outcomes = {}
    for line_id, (_auto, suggestions) in results.items():
        if suggestions and suggestions[0].model == "account.move":
            outcomes[line_id] = suggestions[0].record_id
        elif suggestions:
            outcomes[line_id] = ("other", suggestions[0].record_id)
    return {
        "refresh_s": round(refresh.seconds, 2),
        "refresh_ms_per_line": round(1000 * refresh.seconds / len(lines), 3),
        "queries": queries,
        "engine_build_s": round(build.seconds, 3),
        "engine_match_s": round(match.seconds, 3),
        "engine_ms_per_line": round(
            1000 * (build.seconds + match.seconds) / len(lines), 3
        ),
        "quality": rate(outcomes, targets_by_line),
        "quality_on_anchor_sample": None,
        "_outcomes": outcomes,
    }


def anchor_models(env):
    """The company's invoice-matching rules as installed (they need the line's
    partner), and the same rule tuned for M-PESA money: the label is searched for the
    invoice number, no partner required. Both only propose."""
    installed = env["account.reconcile.model"].search(
        [("rule_type", "=", "invoice_matching"), ("company_id", "=", env.company.id)]
    )
    tuned = installed[:1].copy(
        {"name": "Tuned: label, any partner", "match_partner": False}
    )
    return {"installed": installed, "tuned": tuned}


def oca(env, models, picked, targets_by_line):
    """OCA ``_apply_rules`` per line (what the reconciliation screen runs to propose
    a match) on a seeded sample of the same payments: time per line and outcome."""
    outcomes = {}
    env.invalidate_all()
    with Timer() as timer:
        for line in picked:
            result = models._apply_rules(line, line._retrieve_partner())
            moves = result.get("amls", env["account.move.line"]).move_id
            if moves:
                outcomes[line.id] = moves[0].id
    targets = {line.id: targets_by_line[line.id] for line in picked}
    return {
        "models": [
            {
                "name": model.name,
                "label": model.match_text_location_label,
                "partner_required": model.match_partner,
            }
            for model in models
        ],
        "sample": len(picked),
        "sample_s": round(timer.seconds, 2),
        "ms_per_line": round(1000 * timer.seconds / max(1, len(picked)), 2),
        "quality": rate(outcomes, targets),
    }


def matching(env, size, sample):
    rng = random.Random(SEED + size)
    provider = provider_of(env)
    out = {"size": size}
    with Timer() as timer:
        partners = make_partners(env, rng, max(10, size // 3))
        invoices = make_invoices(env, rng, partners, size)
    out["make_invoices_s"] = round(timer.seconds, 1)
    paid = payments(rng, invoices, partners)
    with Timer() as timer:
        lines = make_receipts(env, provider, paid)
    out["make_receipts_s"] = round(timer.seconds, 1)
    out["receipts_per_s"] = round(size / timer.seconds, 1)
    with Timer() as timer:
        anchor_lines = make_anchor_lines(env, paid)
    out["make_anchor_lines_s"] = round(timer.seconds, 1)
    targets = {line.id: target for line, (_v, target) in zip(lines, paid, strict=True)}
    anchor_targets = {
        line.id: target for line, (_v, target) in zip(anchor_lines, paid, strict=True)
    }
    out["ours"] = ours(env, lines, targets)
    picked = random.Random(SEED).sample(
        list(anchor_lines), min(sample, len(anchor_lines))
    )
    out["oca"] = {
        name: oca(env, models, picked, anchor_targets)
        for name, models in anchor_models(env).items()
    }
    # Ours on the same sample, to compare like with like.
    by_position = {a.id: line.id for a, line in zip(anchor_lines, lines, strict=True)}
    same = {by_position[a.id]: targets[by_position[a.id]] for a in picked}
    outcomes = out["ours"].pop("_outcomes")
    out["ours"]["quality_on_anchor_sample"] = rate(
        {k: outcomes.get(k) for k in same}, same
    )
    fastest = min(v["ms_per_line"] for v in out["oca"].values())
    out["speedup_engine"] = round(
        fastest / max(1e-9, out["ours"]["engine_ms_per_line"]), 1
    )
    out["speedup_refresh"] = round(
        fastest / max(1e-9, out["ours"]["refresh_ms_per_line"]), 1
    )
    return out


# === STATEMENT IMPORT === #

HEADER = (
    "Receipt No.",
    "Completion Time",
    "Initiation Time",
    "Details",
    "Transaction Status",
    "Paid In",
    "Withdrawn",
    "Balance",
    "Balance Confirmed",
    "Reason Type",
    "Other Party Info",
    "Linked Transaction ID",
    "A/C No.",
)


def portal_rows(count, prefix="ST"):
    """Org-portal statement rows, newest first as the portal exports them: payments
    from masked phones quoting an account, with a running balance."""
    rng = random.Random(SEED + count)
    rows, balance = [], 100000.0
    start = datetime(2026, 3, 1)
    for index in range(count):
        amount = float(rng.randrange(10, 20000))
        balance += amount
        moment = (start + timedelta(seconds=17 * index)).strftime("%d-%m-%Y %H:%M:%S")
        phone = f"2547****{rng.randrange(1000):03d}"
        name = rng.choice(FIRST)
        account = f"INV{rng.randrange(10**5):05d}"
        rows.append(
            [
                f"{prefix}{index:08d}",
                moment,
                moment,
                f"Pay Bill from {phone} - {name} Acc. {account}",
                "Completed",
                f"{amount:,.2f}",
                "",
                f"{balance:,.2f}",
                "TRUE",
                "Pay Bill Online",
                f"{phone} - {name}",
                "",
                account,
            ]
        )
    rows.reverse()
    return rows


def csv_bytes(rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buffer.getvalue().encode()


INLINE_RE = re.compile(rb'<c r="([A-Z]+\d+)" t="inlineStr"><is><t>([^<]*)</t></is></c>')
SHARED_STRINGS_TYPE = (
    b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
)
SHARED_STRINGS_REL = (
    b'<Relationship Id="rIdSST" Type="http://schemas.openxmlformats.org/'
    b'officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
)


def xlsx_bytes(rows):
    """The rows as Excel writes them: text in the shared-strings table (openpyxl
    writes inline strings, about twice the XML, which the product refuses beyond
    64 MB unpacked, about 80k rows)."""
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Statement")
    sheet.append(list(HEADER))
    for row in rows:
        sheet.append([value if value != "" else None for value in row])  # no cell
    buffer = io.BytesIO()
    book.save(buffer)
    return shared_strings(buffer.getvalue())


def shared_strings(content):
    strings = {}

    def shared(match):
        index = strings.setdefault(match[2], len(strings))
        return b'<c r="%s" t="s"><v>%d</v></c>' % (match[1], index)

    source = zipfile.ZipFile(io.BytesIO(content))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = INLINE_RE.sub(shared, data)
            elif item.filename == "[Content_Types].xml":
                data = data.replace(b"</Types>", SHARED_STRINGS_TYPE + b"</Types>")
            elif item.filename == "xl/_rels/workbook.xml.rels":
                data = data.replace(
                    b"</Relationships>", SHARED_STRINGS_REL + b"</Relationships>"
                )
            target.writestr(item.filename, data)
        table = b"".join(b"<si><t>%s</t></si>" % text for text in strings)
        target.writestr(
            "xl/sharedStrings.xml",
            b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
            b' count="%d" uniqueCount="%d">%s</sst>'
            % (len(strings), len(strings), table),
        )
    return out.getvalue()


def oca_mapping(env):
    """OCA's sheet mapping of the org-portal columns, as a user would set it up."""
    return env["account.statement.import.sheet.mapping"].create(
        {
            "name": "M-PESA org portal",
            "float_thousands_sep": "comma",
            "float_decimal_sep": "dot",
            "delimiter": "comma",
            "timestamp_format": "%d-%m-%Y %H:%M:%S",
            "timestamp_column": "Completion Time",
            "amount_type": "distinct_credit_debit",
            "amount_debit_column": "Withdrawn",
            "amount_credit_column": "Paid In",
            "balance_column": "Balance",
            "transaction_id_column": "Receipt No.",
            "description_column": "Details",
            "reference_column": "A/C No.",
            "partner_name_column": "Other Party Info",
        }
    )


def peak_parse(content, filename):
    """Peak Python memory (tracemalloc) of reading the file into statement rows."""
    from odoo.addons.mpesa_reconciliation.statement import (
        parse_statement,
    )

    tracemalloc.start()
    try:
        parse_statement(content, filename)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def time_parse(env, mapping, journal, content, filename, anchor_content):
    """Read the file into rows: ours (``parse_statement``) and OCA's sheet parser
    (``anchor_content``: the same rows in a format it reads)."""
    from odoo.addons.mpesa_reconciliation.statement import (
        StatementError,
        parse_statement,
    )

    try:
        with Timer() as ours_t:
            statement = parse_statement(content, filename)
    except StatementError as error:  # a limit of the product: a figure too
        return {"refused": str(error), "speedup": None}
    parser = env["account.statement.import.sheet.parser"].with_context(
        journal_id=journal.id
    )
    with Timer() as oca_t:
        _currency, _account, data = parser.parse(
            anchor_content, mapping, "statement.csv"
        )
    return {
        "ours_s": round(ours_t.seconds, 2),
        "oca_s": round(oca_t.seconds, 2),
        "ours_rows": len(statement.rows),
        "oca_rows": len(data[0]["transactions"]),
        "speedup": round(oca_t.seconds / max(1e-9, ours_t.seconds), 2),
    }


def time_full_import(env, mapping, size):
    """Both wizards end to end (file read, records created) on their own rows."""
    provider = provider_of(env)
    anchor_journal = journal_of(env, ANCHOR_JOURNAL_CODE)
    content = csv_bytes(portal_rows(size, prefix="FU"))
    wizard = env["mpesa.statement.import"].create(
        {
            "provider_id": provider.id,
            "source": "file",
            "data_file": base64.b64encode(content),
            "filename": "statement.csv",
        }
    )
    with Timer() as ours_t:
        wizard.action_import()
        env.flush_all()
    env.cr.commit()
    oca_content = csv_bytes(portal_rows(size, prefix="FO"))
    oca_wizard = (
        env["account.statement.import"]
        .with_context(journal_id=anchor_journal.id)
        .create(
            {
                "statement_filename": "statement.csv",
                "statement_file": base64.b64encode(oca_content),
                "sheet_mapping_id": mapping.id,
            }
        )
    )
    with Timer() as oca_t:
        oca_wizard.import_file_button()
        env.flush_all()
    env.cr.commit()
    created = env["mpesa.receipt"].search_count([("name", "=like", "FU%")])
    oca_created = env["account.bank.statement.line"].search_count(
        [("journal_id", "=", anchor_journal.id)]
    )
    return {
        "rows": size,
        "ours_s": round(ours_t.seconds, 2),
        "oca_s": round(oca_t.seconds, 2),
        "ours_created": created,
        "oca_created": oca_created,
        "speedup": round(oca_t.seconds / max(1e-9, ours_t.seconds), 2),
    }


def statement_import(env, sizes, full_size):
    mapping = oca_mapping(env)
    anchor_journal = journal_of(env, ANCHOR_JOURNAL_CODE)
    out = {"parse": [], "full": None}
    for size in sizes:
        rows = portal_rows(size)
        as_csv = csv_bytes(rows)
        # OCA's sheet parser reads spreadsheets with xlrd, whose 2.x (the version
        # installed with it) reads only .xls: its anchor reads the same rows as CSV.
        for kind, content in (("csv", as_csv), ("xlsx", xlsx_bytes(rows))):
            figures = time_parse(
                env, mapping, anchor_journal, content, f"statement.{kind}", as_csv
            )
            figures.update(rows=size, format=kind, bytes=len(content))
            figures["anchor_format"] = "csv"
            if kind == "xlsx" and size == max(sizes) and figures["speedup"]:
                figures["ours_peak_mib"] = round(
                    peak_parse(content, "statement.xlsx") / 2**20, 1
                )
            out["parse"].append(figures)
    if full_size:
        out["full"] = time_full_import(env, mapping, full_size)
    return out


# === REPORTS AND THE BOOKS CHECK (synthetic ledger) === #


def main():
    section, db, out_path = sys.argv[1:4]
    sizes = [int(s) for s in sys.argv[4].split(",")] if len(sys.argv) > 4 else []
    with odoo_env(db) as env:
        if section == "configure":
            result = configure(env)
        elif section == "matching":
            result = matching(env, sizes[0], int(sys.argv[5]))
        elif section == "import":
            result = statement_import(env, sizes, int(sys.argv[5]))
        elif section == "reports":
            from bench_reports import reports_and_books

            result = reports_and_books(
                env, sizes, save=lambda figures: write_json(out_path, figures)
            )
        else:
            raise SystemExit(f"unknown section {section}")
    write_json(out_path, result)


if __name__ == "__main__":
    main()
