"""Matching M-PESA receipts (bank-statement lines) to open documents, in memory.

Plain Python, no Odoo model: the Odoo side loads every open candidate (invoice or
sale order; a subscription is paid through its invoices) and the partners' phones and
names once, builds a :class:`Matcher` once, then matches every line without a database
round trip.

Scoring
=======

Every candidate is scored on four independent rules; the points are in
:data:`WEIGHTS` (the one table) and add up, capped at 100:

==========  ==============================================================  ======
rule        evidence                                                        points
==========  ==============================================================  ======
reference   line reference equals the candidate's name or one of its          50
            ``references`` after normalisation (upper-case, only 0-9A-Z)
            the same, but neither the amount (exact or within tolerance)      25
            nor the partner confirms it
            else within ``fuzzy_max_distance`` edits (Damerau-Levenshtein,  35 - 8d
            optimal string alignment; both strings of 5+ characters)
amount      line amount equals the amount due                                 30
            differs by at most ``amount_tolerance``                           22
            less than due (partial payment)                                   10
            more than due (overpayment)                                        5
partner     ``line.partner_id`` is the candidate's partner                    15
            the plain phone (or its SHA-256 hash) is one of the partner's     15
            the masked phone (first 4 + last 3 digits) fits exactly one       8
            partner, the candidate's
            the customer name shares two name tokens with the partner's        6
            (one if the partner's name has only one)
date        within 3 days of the candidate's date                              5
            within ``date_window_days``                                        2
==========  ==============================================================  ======

Only the best partner evidence counts, and only when it points at the
candidate's own partner. Amount and date never bring a candidate in on their
own: a candidate is considered only when the reference or the partner points
at it, so a line with no usable reference, phone, partner or name gets no
suggestion. Fuzzy matching is tried only when the reference matches no
candidate exactly: a reference that exists is not a typo of another one.

Invoice numbers are dense, so a customer's slip of one digit or a swap
(INV/2026/00107 for INV/2026/01070) often names another existing document, of
another customer, for another amount. An exact reference that neither the
amount nor the partner confirms therefore counts half: the exact amount of a
document of the partner whose phone paid ranks above it. It is still suggested
whatever amount was paid: 25 and the least amount points (5, an overpayment)
make ``min_score``.

Reasons are plain English, highest points first ("reference exact",
"amount exact", "partner from phone", "date within 3 days"). Suggestions are
ranked by score, ties by candidate date (oldest first), then id and model.

:meth:`Matcher.decide` proposes a suggestion for automatic reconciliation only
if it scores at least ``auto_threshold``, beats the runner-up by more than
:data:`TIE_MARGIN` points and its amount is exact or within tolerance: two
equally good candidates are never guessed between.

Indexes (built once): normalised reference -> candidates, partner ->
candidates, plain MSISDN -> partners, SHA-256(MSISDN) -> partners, masked
pattern (first 4 + last 3 digits) -> partners, name token -> partners, and
for fuzzy lookups the normalised references of 5+ characters bucketed by
length and sorted. Only the buckets within ``fuzzy_max_distance`` of the
query's length are searched, each as an implicit trie: the edit-distance rows
of a shared prefix are computed once, and a whole subtree is skipped (by
bisection) as soon as its prefix must end more than the maximum away. So a
line costs a few dictionary look-ups, a fuzzy walk that visits the
neighbourhood of its reference rather than every reference (memoised per
distinct reference), and the scoring of the candidates pointed at.
"""

import re
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import combinations
from types import MappingProxyType

# mpesa_payment's rules for references and phones (plain Python modules, no Odoo
# import), so a reference or a phone compares the same here as when M-PESA confirms.
from odoo.addons.mpesa_payment.daraja.phone import (
    MSISDN_RE,
    PhoneError,
    normalize_msisdn,
)
from odoo.addons.mpesa_payment.references import (
    masked_parts,
    msisdn_hash,
    normalize_reference,
    phone_kind,
)

