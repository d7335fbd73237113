"""Turns the JSON figures of a benchmark run into tests/bench/RESULTS.md and the lines
printed at the end of ``setup/bench.sh``: each figure, its anchor, the ratio and the
target. Findings written by hand (profiles, what would meet a missed target) are kept
in tests/bench/FINDINGS.md and appended."""

import itertools
from pathlib import Path

HERE = Path(__file__).resolve().parent
BOOKS_SAME = 1.25  # "the same figures with many receipts in the books": within 25 %


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return a / b


def fmt(value, digits=2):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "**missed**")


class Table:
    def __init__(self, title, note=""):
        self.title, self.note, self.rows = title, note, []

    def add(self, figure, ours, anchor, rat, target, ok):
        self.rows.append((figure, ours, anchor, rat, target, verdict(ok)))

    def markdown(self):
        out = [f"### {self.title}", ""]
        if self.note:
            out += [self.note, ""]
        out += [
            "| figure | ours | anchor | ratio | target | |",
            "|---|---|---|---|---|---|",
        ]
        out += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in self.rows]
        return out + [""]

    def console(self):
        out = [self.title]
        out += [
            f"  {r[0]}: {fmt(r[1])} vs {fmt(r[2])} -> {fmt(r[3])}x"
            f" (target {r[4]}: {r[5]})"
            for r in self.rows
        ]
        return out


# === CALLBACKS === #


def callback_tables(data):
    levels = data.get("levels", {})
    tables = []
    for senders, level in levels.items():
        tables.append(callback_level(f"{senders} concurrent senders", level, senders))
    if data.get("c2b"):
        tables.append(
            c2b_table("C2B during a confirmation burst (50 senders)", data["c2b"])
        )
    if data.get("with_books"):
        size = data.get("books_size")
        title = f"With {size:,} receipts already in the books (50 senders)"
        table = callback_level(title, data["with_books"], "50")
        base = levels.get("50", {}).get("mpesa", {})
        books = data["with_books"]["mpesa"]
        for key, label in (
            ("answer_p99_s", "answer p99 with books / without (s)"),
            ("paid_p99_s", "paid p99 with books / without (s)"),
            ("server_queries_median", "queries per callback with / without"),
        ):
            rat = ratio(books.get(key), base.get(key))
            table.add(
                label,
                books.get(key),
                base.get(key),
                rat,
                f"<= {BOOKS_SAME}",
                rat is not None and rat <= BOOKS_SAME,
            )
        base_tp = base.get("paid_per_s")
        rat = ratio(books.get("paid_per_s"), base_tp)
        table.add(
            "paid per s with / without",
            books.get("paid_per_s"),
            base_tp,
            rat,
            f">= {1 / BOOKS_SAME:.2f}",
            rat is not None and rat >= 1 / BOOKS_SAME,
        )
        tables.append(table)
        if data["with_books"].get("c2b"):
            tables.append(
                c2b_table(
                    f"C2B burst with {size:,} receipts in the books",
                    data["with_books"]["c2b"],
                )
            )
    return tables


