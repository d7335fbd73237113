"""Benchmark of mpesa_reconciliation/matching.py against a naive O(N*M) scorer.

Run on demand (not collected by pytest or Odoo), without Odoo:

    python tests/bench/bench_matching.py [--candidates 20000] [--lines 20000]
                                         [--naive-lines 100] [--seed 2026]

See tests/bench/README.md for what it prints.
"""

import argparse
import hashlib
import importlib.util
import random
import string
import sys
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load(name, path):
    """A module by file path: no Odoo, no addon package needed."""
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and imports look it up
    spec.loader.exec_module(module)
    return module


def load_matching():
    """matching.py and the plain-Python mpesa_payment modules it imports."""
    load("odoo.addons.mpesa_payment.daraja.phone", "mpesa_payment/daraja/phone.py")
    load("odoo.addons.mpesa_payment.references", "mpesa_payment/references.py")
    return load("mpesa_matching_bench", "mpesa_reconciliation/matching.py")


m = load_matching()


# The naive matcher's rules, written plainly (the product indexes them instead).
def name_matches(line_tokens, partner_tokens):
    """Two shared tokens, or the partner's only token: a first name alone is no one."""
    if not line_tokens or not partner_tokens:
        return False
    return len(line_tokens & partner_tokens) >= min(2, len(partner_tokens))


def osa_distance(a, b, max_distance):
    """OSA distance of a and b, or max_distance + 1 once it must exceed it."""
    if abs(len(a) - len(b)) > max_distance:
        return max_distance + 1
    for _key, distance in m.within_distance([a], len(a), b, max_distance):
        return distance
    return max_distance + 1


FIRST = ("MARY", "JOHN", "PETER", "GRACE", "JAMES", "ANN", "DAVID", "JANE", "JOSEPH")
FIRST += ("ESTHER", "SAMUEL", "RUTH", "DANIEL", "FAITH", "PAUL", "MERCY", "GEORGE")
FIRST += ("LUCY", "MOSES", "SARAH", "BRIAN", "NANCY", "KEVIN", "JOY", "DENNIS", "ALICE")
LAST = ("KAMAU", "OTIENO", "WANJIRU", "MWANGI", "ACHIENG", "KIPROTICH", "NJOROGE")
LAST += ("WAMBUI", "OCHIENG", "CHEBET", "KARIUKI", "AKINYI", "MUTUA", "NYAMBURA")
LAST += ("KIMANI", "ODHIAMBO", "WEKESA", "NJERI", "MUSYOKA", "ATIENO", "KIPLAGAT")
LAST += ("MOKAYA", "GITHINJI", "ADHIAMBO", "OMONDI", "MUTISO", "KOECH", "WANJALA")
START = date(2026, 1, 1)
TYPO_CHARS = string.ascii_uppercase + string.digits


def typo(rng, text, edits):
    """text with `edits` random substitutions, deletions, insertions or swaps."""
    chars = list(text)
    for _ in range(edits):
        op = rng.randrange(4)
        pos = rng.randrange(len(chars))
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
    """The way customers type it: case, spaces and dashes vary."""
    style = rng.randrange(4)
    if style == 0:
        return reference.lower()
    if style == 1:
        return reference.replace("/", " ")
    if style == 2:
        return reference.replace("/", "-")
    return reference


def generate_partners(rng, n_partners):
    """Names, phones (07.. with spaces, as typed in Odoo) and some account numbers."""
    names, phones, account_numbers = {}, {}, {}
    used = set()
    for partner_id in range(1, n_partners + 1):
        parts = [rng.choice(FIRST), rng.choice(LAST)]
        if rng.random() < 0.4:
            parts.insert(1, rng.choice(FIRST + LAST))
        names[partner_id] = " ".join(p.title() for p in parts)
        numbers = []
        for _ in range(1 if rng.random() < 0.85 else 2):
            msisdn = f"2547{rng.randrange(10**8):08d}"
            while msisdn in used:
                msisdn = f"2547{rng.randrange(10**8):08d}"
            used.add(msisdn)
            numbers.append(f"0{msisdn[3:6]} {msisdn[6:9]} {msisdn[9:]}")
        if rng.random() < 0.9:
            phones[partner_id] = numbers
        if rng.random() < 0.3:
            account_numbers[partner_id] = f"ACC-{partner_id:06d}"
    return names, phones, account_numbers


def generate_candidates(rng, n_candidates, names, account_numbers):
    """60% invoices, 25% sale orders, 15% subscriptions, numbered in sequence."""
    candidates = []
    counters = {"account.move": 0, "sale.order": 0, "sale.subscription": 0}
    for _ in range(n_candidates):
        roll = rng.random()
        model = (
            "account.move"
            if roll < 0.6
            else "sale.order"
            if roll < 0.85
            else "sale.subscription"
        )
        counters[model] += 1
        number = counters[model]
        partner_id = rng.randrange(1, len(names) + 1)
        references = []
        if model == "account.move":
            name = f"INV/2026/{number:05d}"
            references.append(name)  # payment_reference
        elif model == "sale.order":
            name = f"S{number:05d}"
        else:
            name = f"SUB/{number:04d}"
            references.append(f"SA{rng.randrange(10**6):06d}")  # its account number
        if partner_id in account_numbers:
            references.append(account_numbers[partner_id])
        candidates.append(
            m.Candidate(
                model=model,
                id=number,
                name=name,
                partner_id=partner_id,
                partner_name=names[partner_id],
                amount_due=Decimal(rng.randrange(100, 50000))
                + Decimal(rng.choice((0, 50))) / 100,
                date=START + timedelta(rng.randrange(120)),
                references=tuple(references),
            )
        )
    return candidates


