"""Reports and the books check over a synthetic ledger of 100k, then 1M receipts.

A read benchmark only: the receipts, their posted bank moves (two journal items each)
and their reconciled statement lines are bulk-inserted with SQL, at a constant rate of
about 274 receipts a day back from the last day (100k = one year, 1M = ten years), so
that a day, a month and a year hold the same rows at both sizes: the ranges should
cost about the same, whatever the size of the history. Used by bench_ledger.py.
"""

import statistics
from datetime import date, datetime, timedelta

from benchlib import Timer

LAST_DAY = date(2026, 11, 30)
# 23:59 in Nairobi on the last day, in naive UTC as Odoo stores datetimes.
END = datetime(2026, 11, 30, 20, 59)
STEP_SECONDS = 86400 * 365 / 100_000  # 100k receipts a year
RANGES = {
    "day": (LAST_DAY, LAST_DAY),
    "month": (LAST_DAY.replace(day=1), LAST_DAY),
    "year": (LAST_DAY - timedelta(days=364), LAST_DAY),
}
PIVOT_GROUPBYS = ([], ["date:day"], ["channel"], ["date:day", "channel"])
REPEAT = 3

INSERT_RECEIPTS = """
INSERT INTO mpesa_receipt (provider_id, company_id, currency_id, name, shortcode,
       phone, customer_name, reference, channel, seen_by_stk, seen_by_c2b,
       seen_by_query, seen_by_import, state, verification,
       amount, applied_amount, paid_at, kind, reconcile_state, expected_amount,
       recovered, partner_id, create_date, write_date, create_uid, write_uid)
SELECT %(provider)s, %(company)s, %(currency)s, 'SY' || lpad(g::text, 8, '0'),
       %(shortcode)s, '2547****' || lpad((g %% 1000)::text, 3, '0'), 'JOHN',
       'INV' || g, (ARRAY['stk', 'c2b', 'import'])[1 + g %% 3],
       g %% 3 = 0, g %% 3 = 1, FALSE, g %% 3 = 2,
       CASE WHEN g %% 20 = 0 THEN 'applied' ELSE 'received' END, 'verified',
       10 + (g::bigint * 7919) %% 20000, 0,
       %(end)s::timestamp - make_interval(secs => g * %(step)s),
       CASE WHEN g %% 20 = 0 THEN 'charge' ELSE 'payment' END, 'reconciled',
       0, FALSE, (%(partners)s)[1 + g %% %(n_partners)s],
       %(end)s::timestamp - make_interval(secs => g * %(step)s),
       %(end)s::timestamp - make_interval(secs => g * %(step)s), 1, 1
  FROM generate_series(%(first)s, %(last)s) g
"""
# Each receipt's bank move (posted, two journal items) and reconciled statement line,
# as the bank feed leaves them once the money is matched.
INSERT_BOOKS = """
WITH src AS MATERIALIZED (
    SELECT r.id AS rid, r.name, r.paid_at::date AS day,
           CASE WHEN r.kind = 'payment' THEN r.amount ELSE -r.amount END AS amount,
           nextval('account_move_id_seq') AS mid,
           nextval('account_bank_statement_line_id_seq') AS lid
      FROM mpesa_receipt r
     WHERE r.name LIKE 'SY%%' AND r.statement_line_id IS NULL
), moves AS (
    INSERT INTO account_move (id, journal_id, company_id, currency_id, name, ref,
           state, move_type, auto_post, date, statement_line_id, create_date,
           write_date, create_uid, write_uid)
    SELECT mid, %(journal)s, %(company)s, %(currency)s, 'MPBN/SY/' || rid, name,
           'posted', 'entry', 'no', day, lid, now(), now(), 1, 1 FROM src
), lines AS (
    INSERT INTO account_bank_statement_line (id, move_id, journal_id, company_id,
           currency_id, payment_ref, amount, amount_currency, amount_residual,
           is_reconciled, mpesa_receipt_id, internal_index, create_date,
           write_date, create_uid, write_uid)
    SELECT lid, mid, %(journal)s, %(company)s, %(currency)s, name, amount, amount,
           0, TRUE, rid, to_char(day, 'YYYYMMDD') || lpad(lid::text, 10, '0'),
           now(), now(), 1, 1 FROM src
), items AS (
    INSERT INTO account_move_line (move_id, journal_id, company_id, currency_id,
           company_currency_id, account_id, display_type, date, parent_state,
           name, balance, debit, credit, amount_currency, amount_residual,
           amount_residual_currency, reconciled, create_date, write_date,
           create_uid, write_uid)
    SELECT mid, %(journal)s, %(company)s, %(currency)s, %(currency)s,
           CASE WHEN side = 1 THEN %(bank_account)s ELSE %(suspense)s END,
           'product', day, 'posted', name, side * amount,
           GREATEST(side * amount, 0), GREATEST(-side * amount, 0), side * amount,
           0, 0, side = -1, now(), now(), 1, 1
      FROM src, (VALUES (1), (-1)) AS sides(side)
)
UPDATE mpesa_receipt r SET statement_line_id = src.lid FROM src WHERE r.id = src.rid
"""