# rule -> (points, reason). The fuzzy reference rule loses
# "reference_fuzzy_per_edit" points for each edit.
WEIGHTS = MappingProxyType(
    {
        "reference_exact": (50, "reference exact"),
        "reference_exact_unconfirmed": (
            25,
            "reference exact (not confirmed by amount or payer)",
        ),
        "reference_fuzzy": (35, "reference {distance} edit{plural} away"),
        "reference_fuzzy_per_edit": (8, ""),
        "amount_exact": (30, "amount exact"),
        "amount_within_tolerance": (22, "amount within tolerance"),
        "amount_partial": (10, "amount partial (less than due)"),
        "amount_over": (5, "amount over due"),
        "partner_line": (15, "partner on line"),
        "partner_phone": (15, "partner from phone"),
        "partner_hashed_phone": (15, "partner from hashed phone"),
        "partner_masked_phone": (8, "partner from masked phone"),
        "partner_name": (6, "partner from customer name"),
        "date_close": (5, "date within 3 days"),
        "date_window": (2, "date within {days} days"),
    }
)
DATE_CLOSE_DAYS = 3
FUZZY_MIN_LENGTH = 5
TIE_MARGIN = 0.5
MAX_NAME_TOKENS = 8
FUZZY_MEMO_SIZE = 4096
AMOUNT_MATCHES = ("exact", "within_tolerance", "partial", "over", "none")
AMOUNT_FITS = AMOUNT_MATCHES[:2]
_AMOUNT_RULES = {match: "amount_" + match for match in AMOUNT_MATCHES[:-1]}
_AMOUNT_RULES["none"] = None

_TOKEN = re.compile(r"[0-9A-Z]+")
# Sorts after every normalised character: key[:n] + _AFTER bounds a subtree.
_AFTER = "\x7f"


@dataclass(frozen=True)
class Line:
    """One unreconciled statement line / M-PESA receipt."""

    id: int
    amount: Decimal
    reference: str
    date: date
    partner_id: int | None = None
    # plain 2547..., masked "2547****126" / "2547 ***** 126", or SHA-256 hex (v1)
    phone: str = ""
    customer_name: str = ""


@dataclass(frozen=True)
class Candidate:
    """An open invoice or sale order."""

    model: str
    id: int
    name: str
    partner_id: int
    partner_name: str
    amount_due: Decimal
    date: date
    # other references it answers to: the payment reference (a subscription's
    # invoices carry its account number) and the partner's M-PESA account number
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class Suggestion:
    """A candidate for a line, its score (0-100) and why."""

    line_id: int
    model: str
    record_id: int
    name: str
    score: float
    reasons: tuple[str, ...]
    amount_match: str  # one of AMOUNT_MATCHES


@dataclass
class Config:
    """Thresholds; the points themselves are in WEIGHTS."""

    auto_threshold: float = 90.0
    min_score: float = 30.0
    amount_tolerance: Decimal = Decimal("1.00")
    fuzzy_max_distance: int = 2
    date_window_days: int = 30
    max_suggestions: int = 5

    def __post_init__(self):
        self.amount_tolerance = _decimal(self.amount_tolerance)


# === Normalisation === #


def plain_msisdn(value):
    """'+254 712 345 678', '0712345678' -> '254712345678'; '' when not a Kenyan mobile.

    A number already in Daraja's form is taken as is: this runs for every line, and
    parsing it again would only confirm it (the partners' numbers are parsed in Odoo).
    """
    if MSISDN_RE.match(value or ""):
        return value
    try:
        return normalize_msisdn(value)
    except PhoneError:
        return ""


def name_tokens(text):
    """'Mary W. Kamau' -> {'MARY', 'KAMAU'}: words of two characters or more."""
    return frozenset(t for t in _TOKEN.findall((text or "").upper()) if len(t) > 1)


# Our own edit distance rather than rapidfuzz's OSA: rapidfuzz compares the query with
# every key of a length (C speed, but all of them), this walk visits the query's
# neighbourhood only; on tests/bench/bench_matching.py rapidfuzz was 1.7x slower.
def within_distance(keys, length, query, k):
    """Yield (key, distance) for the keys within k edits of query.

    keys: sorted strings, all of the given length. They are walked as a trie:
    the matrix rows of the prefix a key shares with the previous one are kept,
    and as soon as a row proves every key with that prefix is more than k
    edits away, those keys are skipped by bisection.

    A row is pruned on min(D[i][j] + |(length - i) - (n - j)|) > k: what is
    left of the key and of the query still differs in length by that much.
    This also holds for paths skipping row i by a transposition, which cost
    at least D[i][j] on the same diagonal. Cells outside the band where that
    bound is <= k are never computed (they hold k + 1). The band of a depth
    does not depend on the key, so each depth has one row, overwritten in place.
    """
    n = len(query)
    shift = n - length  # the final cell (length, n) lies on diagonal j - i = shift
    rows, lows, highs = _banded_matrix(length, n, shift, k)
    computed = 0  # rows[:computed + 1] hold the prefix of prev
    prev = ""
    i, total = 0, len(keys)
    while i < total:
        key = keys[i]
        shared = 0  # all keys have the same length: only computed rows can be shared
        while shared < computed and prev[shared] == key[shared]:
            shared += 1
        depth = shared + 1
        while depth <= length and _fill_row(
            rows, depth, key, query, k, lows[depth], highs[depth] + 1, shift
        ):
            depth += 1
        if depth <= length:  # pruned: skip every key starting with key[:depth]
            computed = depth
            i = (
                bisect_left(keys, key[:depth] + _AFTER, i + 1)
                if depth < length
                else i + 1
            )
        else:
            computed = length
            if rows[length][n] <= k:
                yield key, rows[length][n]
            i += 1
        prev = key