def callback_level(title, level, senders):
    mpesa, demo, health = level["mpesa"], level["demo"], level["health"]
    table = Table(
        title,
        "ours: M-PESA STK success callbacks; anchor: payment_demo's "
        "/payment/demo/simulate_payment (or /web/health where said).",
    )
    rat = ratio(mpesa.get("paid_per_s"), demo.get("paid_per_s"))
    table.add(
        "invoices paid per second",
        mpesa.get("paid_per_s"),
        demo.get("paid_per_s"),
        rat,
        ">= 0.5",
        rat is not None and rat >= 0.5,
    )
    rat = ratio(mpesa.get("answer_p99_s"), demo.get("answer_p99_s"))
    target, ok = "-", None
    if str(senders) == "50":
        target, ok = "ours < 0.5 s", mpesa.get("answer_p99_s", 99) < 0.5
    table.add(
        "answer to Safaricom p99 (s)",
        mpesa.get("answer_p99_s"),
        demo.get("answer_p99_s"),
        rat,
        target,
        ok,
    )
    table.add(
        "answer p50 (s)",
        mpesa.get("answer_p50_s"),
        demo.get("answer_p50_s"),
        ratio(mpesa.get("answer_p50_s"), demo.get("answer_p50_s")),
        "-",
        None,
    )
    table.add(
        "answers per second (vs /web/health)",
        mpesa.get("answers_per_s"),
        health.get("answers_per_s"),
        ratio(mpesa.get("answers_per_s"), health.get("answers_per_s")),
        "-",
        None,
    )
    table.add(
        "sent to paid p50 (s)",
        mpesa.get("paid_p50_s"),
        demo.get("paid_p50_s"),
        ratio(mpesa.get("paid_p50_s"), demo.get("paid_p50_s")),
        "-",
        None,
    )
    table.add(
        "sent to paid p99 (s)",
        mpesa.get("paid_p99_s"),
        demo.get("paid_p99_s"),
        ratio(mpesa.get("paid_p99_s"), demo.get("paid_p99_s")),
        "-",
        None,
    )
    table.add(
        "queries per request (median)",
        mpesa.get("server_queries_median"),
        demo.get("server_queries_median"),
        ratio(mpesa.get("server_queries_median"), demo.get("server_queries_median")),
        "-",
        None,
    )
    table.add(
        "server time per request (median s)",
        mpesa.get("server_s_median"),
        demo.get("server_s_median"),
        ratio(mpesa.get("server_s_median"), demo.get("server_s_median")),
        "-",
        None,
    )
    lost = mpesa.get("not_paid", 0) + sum(
        n for s, n in mpesa.get("statuses", {}).items() if s != "200"
    )
    table.add(
        f"lost (non-200 answers + invoices not paid) of {mpesa.get('invoices')}",
        lost,
        demo.get("not_paid"),
        None,
        "0",
        lost == 0,
    )
    return table


def c2b_table(title, c2b):
    val, conf = c2b["validations"], c2b["confirmations"]
    table = Table(
        title,
        "A validation is posted every 100 ms by one more sender "
        "while the confirmations are sent.",
    )
    table.add(
        "validation answer p99 (s)",
        val.get("answer_p99_s"),
        None,
        None,
        "< 1 s",
        val.get("answer_p99_s", 99) < 1,
    )
    table.add(
        "validation answer p50 (s)", val.get("answer_p50_s"), None, None, "-", None
    )
    table.add("validations answered", val.get("requests"), None, None, "-", None)
    table.add(
        "confirmation answer p99 (s)", conf.get("answer_p99_s"), None, None, "-", None
    )
    table.add(
        "confirmations: invoices paid per second",
        conf.get("paid_per_s"),
        None,
        None,
        "-",
        None,
    )
    table.add(
        f"confirmations: invoices not paid of {conf.get('invoices')}",
        conf.get("not_paid"),
        None,
        None,
        "0",
        conf.get("not_paid") == 0,
    )
    return table


# === MATCHING === #