def line_reference(rng, target, related):
    """45% its name as typed, 15% with 1-2 typos, 10% an account number, else none."""
    roll = rng.random()
    if not related:
        return rng.choice(("", "PAYMENT", f"X{rng.randrange(10**7)}"))
    if roll < 0.45:
        return styled(rng, target.name)
    if roll < 0.60:
        return typo(rng, m.normalize_reference(target.name), rng.choice((1, 1, 2)))
    if roll < 0.70 and len(target.references) > 1:
        return target.references[-1]
    return rng.choice(("", "", "PAYMENT", "school fees"))


def line_phone(rng, msisdn):
    """30% plain, 30% hashed (C2B v1), 25% masked (C2B v2), 15% none."""
    roll = rng.random()
    if roll < 0.30:
        return msisdn
    if roll < 0.60:
        return hashlib.sha256(msisdn.encode()).hexdigest()
    if roll < 0.85:
        return f"{msisdn[:4]}****{msisdn[-3:]}"
    return ""


def line_amount(rng, due):
    """65% exact, 10% within tolerance, 15% half, 10% more."""
    roll = rng.random()
    if roll < 0.10:
        return due + Decimal(rng.choice((-50, 50, 100))) / 100
    if roll < 0.25:
        return (due / 2).quantize(Decimal("0.01"))
    if roll < 0.35:
        return due + rng.randrange(100, 5000)
    return due