def _banded_matrix(length, n, shift, k):
    """The rows of the OSA matrix (capped at k + 1) and the band of each row."""
    cap = k + 1
    rows = [[cap] * (n + 1) for _depth in range(length + 1)]
    lows, highs = [0], [0]
    for j in range(n + 1):
        if j <= k and abs(j - shift) <= k:
            rows[0][j] = j
    for depth in range(1, length + 1):
        if depth <= k and abs(depth + shift) <= k:
            rows[depth][0] = depth
        lows.append(max(1, depth - k, depth + shift - k))
        highs.append(min(n, depth + k, depth + shift + k))
    return rows, lows, highs


def _fill_row(rows, depth, key, query, k, j, stop, shift):
    """Compute rows[depth][j:stop] in place; False if no cell can end within k.

    Comparisons rather than min(): on Python 3.11 min() builds a tuple per
    call, and this runs millions of times.
    """
    up, row = rows[depth - 1], rows[depth]
    ch = key[depth - 1]
    alive = row[0] + abs(depth + shift) <= k
    offset = j - depth - shift  # of (depth, j) from the final diagonal
    while j < stop:
        qj = query[j - 1]
        v = up[j - 1] if qj == ch else up[j - 1] + 1  # match or substitution
        if up[j] < v - 1:  # deletion
            v = up[j] + 1
        if row[j - 1] < v - 1:  # insertion
            v = row[j - 1] + 1
        # transposition: key[depth-2:depth] is query[j-2:j] swapped
        if depth > 1 and j > 1 and ch == query[j - 2] and key[depth - 2] == qj:
            before = rows[depth - 2][j - 2]
            if before < v - 1:
                v = before + 1
        if v > k:
            v = k + 1
        elif v + abs(offset) <= k:
            alive = True
        row[j] = v
        j += 1
        offset += 1
    return alive


def _decimal(value):
    return value if isinstance(value, Decimal) else Decimal(str(value))


# === Scoring (pure) === #


def amount_match(line_amount, amount_due, tolerance):
    """'exact', 'within_tolerance', 'partial', 'over' or 'none' (nothing to compare)."""
    line_amount, amount_due = _decimal(line_amount), _decimal(amount_due)
    if line_amount <= 0 or amount_due <= 0:
        return "none"
    if line_amount == amount_due:
        return "exact"
    if abs(line_amount - amount_due) <= tolerance:
        return "within_tolerance"
    return "partial" if line_amount < amount_due else "over"


def score_candidate(line, candidate, ref_distance, partner_rule, config):
    """The suggestion of candidate for line, or None when neither the reference nor
    the partner points at it or it scores below config.min_score.

    ref_distance: 0 exact, 1..max fuzzy, None no match. partner_rule: the best
    WEIGHTS partner rule pointing at candidate.partner_id, or None.
    """
    if ref_distance is None and partner_rule is None:
        return None
    match = amount_match(line.amount, candidate.amount_due, config.amount_tolerance)
    # the rules that apply, in the order reasons of equal points are given
    rules = [None, _AMOUNT_RULES[match], partner_rule, None]
    if ref_distance == 0:
        confirmed = partner_rule is not None or match in AMOUNT_FITS
        rules[0] = "reference_exact" if confirmed else "reference_exact_unconfirmed"
    elif ref_distance is not None:
        rules[0] = "reference_fuzzy"
    if line.date and candidate.date:  # Odoo gives False for no date
        days = abs(line.date.toordinal() - candidate.date.toordinal())
        if days <= DATE_CLOSE_DAYS:
            rules[3] = "date_close"
        elif days <= config.date_window_days:
            rules[3] = "date_window"
    score = 0
    for rule in rules:
        if rule is not None:
            score += _points(rule, ref_distance)
    if score < config.min_score:
        return None
    applied = sorted(
        (rule for rule in rules if rule is not None),
        key=lambda rule: -_points(rule, ref_distance),
    )  # stable: equal points keep the rule order
    return Suggestion(
        line_id=line.id,
        model=candidate.model,
        record_id=candidate.id,
        name=candidate.name,
        score=float(min(100, score)),
        reasons=tuple(_reason(rule, ref_distance, config) for rule in applied),
        amount_match=match,
    )


