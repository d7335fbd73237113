"""Read an odoo-bin test log; print "passed failed skipped".

Counts what Odoo's runner reports, and also fails the run for what it does not count:
ERROR/CRITICAL lines outside tests (a module that did not load) and skipped browser
tours (Odoo skips a tour when Chromium or websocket-client is missing: not a pass).
"""

import re
import sys

SUMMARY = re.compile(
    r"(\d+) failed, (\d+) error\(s\) of (\d+) tests when loading database"
)
# Odoo 18 logs a skip under the test's own module logger (odoo/tests/result.py,
# addSkip), a skipped class under odoo.tests.suite ("skipped setUpClass (...)").
SKIP = re.compile(r"^\S+ \S+ \d+ INFO \S+ [\w.]+: skipped (.*)")
LEVEL = re.compile(r"^\S+ \S+ \d+ (ERROR|CRITICAL) ")
TOUR_SKIP = re.compile(r"websocket|chrom|browser|tour", re.I)


def main(path, rc):
    failed = errors = run = skipped = tour_skips = stray_errors = class_skips = 0
    in_summary = False
    with open(path, encoding="utf-8", errors="replace") as log:
        for line in log:
            m = SUMMARY.search(line)
            if m:
                failed, errors, run = map(int, m.groups())
                in_summary = True
                continue
            m = SKIP.search(line)
            if m:
                if m.group(1).startswith("setUpClass"):
                    class_skips += 1  # its tests never started: not in the run count
                else:
                    skipped += 1
                if TOUR_SKIP.search(m.group(1)):
                    tour_skips += 1
                    print(
                        f"tour skipped (counts as failed): {m.group(1)}",
                        file=sys.stderr,
                    )
            if LEVEL.match(line) and ".tests" not in line and not in_summary:
                stray_errors += 1
                print(f"error outside tests: {line.strip()[:300]}", file=sys.stderr)
    bad = failed + errors + tour_skips
    if run == 0 and not bad:
        print("odoo-bin ran no test (did the modules install?)", file=sys.stderr)
        bad = 1
    # Errors logged while tests run are counted by the runner; others are ours to count.
    bad += stray_errors if failed + errors == 0 else 0
    if int(rc) != 0 and bad == 0:
        print(f"odoo-bin exited with {rc}", file=sys.stderr)
        bad = 1
    passed = max(run - failed - errors - skipped, 0)
    print(passed, bad, skipped + class_skips - tour_skips)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