def matching_tables(data):
    runs = sorted(
        (v for k, v in data.items() if k.startswith("matching_")),
        key=lambda v: v["size"],
    )
    if not runs:
        return []
    table = Table(
        "Matching: statement lines against as many open invoices",
        "ours: the suggestions refresh over every unreconciled M-PESA line "
        "(`_mpesa_refresh_suggestions`, what the scheduled action and the button "
        "run; 'engine' = building the matcher + `match_all`); anchor: OCA "
        "`_apply_rules` per line with the installed invoice-matching rules and a "
        "tuned copy (label, no partner required), on a seeded sample of lines.",
    )
    for run in runs:
        size, ours, oca = run["size"], run["ours"], run["oca"]
        best = min(oca.values(), key=lambda v: v["ms_per_line"])
        rat = ratio(best["ms_per_line"], ours["refresh_ms_per_line"])
        target = ">= 100x" if size >= 10000 else "-"
        table.add(
            f"{size:,}: ms per line (refresh / OCA)",
            ours["refresh_ms_per_line"],
            best["ms_per_line"],
            rat,
            target,
            rat is not None and rat >= 100 if size >= 10000 else None,
        )
        table.add(
            f"{size:,}: ms per line (engine / OCA)",
            ours["engine_ms_per_line"],
            best["ms_per_line"],
            ratio(best["ms_per_line"], ours["engine_ms_per_line"]),
            "-",
            None,
        )
        best_q = max(oca.values(), key=lambda v: v["quality"]["correct_pct"])
        table.add(
            f"{size:,}: correct top match %",
            ours["quality"]["correct_pct"],
            best_q["quality"]["correct_pct"],
            None,
            ">= 90",
            ours["quality"]["correct_pct"] >= 90,
        )
        table.add(
            f"{size:,}: wrong top match %",
            ours["quality"]["wrong_pct"],
            best_q["quality"]["wrong_pct"],
            None,
            "<= 1",
            ours["quality"]["wrong_pct"] <= 1,
        )
        table.add(
            f"{size:,}: ours on OCA's sample: correct / wrong %",
            f"{ours['quality_on_anchor_sample']['correct_pct']} / "
            f"{ours['quality_on_anchor_sample']['wrong_pct']}",
            f"{best_q['quality']['correct_pct']} / {best_q['quality']['wrong_pct']}",
            None,
            "-",
            None,
        )
    for small, large in itertools.pairwise(runs):
        growth = ratio(large["ours"]["refresh_s"], small["ours"]["refresh_s"])
        scale = large["size"] / small["size"]
        limit = 1.5 * scale  # n log n: 10 times the data, at most 15 times the time
        table.add(
            f"growth {small['size']:,} -> {large['size']:,} (refresh time)",
            large["ours"]["refresh_s"],
            small["ours"]["refresh_s"],
            growth,
            f"<= {limit:g}",
            growth is not None and growth <= limit,
        )
        engine = ratio(
            large["ours"]["engine_build_s"] + large["ours"]["engine_match_s"],
            small["ours"]["engine_build_s"] + small["ours"]["engine_match_s"],
        )
        table.add(
            f"growth {small['size']:,} -> {large['size']:,} (engine time)",
            None,
            None,
            engine,
            f"<= {limit:g}",
            engine is not None and engine <= limit,
        )
    return [table]


# === IMPORT === #


def import_tables(data):
    run = data.get("import")
    if not run:
        return []
    table = Table(
        "Statement import: org-portal rows",
        "Reading the file into rows: ours `statement.parse_statement` (CSV or "
        "XLSX); anchor OCA `account_statement_import_sheet_file`'s parser with a "
        "mapping of the portal's columns, reading the same rows as CSV (its xlrd 2.x "
        "reads no .xlsx). 'Full import' runs both wizards end to end (records "
        "created).",
    )
    for row in run["parse"]:
        rat = row["speedup"]
        if rat is None:
            table.add(
                f"{row['rows']:,} rows {row['format'].upper()}: refused",
                row.get("refused", "")[:90],
                None,
                None,
                ">= 2x",
                False,
            )
            continue
        table.add(
            f"{row['rows']:,} rows {row['format'].upper()}: read (s)",
            row["ours_s"],
            row["oca_s"],
            rat,
            ">= 2x",
            rat >= 2,
        )
        if "ours_peak_mib" in row:
            table.add(
                f"{row['rows']:,} rows XLSX: peak memory (MiB, tracemalloc)",
                row["ours_peak_mib"],
                None,
                None,
                "< 300",
                row["ours_peak_mib"] < 300,
            )
    full = run.get("full")
    if full:
        table.add(
            f"{full['rows']:,} rows CSV: full import (s)",
            full["ours_s"],
            full["oca_s"],
            full["speedup"],
            ">= 2x",
            full["speedup"] >= 2,
        )
    return [table]


# === REPORTS AND BOOKS CHECK === #