def _points(rule, ref_distance):
    points = WEIGHTS[rule][0]
    if rule == "reference_fuzzy":
        points = max(0, points - WEIGHTS["reference_fuzzy_per_edit"][0] * ref_distance)
    return points


def _reason(rule, ref_distance, config):
    reason = WEIGHTS[rule][1]
    if rule == "reference_fuzzy":
        return reason.format(
            distance=ref_distance, plural="s" if ref_distance > 1 else ""
        )
    if rule == "date_window":
        return reason.format(days=config.date_window_days)
    return reason


def candidate_keys(candidate):
    """The normalised references a candidate answers to: its name, then references."""
    keys = []
    for text in (candidate.name, *candidate.references):
        key = normalize_reference(text)
        if key and key not in keys:
            keys.append(key)
    return keys


def ranking_key(suggestion, candidate):
    """Best first; ties by candidate date (oldest first), then id, then model."""
    return (
        -suggestion.score,
        candidate.date or date.min,
        candidate.id,
        candidate.model,
    )


def is_auto(ranked, config):
    """The first of ranked (best first) if it may be reconciled without a human."""
    if not ranked:
        return None
    best = ranked[0]
    if best.score < config.auto_threshold:
        return None
    if len(ranked) > 1 and best.score - ranked[1].score <= TIE_MARGIN:
        return None
    if best.amount_match not in AMOUNT_FITS:
        return None
    return best


# === Matcher === #