def generate(n_candidates, n_lines, seed):
    """Seeded data: (candidates, partner phones, partner names, lines, {line: target})."""
    rng = random.Random(seed)
    names, phones, account_numbers = generate_partners(rng, max(10, n_candidates // 3))
    candidates = generate_candidates(rng, n_candidates, names, account_numbers)
    lines, targets = [], {}
    for line_id in range(1, n_lines + 1):
        target = rng.choice(candidates)
        related = rng.random() < 0.92  # else a payment for nothing open
        reference = line_reference(rng, target, related)
        msisdn = f"2547{rng.randrange(10**8):08d}"
        if related and target.partner_id in phones:
            msisdn = m.plain_msisdn(phones[target.partner_id][0])
        name = ""
        if related and rng.random() < 0.7:
            words = names[target.partner_id].upper().split()
            name = words[0] if rng.random() < 0.3 else " ".join(words)
        lines.append(
            m.Line(
                id=line_id,
                amount=line_amount(rng, target.amount_due),
                reference=reference,
                date=target.date + timedelta(rng.randrange(0, 40)),
                phone=line_phone(rng, msisdn),
                customer_name=name,
            )
        )
        if related:
            targets[line_id] = (target.model, target.id)
    return candidates, phones, names, lines, targets


class Naive:
    """The straightforward way: score every candidate for every line.

    Per-record work that any implementation does once (normalised references,
    normalised phones and their hashes, name tokens) is done once here too;
    what it lacks are the indexes, so each line costs O(candidates + partners).
    """

    def __init__(self, candidates, partner_phones, partner_names, config):
        self.config = config
        self.candidates = [(c, m.candidate_keys(c)) for c in candidates]
        self.msisdns = {
            p: {m.plain_msisdn(x) for x in phones} - {""}
            for p, phones in partner_phones.items()
        }
        self.hashes = {
            p: {m.msisdn_hash(x) for x in s} for p, s in self.msisdns.items()
        }
        names = {c.partner_id: c.partner_name for c in candidates}
        names.update(partner_names)
        self.tokens = {p: m.name_tokens(n) for p, n in names.items()}

    def partner_rule(self, line, partner_id, masked_partner):
        if line.partner_id and line.partner_id == partner_id:
            return "partner_line"
        phone = line.phone.strip()
        kind = m.phone_kind(phone)
        if kind == "plain" and m.plain_msisdn(phone) in self.msisdns.get(
            partner_id, ()
        ):
            return "partner_phone"
        if kind == "hashed" and phone.lower() in self.hashes.get(partner_id, ()):
            return "partner_hashed_phone"
        if kind == "masked" and masked_partner == partner_id:
            return "partner_masked_phone"
        if name_matches(m.name_tokens(line.customer_name), self.tokens.get(partner_id)):
            return "partner_name"
        return None

    def masked_partner(self, line):
        parts = (
            m.masked_parts(line.phone) if m.phone_kind(line.phone) == "masked" else None
        )
        if not parts:
            return None
        head, tail = parts
        fits = {
            p
            for p, msisdns in self.msisdns.items()
            for x in msisdns
            if x.startswith(head) and x.endswith(tail)
        }
        return fits.pop() if len(fits) == 1 else None

    def decide(self, line):
        config = self.config
        k = config.fuzzy_max_distance
        key = m.normalize_reference(line.reference)
        exact_somewhere = bool(key) and any(key in keys for _c, keys in self.candidates)
        fuzzy = (
            bool(key)
            and not exact_somewhere
            and k > 0
            and len(key) >= m.FUZZY_MIN_LENGTH
        )
        masked_partner = self.masked_partner(line)
        ranked = []
        for candidate, keys in self.candidates:
            distance = None
            if key in keys:
                distance = 0
            elif fuzzy:
                best = min(
                    (
                        osa_distance(x, key, k)
                        for x in keys
                        if len(x) >= m.FUZZY_MIN_LENGTH
                    ),
                    default=k + 1,
                )
                distance = best if best <= k else None
            rule = self.partner_rule(line, candidate.partner_id, masked_partner)
            suggestion = m.score_candidate(line, candidate, distance, rule, config)
            if suggestion is not None:
                ranked.append((m.ranking_key(suggestion, candidate), suggestion))
        ranked.sort(key=lambda pair: pair[0])
        ranked = [s for _key, s in ranked]
        return m.is_auto(ranked, config), ranked[: config.max_suggestions]


def measure_memory(n_candidates, n_lines, seed):
    """(bytes after the build, peak bytes during build + match_all, seconds), traced."""
    candidates, phones, names, lines, _targets = generate(n_candidates, n_lines, seed)
    t0 = time.perf_counter()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    matcher = m.Matcher(candidates, phones, names, m.Config())
    built = tracemalloc.get_traced_memory()[0] - base
    matcher.match_all(lines)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return built, peak, time.perf_counter() - t0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=20000)
    parser.add_argument("--lines", type=int, default=20000)
    parser.add_argument("--naive-lines", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    config = m.Config()

    t0 = time.perf_counter()
    candidates, phones, names, lines, targets = generate(
        args.candidates, args.lines, args.seed
    )
    print(
        f"data: {len(candidates)} candidates, {len(names)} partners, {len(lines)} lines "
        f"(seed {args.seed}, generated in {time.perf_counter() - t0:.1f}s)"
    )

    t0 = time.perf_counter()
    matcher = m.Matcher(candidates, phones, names, config)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = matcher.match_all(lines)
    match = time.perf_counter() - t0
    per_line = match / len(lines)
    print(
        f"indexed: build {build:.2f}s, match_all {match:.2f}s "
        f"({per_line * 1e6:.0f} us/line, {len(lines) / match:.0f} lines/s)"
    )

    # Tracing slows matching several times: it runs in a second process (same
    # seed, same data) while this one times the naive scorer.
    pool = ProcessPoolExecutor(max_workers=1)
    memory_run = pool.submit(measure_memory, args.candidates, args.lines, args.seed)

    auto = [(lid, a) for lid, (a, _s) in results.items() if a]
    wrong = [lid for lid, a in auto if targets.get(lid) != (a.model, a.record_id)]
    suggested = sum(1 for a, s in results.values() if s and not a)
    empty = sum(1 for _a, s in results.values() if not s)
    print(
        f"outcome: {len(auto)} automatic ({len(wrong)} not the intended document), "
        f"{suggested} suggestions only, {empty} nothing"
    )

    # The naive scorer on a random sample, extrapolated; the indexed matcher
    # (a fresh one: nothing remembered) on the same sample for a like-for-like ratio.
    rng = random.Random(args.seed + 1)
    sample = rng.sample(lines, min(args.naive_lines, len(lines)))
    t0 = time.perf_counter()
    naive = Naive(candidates, phones, names, config)
    naive_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive_results = {line.id: naive.decide(line) for line in sample}
    naive_match = time.perf_counter() - t0
    fresh = m.Matcher(candidates, phones, names, config)
    t0 = time.perf_counter()
    fresh.match_all(sample)
    sample_match = time.perf_counter() - t0
    naive_per_line = naive_match / len(sample)
    extrapolated = naive_build + naive_per_line * len(lines)
    same = sum(1 for lid, r in naive_results.items() if r == results[lid])
    print(
        f"naive: {len(sample)} sampled lines in {naive_match:.2f}s"
        f" ({naive_per_line * 1e3:.1f} ms/line) vs indexed {sample_match:.2f}s"
        f" ({sample_match / len(sample) * 1e6:.0f} us/line): {naive_match / sample_match:.0f}x;"
        f" same result on {same}/{len(sample)} lines"
    )
    print(
        f"speed-up: naive extrapolated to {len(lines)} lines {extrapolated:.0f}s"
        f" vs build + match_all {build + match:.1f}s: {extrapolated / (build + match):.0f}x"
    )

    memory = memory_run.result()
    print(
        f"memory (tracemalloc, excluding the input data): indexes {memory[0] / 2**20:.1f} MiB,"
        f" peak during build + match_all {memory[1] / 2**20:.1f} MiB"
        f" (traced in a second process: {memory[2]:.1f}s)"
    )
    pool.shutdown()
    return 0 if same == len(sample) else 1


if __name__ == "__main__":
    sys.exit(main())