def reports_tables(data):
    run = data.get("reports")
    if not run:
        return [], []
    sizes = sorted(run["sizes"], key=int)
    small, large = run["sizes"][sizes[0]], run["sizes"][sizes[-1]]
    table = Table(
        f"Reports over {int(sizes[0]):,} and {int(sizes[-1]):,} ledger records",
        "Median of 3 runs. Same daily rate at both sizes (the larger one is a longer "
        "history), so a range holds the same rows at both; the anchor is the same "
        "range at the smaller size.",
    )
    for name in ("day", "month", "year"):
        for kind in ("dashboard", "pivot"):
            a, b = large["reports"][name][kind], small["reports"][name][kind]
            rat = ratio(a["median_ms"], b["median_ms"])
            seq = " (seq scan)" if a["seq_scan_on_receipts"] else ""
            table.add(
                f"{name} {kind} ms{seq}",
                a["median_ms"],
                b["median_ms"],
                rat,
                "<= 3x",
                rat is not None and rat <= 3,
            )
    books = Table(
        "Books check", "`payment.provider._mpesa_check_books()`, median of 3."
    )
    a, b = large["books"], small["books"]
    growth = ratio(a["median_ms"], b["median_ms"])
    limit = int(sizes[-1]) / int(sizes[0])
    books.add(
        f"{int(sizes[-1]):,} vs {int(sizes[0]):,} receipts (ms)",
        a["median_ms"],
        b["median_ms"],
        growth,
        f"<= {limit:g}x (linear)",
        growth is not None and growth <= limit,
    )
    books.add(
        "differences found",
        a["differences"],
        b["differences"],
        None,
        "0",
        a["differences"] == 0 and b["differences"] == 0,
    )
    return [table, books], plans(run, sizes)


def plans(run, sizes):
    out = ["## Query plans (slowest queries, largest size)", ""]
    large = run["sizes"][sizes[-1]]
    for name in ("day", "month", "year"):
        for kind in ("dashboard", "pivot"):
            for query in large["reports"][name][kind]["slowest"][:1]:
                out += [
                    f"### {name} {kind}: {query['ms']} ms",
                    "",
                    "```",
                    query["sql"][:300],
                    "",
                    query["plan"],
                    "```",
                    "",
                ]
    for query in large["books"]["slowest"][:2]:
        out += [
            f"### books check: {query['ms']} ms",
            "",
            "```",
            query["sql"][:300],
            "",
            query["plan"],
            "```",
            "",
        ]
    return out


# === THE PAGE === #


def header(machine, data):
    out = [
        "# Benchmark results",
        "",
        (
            "Written by `setup/bench.sh` (tests/bench/run_bench.py). Every ratio compares "
            "two figures measured in the same run on the same machine."
        ),
        "",
        f"- Date: {machine.get('date')}",
        (
            f"- Machine: {machine.get('cores')} cores ({machine.get('cpu')}), "
            f"{machine.get('memory')} memory, load average at start {machine.get('load')}."
        ),
        (
            "  **The machine was shared**: other engineers ran Odoo installs and test "
            "suites on the same 2 cores during the run, so absolute times are noisy; "
            "compare the ratios."
        ),
        (
            f"- Software: Python {machine.get('python')}, {machine.get('postgresql')}, "
            f"Odoo 18.0; addons at commit {machine.get('commit')} "
            f"(read from {machine.get('addons_root')})."
        ),
        f"- Sizes: {machine.get('settings')}",
        "",
    ]
    out += [
        (
            "Ratio column: ours divided by the anchor, except for times where we are "
            "compared as a speed-up (matching ms per line, import read times): there it "
            "is the anchor's time divided by ours (how many times faster). '-' where a "
            "figure has no anchor."
        ),
        "",
    ]
    if machine.get("note"):
        out += [machine["note"], ""]
    cb = data.get("callbacks")
    if cb:
        out += [
            (
                "Callbacks: a 4-worker Odoo (plus two cron workers), "
                f"{cb.get('callbacks_per_level')} distinct payments per run, each for "
                "its own posted KES invoice; "
                "the emulator's exact callback bytes, a new connection per callback. "
                "'paid' is polled in the database (payment_state paid or in_payment), "
                "whatever does the work. Books check after the runs: "
                f"{cb.get('check_books')} differences."
            ),
            "",
        ]
    return out


def render(data):
    machine = data.pop("machine", {})
    tables = []
    tables += callback_tables(data.get("callbacks", {}))
    tables += matching_tables(data)
    tables += import_tables(data)
    report_tables, plan_lines = reports_tables(data)
    tables += report_tables
    lines = header(machine, data)
    lines += ["## Figures", ""]
    for table in tables:
        lines += table.markdown()
    findings = HERE / "FINDINGS.md"
    if findings.exists():
        lines += [findings.read_text().strip(), ""]
    lines += plan_lines
    console = []
    for table in tables:
        console += table.console()
    return "\n".join(lines) + "\n", console