class Matcher:
    """Indexes open candidates once; matches lines in memory."""

    def __init__(
        self,
        candidates: Iterable[Candidate],
        partner_phones: Mapping[int, Iterable[str]] | None = None,
        partner_names: Mapping[int, str] | None = None,
        config: Config | None = None,
    ):
        self.config = config or Config()
        self._candidates = []
        self._by_key = defaultdict(list)  # normalised reference -> candidate indexes
        self._by_partner = defaultdict(list)  # partner -> candidate indexes
        seen = set()
        names = {}
        for candidate in candidates:
            if (candidate.model, candidate.id) in seen:
                continue
            seen.add((candidate.model, candidate.id))
            index = len(self._candidates)
            self._candidates.append(candidate)
            for key in candidate_keys(candidate):
                self._by_key[key].append(index)
            if candidate.partner_id:
                self._by_partner[candidate.partner_id].append(index)
                names.setdefault(candidate.partner_id, candidate.partner_name)
        self._by_key = dict(self._by_key)
        self._by_partner = dict(self._by_partner)
        by_length = defaultdict(list)
        for key in self._by_key:
            if len(key) >= FUZZY_MIN_LENGTH:
                by_length[len(key)].append(key)
        self._fuzzy_keys = {length: sorted(keys) for length, keys in by_length.items()}
        self._fuzzy_memo = {}
        self._index_phones(partner_phones or {})
        names.update(partner_names or {})
        self._index_names(names)

    def _index_phones(self, partner_phones):
        self._by_msisdn = defaultdict(set)
        self._by_hash = defaultdict(set)
        # (first 4 digits, last 3 digits) -> {(msisdn, partner)}
        self._by_mask = defaultdict(set)
        for partner_id, phones in partner_phones.items():
            if isinstance(phones, str):
                phones = (phones,)
            for phone in phones or ():
                msisdn = plain_msisdn(phone)
                if not msisdn:
                    continue
                self._by_msisdn[msisdn].add(partner_id)
                self._by_hash[msisdn_hash(msisdn)].add(partner_id)
                self._by_mask[msisdn[:4], msisdn[-3:]].add((msisdn, partner_id))
        self._by_msisdn = dict(self._by_msisdn)
        self._by_hash = dict(self._by_hash)
        self._by_mask = dict(self._by_mask)

    def _index_names(self, names):
        # One-token partners match on that token; the others on two shared
        # tokens, found by intersecting the line's token pairs.
        self._by_single_token = defaultdict(set)
        self._by_token = defaultdict(set)
        for partner_id, name in names.items():
            tokens = name_tokens(name)
            index = self._by_single_token if len(tokens) == 1 else self._by_token
            for token in tokens:
                index[token].add(partner_id)
        self._by_single_token = dict(self._by_single_token)
        self._by_token = dict(self._by_token)

    # --- evidence --- #

    def reference_distances(self, reference):
        """{candidate index: edit distance} for the line reference (0 = exact)."""
        key = normalize_reference(reference)
        if not key:
            return {}
        exact = self._by_key.get(key)
        if exact:
            return dict.fromkeys(exact, 0)
        k = self.config.fuzzy_max_distance
        found = {}
        if k > 0 and len(key) >= FUZZY_MIN_LENGTH:
            for other, distance in self._fuzzy_lookup(key, k):
                for index in self._by_key[other]:
                    if distance < found.get(index, k + 1):
                        found[index] = distance
        return found

    def _fuzzy_lookup(self, query, k):
        """(key, distance) of the indexed keys within k edits of query.

        Only keys whose length is within k of the query's are walked. Results
        are remembered per query (free text such as "PAYMENT" recurs), for the
        last FUZZY_MEMO_SIZE distinct queries.
        """
        memo = self._fuzzy_memo
        found = memo.get((query, k))
        if found is None:
            found = []
            n = len(query)
            for length in range(max(FUZZY_MIN_LENGTH, n - k), n + k + 1):
                keys = self._fuzzy_keys.get(length)
                if keys:
                    found.extend(within_distance(keys, length, query, k))
            found = tuple(found)
            if len(memo) >= FUZZY_MEMO_SIZE:
                del memo[next(iter(memo))]
            memo[query, k] = found
        return found

    def partner_evidence(self, line):
        """{partner: best partner rule} from the line's partner, phone and name."""
        evidence = {}

        def add(partners, rule):
            for partner_id in partners:
                best = evidence.get(partner_id)
                if best is None or WEIGHTS[rule][0] > WEIGHTS[best][0]:
                    evidence[partner_id] = rule

        if line.partner_id:
            add((line.partner_id,), "partner_line")
        phone = (line.phone or "").strip()
        kind = phone_kind(phone)
        if kind == "hashed":
            add(self._by_hash.get(phone.lower(), ()), "partner_hashed_phone")
        elif kind == "masked":
            parts = masked_parts(phone)
            if parts:
                head, tail = parts
                shown = self._by_mask.get((head[:4], tail[-3:]), ())
                partners = {
                    partner_id
                    for msisdn, partner_id in shown
                    if msisdn.startswith(head) and msisdn.endswith(tail)
                }
                if len(partners) == 1:
                    add(partners, "partner_masked_phone")
        elif kind == "plain":
            add(self._by_msisdn.get(plain_msisdn(phone), ()), "partner_phone")
        tokens = sorted(name_tokens(line.customer_name))[:MAX_NAME_TOKENS]
        if tokens:
            named = set()
            for token in tokens:
                named |= self._by_single_token.get(token, set())
            by_token = self._by_token
            for first, second in combinations(tokens, 2):
                if first in by_token and second in by_token:
                    named |= by_token[first] & by_token[second]
            add(sorted(named), "partner_name")
        return evidence

    # --- API --- #

    def _rank(self, line):
        """Every suggestion scoring at least min_score, best first."""
        distances = self.reference_distances(line.reference)
        evidence = self.partner_evidence(line)
        indexes = set(distances)
        for partner_id in evidence:
            indexes.update(self._by_partner.get(partner_id, ()))
        ranked = []
        for index in indexes:
            candidate = self._candidates[index]
            suggestion = score_candidate(
                line,
                candidate,
                distances.get(index),
                evidence.get(candidate.partner_id),
                self.config,
            )
            if suggestion is not None:
                ranked.append((ranking_key(suggestion, candidate), suggestion))
        ranked.sort(key=lambda pair: pair[0])
        return [suggestion for _key, suggestion in ranked]

    def decide(self, line: Line) -> tuple[Suggestion | None, list[Suggestion]]:
        """(the suggestion to reconcile automatically or None, the suggestions)."""
        ranked = self._rank(line)
        return is_auto(ranked, self.config), ranked[: self.config.max_suggestions]

    def match_all(
        self, lines: Iterable[Line]
    ) -> dict[int, tuple[Suggestion | None, list[Suggestion]]]:
        """decide() for every line, by line id."""
        return {line.id: self.decide(line) for line in lines}
