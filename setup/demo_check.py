"""Does the demo show what the suite is for? The figures behind the four screens a
visitor opens first, read over JSON-RPC as those screens read them:

- the dashboard (Accounting > M-PESA > Dashboard) over the last 60 days and today,
  with the balance M-PESA last reported for each shortcode;
- the analysis (pivot/graph over mpesa.receipt.report) by day and by channel;
- the exception queue: open exceptions, and resolved ones of every resolution;
- the reconciliation screen: unreconciled M-PESA bank lines with ranked suggestions.

Run by setup/demo_history.py at the end of the demo build, or on its own against a
running demo: python setup/demo_check.py [--odoo http://localhost:8069] [--db mpesa_demo]
"""

import argparse
import sys
from datetime import date, timedelta

RESOLUTIONS = ("allocated", "credit", "reversed", "duplicate", "dismissed")


def check_demo(odoo):
    """The list of what is missing (empty: every screen has figures)."""
    problems = []
    today = date.today()
    start = (today - timedelta(days=59)).isoformat()
    figures = odoo("mpesa.dashboard", "get_figures", start, today.isoformat())
    if figures["received"]["count"] < 40:
        problems.append(f"dashboard, 60 days: {figures['received']['count']} payments")
    if len(figures["by_channel"]) < 2:
        problems.append("dashboard: payments by channel missing")
    if not figures["exceptions"]["total"]["count"]:
        problems.append("dashboard: no open exception")
    if not odoo("mpesa.dashboard", "get_figures")["received"]["count"]:
        problems.append("dashboard, today: no payment")
    balances = figures.get("balances") or []
    if not balances:
        problems.append("dashboard: no M-PESA balance shown")
    for balance in balances:
        if not balance["mpesa"].get("date"):
            problems.append(f"dashboard: no M-PESA balance for {balance['label']}")
    days = odoo(
        "mpesa.receipt.report",
        "read_group",
        [],
        ["amount:sum"],
        ["local_date:day"],
        lazy=False,
    )
    if len(days) < 30:
        problems.append(f"analysis: payments on {len(days)} days only")
    problems += check_exceptions(odoo)
    problems += check_reconciliation(odoo)
    return problems


def check_exceptions(odoo):
    problems = []
    groups = odoo(
        "mpesa.exception",
        "read_group",
        [],
        ["kind"],
        ["state", "resolution"],
        lazy=False,
    )
    seen = {(g["state"], g["resolution"]) for g in groups}
    if ("open", False) not in seen:
        problems.append("exception queue: nothing open")
    for resolution in RESOLUTIONS:
        if ("resolved", resolution) not in seen:
            problems.append(f"exception queue: none resolved as {resolution}")
    return problems


def check_reconciliation(odoo):
    lines = odoo(
        "account.bank.statement.line",
        "search_read",
        [("mpesa_receipt_id", "!=", False), ("is_reconciled", "=", False)],
        ["id"],
    )
    if not lines:
        return ["reconciliation: no M-PESA bank line waits for a match"]
    ranked = odoo(
        "mpesa.match.suggestion",
        "search_count",
        [("statement_line_id", "in", [line["id"] for line in lines])],
    )
    if not ranked:
        return ["reconciliation: no ranked suggestion for the waiting lines"]
    return []


def main():
    from demo_history import Odoo

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--odoo", default="http://localhost:8069")
    parser.add_argument("--db", default="mpesa_demo")
    args = parser.parse_args()
    problems = check_demo(Odoo(args.odoo, args.db))
    for problem in problems:
        print(f"MISSING: {problem}")
    print("demo check:", "FAILED" if problems else "every screen has figures")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
