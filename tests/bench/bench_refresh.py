"""The matching benchmark's refresh alone, repeatable: the same data as
``bench_ledger.py matching`` built once, then ``_mpesa_refresh_suggestions`` run on
it as often as wanted, each run rolled back (so every run starts from the same rows).

    python tests/bench/bench_refresh.py gen DB SIZE IDS.json
    python tests/bench/bench_refresh.py run DB IDS.json [PROFILE.prof]
    python tests/bench/bench_refresh.py diff BEFORE.prof[,...] AFTER.prof[,...] [TOP]

``gen`` configures a freshly installed database (``setup/bench.sh``'s install line)
and makes the matching section's customers, invoices, receipts and anchor lines for
SIZE (same seed, same generator); ``run`` prints one JSON line: wall and CPU seconds
of this process, CPU seconds of its PostgreSQL backend (from /proc), of the garbage
collector, queries, the suggestions made (count and digest); with PROFILE it runs
under cProfile and saves the stats; with REFRESH_IN_C=1 under valgrind, see
``in_c_frame``; with REFRESH_REPEAT=N, N times in the one process. ``diff`` compares two saved
profiles, or two sets of them (each function's least time over a set's runs):
functions on one side only, call counts that differ, top cumulative times.
Used for issue 14's before/after comparison (tests/bench/FINDINGS.md); with
BENCH_ADDONS_ROOT it reads the addons of another tree, as ``setup/bench.sh`` does.
"""

import cProfile
import gc
import json
import os
import pstats
import random
import re
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ledger as bl
from benchlib import odoo_env


def generate(env, size):
    """``bench_ledger.matching``'s data, without its measurements."""
    bl.configure(env)
    rng = random.Random(bl.SEED + size)
    partners = bl.make_partners(env, rng, max(10, size // 3))
    invoices = bl.make_invoices(env, rng, partners, size)
    paid = bl.payments(rng, invoices, partners)
    lines = bl.make_receipts(env, bl.provider_of(env), paid)
    bl.make_anchor_lines(env, paid)
    env.cr.commit()
    return lines.ids


def backend_cpu(env):
    """CPU seconds (user + system) of this cursor's PostgreSQL backend so far."""
    env.cr.execute("SELECT pg_backend_pid()")
    pid = env.cr.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class GcClock:
    """CPU seconds spent in the garbage collector, and collections by generation."""

    def __init__(self):
        self.seconds, self.collections, self._start = 0.0, [0, 0, 0], None

    def __call__(self, phase, info):
        if phase == "start":
            self._start = time.process_time()
        elif self._start is not None:
            self.seconds += time.process_time() - self._start
            self.collections[info["generation"]] += 1

    def __enter__(self):
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc):
        gc.callbacks.remove(self)
        return False


def in_c_frame(function):
    """``function()`` called from C, through a ctypes callback (libffi's closure), so
    that ``valgrind --tool=callgrind --collect-atstart=no --toggle-collect=closure_fcn``
    counts the instructions of this call alone: a count that other sessions' load
    does not change."""
    import ctypes

    result, errors = [], []

    def call():
        try:
            result.append(function())
        except Exception as error:  # noqa: BLE001 (raised again below, from Python)
            errors.append(error)

    callback = ctypes.CFUNCTYPE(None)(call)
    callback()  # ctypes calls it through libffi: closure_fcn is on the C stack
    if errors:
        raise errors[0]
    return result[0]


def work(env, lines):
    lines._mpesa_refresh_suggestions(auto=False)
    env.flush_all()


def refresh(env, ids, profile_path=None):
    """One refresh as the benchmark times it (caches cleared, flushed at the end)."""
    lines = env["account.bank.statement.line"].browse(ids)
    env.invalidate_all()
    load = Path("/proc/loadavg").read_text().split()[:3]
    pg_cpu = backend_cpu(env)
    queries = env.cr.sql_log_count
    profiler = cProfile.Profile() if profile_path else None
    tracked = len(gc.get_objects())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    wall, cpu = time.perf_counter(), time.process_time()
    with GcClock() as gc_clock:
        if profiler:
            profiler.enable()
        if os.environ.get("REFRESH_IN_C"):
            in_c_frame(lambda: work(env, lines))
        else:
            work(env, lines)
        if profiler:
            profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_SELF)
    queries = env.cr.sql_log_count - queries
    pg_cpu = backend_cpu(env) - pg_cpu
    env.cr.execute(
        "SELECT count(*), md5(string_agg(concat_ws('|', statement_line_id, res_model,"
        " name, score, sequence, amount_match, reasons), ',' ORDER BY"
        " statement_line_id, sequence)) FROM mpesa_match_suggestion"
    )
    suggestions, digest = env.cr.fetchone()
    env.cr.rollback()
    if profiler:
        profiler.dump_stats(profile_path)
    return {
        "lines": len(ids),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "user_s": round(after.ru_utime - usage.ru_utime, 3),
        "sys_s": round(after.ru_stime - usage.ru_stime, 3),
        "page_faults": after.ru_minflt - usage.ru_minflt,
        "peak_rss_mib": round(after.ru_maxrss / 1024, 1),
        "pg_cpu_s": round(pg_cpu, 3),
        "gc_s": round(gc_clock.seconds, 3),
        "gc_collections": gc_clock.collections,
        "tracked_objects": tracked,
        "queries": queries,
        "suggestions": suggestions,
        "suggestions_md5": digest,
        "load_at_start": load,
    }