def insert_ledger_sql(cr, ids, first, last):
    """Receipts ``first``..``last`` (numbered back in time from END), with their
    books; ``ids``: provider, company, currency, shortcode, journal, bank_account,
    suspense, partners. Committed and analysed."""
    cr.execute(
        INSERT_RECEIPTS,
        {
            **ids,
            "end": END,
            "step": STEP_SECONDS,
            "n_partners": len(ids["partners"]),
            "first": first,
            "last": last,
        },
    )
    cr.execute(INSERT_BOOKS, ids)
    cr.connection.commit()
    for table in (
        "mpesa_receipt",
        "account_move",
        "account_move_line",
        "account_bank_statement_line",
    ):
        cr.execute(f"ANALYZE {table}")
    cr.connection.commit()


def insert_ledger(env, first, last):
    provider = env.ref("mpesa_payment.payment_provider_mpesa")
    journal = provider.journal_id
    ids = {
        "provider": provider.id,
        "company": provider.company_id.id,
        "currency": env.ref("base.KES").id,
        "shortcode": provider.mpesa_shortcode,
        "journal": journal.id,
        "bank_account": journal.default_account_id.id,
        "suspense": journal.suspense_account_id.id,
        "partners": env["res.partner"].search([], limit=50).ids,
    }
    insert_ledger_sql(env.cr._cnx.cursor(), ids, first, last)
    env.invalidate_all()


class QueryLog:
    """Every query a call runs, with its time: the slowest is explained afterwards."""

    def __init__(self, cr):
        self.cr, self.queries = cr, []

    def __enter__(self):
        original = self.original = self.cr.execute

        def execute(query, params=None, log_exceptions=True):
            with Timer() as timer:
                result = original(query, params, log_exceptions)
            self.queries.append((timer.seconds, query, params))
            return result

        self.cr.execute = execute
        return self

    def __exit__(self, *exc):
        del self.cr.execute  # the instance attribute: the class method again
        return False

    def slowest(self, count=2):
        return sorted(self.queries, key=lambda q: q[0], reverse=True)[:count]


def explain(cr, query, params):
    cr.execute(SQL_EXPLAIN_PREFIX + _as_text(query), params)
    return "\n".join(row[0] for row in cr.fetchall())


SQL_EXPLAIN_PREFIX = "EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) "


def _as_text(query):
    return query.code if hasattr(query, "code") else str(query)


def _explain_query(cr, query, params):
    if hasattr(query, "params") and params is None:
        params = query.params
    return explain(cr, query, params)


def measure(env, call):
    """Median of REPEAT runs of ``call()``; the slowest queries of the last run, with
    their plans."""
    times = []
    for _ in range(REPEAT):
        env.invalidate_all()
        with QueryLog(env.cr) as log, Timer() as timer:
            call()
        times.append(timer.seconds)
    plans = []
    for seconds, query, params in log.slowest():
        plan = _explain_query(env.cr, query, params)
        plans.append({"ms": round(1000 * seconds, 1), "sql": _as_text(query)[:400]})
        plans[-1]["plan"] = plan
    return {
        "median_ms": round(1000 * statistics.median(times), 1),
        "queries": len(log.queries),
        "slowest": plans,
        "seq_scan_on_receipts": any(
            "Seq Scan on mpesa_receipt" in p["plan"] for p in plans
        ),
    }


def pivot(env, start, end):
    Report = env["mpesa.receipt.report"]
    domain = [
        ("kind", "=", "payment"),
        ("date", ">=", start),
        ("date", "<", end),
    ]
    for groupby in PIVOT_GROUPBYS:
        Report.read_group(
            domain, ["amount:sum", "receipt_count:sum"], groupby, lazy=False
        )


def reports_at(env):
    Dashboard = env["mpesa.dashboard"]
    out = {}
    for name, (first, last) in RANGES.items():
        start, end = Dashboard._utc_bounds(first, last, Dashboard._user_tz())
        out[name] = {
            "rows": env["mpesa.receipt"].search_count(
                [("paid_at", ">=", start), ("paid_at", "<", end)]
            ),
            "dashboard": measure(
                env, lambda f=first, t=last: Dashboard.get_figures(str(f), str(t))
            ),
            "pivot": measure(env, lambda s=start, e=end: pivot(env, s, e)),
        }
    return out


def books_at(env):
    provider = env.ref("mpesa_payment.payment_provider_mpesa")
    result = {}

    def check():
        result["differences"] = len(provider._mpesa_check_books())

    figures = measure(env, check)
    figures["differences"] = result["differences"]
    return figures


def reports_and_books(env, sizes, save=None):
    """``save(figures)`` after each size: a long run keeps what it measured."""
    out = {"sizes": {}}
    done = 0
    for size in sizes:
        with Timer() as timer:
            insert_ledger(env, done + 1, size)
        done = size
        out["sizes"][str(size)] = {
            "insert_s": round(timer.seconds, 1),
            "receipts": env["mpesa.receipt"].search_count([]),
            "reports": reports_at(env),
            "books": books_at(env),
        }
        if save:
            save(out)
    return out
