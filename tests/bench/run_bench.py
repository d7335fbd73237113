"""Runs every benchmark on copies of a built database, prints each figure with its
ratio against the anchor measured in the same run and its target, and writes
tests/bench/RESULTS.md. Called by ``setup/bench.sh`` (which builds the database).

    python tests/bench/run_bench.py DB [--report-only]

``--report-only`` writes RESULTS.md again from the JSON files of the last run
(.local/bench/*.json). See tests/bench/README.md for the environment variables.
"""

import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_report_md import render
from benchlib import REPO, copy_database, drop_database, read_json, write_json

PY = sys.executable
OUT = REPO / ".local" / "bench"
QUICK = os.environ.get("BENCH_QUICK") == "1"
DEFAULTS = {
    "BENCH_SENDERS": "4,8" if QUICK else "10,50,100",
    "BENCH_CALLBACKS": "16" if QUICK else "200",
    "BENCH_BOOKS": "2000" if QUICK else "100000",
    "BENCH_MATCH_SIZES": "300,3000" if QUICK else "1000,10000",
    "BENCH_OCA_SAMPLE": "30" if QUICK else "200",
    "BENCH_IMPORT_SIZES": "1000,3000" if QUICK else "10000,99990",
    "BENCH_IMPORT_FULL": "100" if QUICK else "1000",
    "BENCH_LEDGER_SIZES": "2000,20000" if QUICK else "100000,1000000",
}
SECTIONS = ("callbacks", "matching", "import", "reports")


def setting(name):
    return os.environ.get(name) or DEFAULTS[name]


def run(args, log_name):
    """A benchmark in its own process (its own Odoo registry); its log kept."""
    log = OUT / f"{log_name}.log"
    started = time.monotonic()
    with open(log, "w") as handle:
        # The sizes as this run resolved them (BENCH_QUICK included): the callback
        # benchmark reads its own from the environment.
        sizes = {name: setting(name) for name in DEFAULTS}
        result = subprocess.run(
            [PY, *args],
            cwd=REPO,
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=False,
            env={**os.environ, **sizes},
        )
    seconds = time.monotonic() - started
    print(f"  {log_name}: exit {result.returncode} in {seconds:.0f} s (log {log})")
    if result.returncode:
        print("\n".join(log.read_text(errors="replace").splitlines()[-15:]))
    return result.returncode == 0


def on_copy(template, name, make_args, log_name):
    """``make_args(db)`` run on a fresh copy of ``template``, dropped afterwards."""
    db = copy_database(template, name)
    try:
        return run(make_args(db), log_name)
    finally:
        drop_database(db)


def ledger(section, out, *extra):
    script = "tests/bench/bench_ledger.py"
    return lambda db: [script, section, db, str(OUT / out), *extra]


STALE = {
    "callbacks": ("callbacks.json",),
    "matching": ("matching_*.json",),
    "import": ("import.json",),
    "reports": ("reports.json",),
}


def run_sections(db, sections):
    for (
        section
    ) in sections:  # figures of an earlier run would be reported as this one's
        for pattern in STALE.get(section, ()):
            for path in OUT.glob(pattern):
                path.unlink()
    base = f"{db}_base"
    copy_database(db, base)
    run(ledger("configure", "configure.json")(base), "configure")
    try:
        if "callbacks" in sections:
            args = ["tests/bench/bench_callbacks.py", db, str(OUT / "callbacks.json")]
            run(args, "callbacks")
        if "matching" in sections:
            sample = setting("BENCH_OCA_SAMPLE")
            for size in setting("BENCH_MATCH_SIZES").split(","):
                name = f"matching_{size}"
                args = ledger("matching", f"{name}.json", size, sample)
                on_copy(base, f"{db}_match", args, name)
        if "import" in sections:
            sizes, full = setting("BENCH_IMPORT_SIZES"), setting("BENCH_IMPORT_FULL")
            args = ledger("import", "import.json", sizes, full)
            on_copy(base, f"{db}_import", args, "import")
        if "reports" in sections:
            args = ledger("reports", "reports.json", setting("BENCH_LEDGER_SIZES"))
            on_copy(base, f"{db}_reports", args, "reports")
    finally:
        drop_database(base)


def machine():
    def shell(cmd):
        try:
            return subprocess.run(
                cmd, shell=True, capture_output=True, text=True, check=False
            ).stdout.strip()
        except OSError:
            return ""

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": shell("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip(),
        "cores": os.cpu_count(),
        "memory": shell("free -h | awk '/Mem:/ {print $2}'"),
        "load": shell("cut -d' ' -f1-3 /proc/loadavg"),
        "python": platform.python_version(),
        "postgresql": shell("psql --version"),
        # BENCH_COMMIT names the commit exported to BENCH_ADDONS_ROOT, if any
        "commit": os.environ.get("BENCH_COMMIT")
        or shell(f"git -C {REPO} rev-parse --short HEAD"),
        "addons_root": os.environ.get("BENCH_ADDONS_ROOT") or str(REPO),
        "settings": {name: setting(name) for name in DEFAULTS},
    }


def collect():
    data = {}
    for path in sorted(OUT.glob("*.json")):
        data[path.stem] = read_json(path)
    return data


def main():
    db = sys.argv[1]
    OUT.mkdir(parents=True, exist_ok=True)
    sections = (os.environ.get("BENCH_SECTIONS") or ",".join(SECTIONS)).split(",")
    if "--report-only" not in sys.argv:
        info = machine()
        write_json(OUT / "machine.json", info)
        print(f"benchmarks on {db}: {', '.join(sections)}")
        run_sections(db, sections)
    text, lines = render(collect())
    (HERE / "RESULTS.md").write_text(text)
    print("\n".join(lines))
    print(f"\nwritten: {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