def label(func):
    """file(function), without the tree's path nor the line number (our files'
    lines moved in the refactor): lambdas and comprehensions of a file add up."""
    filename, _line, name = func
    if filename.startswith("~"):
        return re.sub(r" at 0x[0-9a-f]+", "", name)
    return f"{'/'.join(Path(filename).parts[-2:])}({name})"


def load_one(path):
    """{label: (calls, own s, cumulative s)} of one saved profile."""
    out = {}
    for func, (_cc, nc, tt, ct, _callers) in pstats.Stats(str(path)).stats.items():
        calls, own, cumulative = out.get(label(func), (0, 0.0, 0.0))
        out[label(func)] = (calls + nc, own + tt, cumulative + ct)
    return out


def load(paths):
    """Profiles of one side (comma-separated): the call counts (the same in every
    run, or the function is reported) and each function's least times over the runs,
    the least disturbed by other sessions."""
    runs = [load_one(path) for path in paths.split(",")]
    out = {}
    for key in set().union(*runs):
        seen = [run.get(key, (0, 0.0, 0.0)) for run in runs]
        if len({calls for calls, _own, _cum in seen}) > 1:
            print(f"calls differ between runs of {paths}: {key} {seen}")
        out[key] = (
            seen[0][0],
            min(own for _c, own, _cum in seen),
            min(cum for _c, _own, cum in seen),
        )
    return out


def diff(before_paths, after_paths, top):
    """Markdown: functions of one side only, call counts that differ, the top
    functions by cumulative time."""
    before, after = load(before_paths), load(after_paths)
    print(f"Functions: before {len(before)}, after {len(after)}; calls: before", end="")
    print(f" {sum(v[0] for v in before.values())}, after", end="")
    print(f" {sum(v[0] for v in after.values())}\n")
    print("| Function | Calls before | Calls after | Cumulative s before | after |")
    print("|---|---|---|---|---|")
    missing = (0, 0.0, 0.0)
    changed = [k for k in set(before) | set(after) if before.get(k) != after.get(k)]
    changed = [
        k for k in changed if before.get(k, missing)[0] != after.get(k, missing)[0]
    ]
    for key in sorted(changed, key=lambda k: -after.get(k, before.get(k))[2]):
        b, a = before.get(key, missing), after.get(key, missing)
        print(f"| `{key}` | {b[0]} | {a[0]} | {b[2]:.3f} | {a[2]:.3f} |")
    print(f"\nTop {top} by cumulative time (after):\n")
    print("| Function | Calls before | Calls after | Cumulative s before | after |")
    print("|---|---|---|---|---|")
    for key in sorted(after, key=lambda k: -after[k][2])[:top]:
        b, a = before.get(key, missing), after[key]
        print(f"| `{key}` | {b[0]} | {a[0]} | {b[2]:.3f} | {a[2]:.3f} |")


def main():
    command = sys.argv[1]
    if command == "diff":
        top = int(sys.argv[4]) if len(sys.argv) > 4 else 40
        diff(sys.argv[2], sys.argv[3], top)
        return
    db = sys.argv[2]
    with odoo_env(db) as env:
        if command == "gen":
            ids = generate(env, int(sys.argv[3]))
            Path(sys.argv[4]).write_text(json.dumps(ids))
            return
        ids = json.loads(Path(sys.argv[3]).read_text())
        profile_path = sys.argv[4] if len(sys.argv) > 4 else None
        # REFRESH_REPEAT=N: N runs in this process (the first loads Odoo's caches)
        for _run in range(int(os.environ.get("REFRESH_REPEAT") or 1)):
            print(json.dumps(refresh(env, ids, profile_path)), flush=True)


if __name__ == "__main__":
    main()
