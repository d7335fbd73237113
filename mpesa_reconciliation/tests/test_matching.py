import hashlib
from datetime import date, timedelta
from decimal import Decimal

from odoo.tests import BaseCase, tagged

from ..matching import (
    Candidate,
    Config,
    Line,
    Matcher,
    Suggestion,
    is_auto,
    normalize_reference,
    within_distance,
)

D = date(2026, 3, 10)


def suggest(matcher, line):
    """The ranked suggestions the reconciliation screen shows for ``line``."""
    return matcher.decide(line)[1]


NAMES = {
    10: "Mary Wanjiru Kamau",
    11: "John Otieno",
    12: "Acme Traders Ltd",
    13: "Peter Mwangi",
    14: "Grace Achieng",
    15: "Safaricom",
}
PHONES = {
    10: ["0712 345 678"],  # 254712345678
    11: ["+254 722 000 111"],
    12: ["254712000126"],
    13: ["0110 000 999"],  # 254110000999
    14: ["254798765126"],  # same first 4 and last 3 digits as partner 12
}
MARY_MSISDN = "254712345678"
CONFIRMED = "reference exact"
ALONE = "reference exact (not confirmed by amount or payer)"


def cand(record_id, name, partner_id=10, amount="1500.00", day=D, **kwargs):
    return Candidate(
        model=kwargs.pop("model", "account.move"),
        id=record_id,
        name=name,
        partner_id=partner_id,
        partner_name=NAMES.get(partner_id, ""),
        amount_due=Decimal(amount),
        date=day,
        references=tuple(kwargs.pop("references", ())),
    )


def line(reference="", amount="1500.00", day=D, **kwargs):
    return Line(
        id=kwargs.pop("line_id", 1),
        amount=Decimal(amount),
        reference=reference,
        date=day,
        **kwargs,
    )


INV1 = cand(1, "INV/2026/00001")
INV42 = cand(
    2, "INV/2026/00042", partner_id=11, amount="2300.00", day=D - timedelta(10)
)
INV43 = cand(
    3, "INV/2026/00043", partner_id=11, amount="2300.00", day=D - timedelta(10)
)
ORDER = cand(7, "S00077", partner_id=12, amount="5000.00", model="sale.order")
SUBSCRIPTION = cand(
    3,
    "SUB/0003",
    partner_id=13,
    amount="999.00",
    model="sale.subscription",
    references=("ACC-7788",),  # the subscription's account number
)
GRACE_INV = cand(
    5,
    "INV/2026/00005",
    partner_id=14,
    amount="700.00",
    references=("CUST-0042",),  # the partner's M-PESA account number
)
ALL = (INV1, INV42, INV43, ORDER, SUBSCRIPTION, GRACE_INV)


@tagged("post_install", "-at_install")
class TestMatching(BaseCase):
    """The in-memory matching engine: every scoring rule, ranking and the no-guess rule."""

    def matcher(self, candidates=ALL, **config):
        return Matcher(candidates, PHONES, NAMES, Config(**config))

    def assertSuggestions(self, suggestions, expected):
        """expected: [(model, record id, score, reasons)], in order."""
        self.assertEqual(
            [(s.model, s.record_id, s.score, s.reasons) for s in suggestions], expected
        )

    # --- reference --- #

    def test_reference_exact(self):
        matcher = self.matcher()
        auto, suggestions = matcher.decide(line("INV/2026/00001"))
        self.assertSuggestions(
            suggestions,
            [
                (
                    "account.move",
                    1,
                    85.0,
                    ("reference exact", "amount exact", "date within 3 days"),
                )
            ],
        )
        self.assertEqual(suggestions[0].amount_match, "exact")
        self.assertEqual(suggestions[0].name, "INV/2026/00001")
        self.assertEqual(suggestions[0].line_id, 1)
        self.assertIsNone(auto, "85 is below the automatic threshold of 90")

    def test_reference_normalised(self):
        matcher = self.matcher()
        for typed in (
            "inv/2026/00001",
            " INV 2026 00001 ",
            "INV-2026-00001",
            "inv2026/00001",
            "Inv.2026_00001",
        ):
            with self.subTest(typed=typed):
                self.assertEqual(normalize_reference(typed), "INV202600001")
                self.assertSuggestions(
                    suggest(matcher, line(typed)),
                    [
                        (
                            "account.move",
                            1,
                            85.0,
                            ("reference exact", "amount exact", "date within 3 days"),
                        )
                    ],
                )

    def test_reference_fuzzy(self):
        matcher = self.matcher([INV1, INV42])
        late = D + timedelta(10)  # 20 days after INV/2026/00042
        cases = {
            # transposition of the last two digits: 1 edit, 35 - 8 = 27 points
            "INV/2026/00024": (59.0, "reference 1 edit away"),
            # a digit left out: 1 edit
            "INV/2026/0042": (59.0, "reference 1 edit away"),
            # a digit left out and I typed as 1: 2 edits, 35 - 16 = 19 points
            "1NV/2026/0042": (51.0, "reference 2 edits away"),
        }
        for typed, (score, reason) in cases.items():
            with self.subTest(typed=typed):
                self.assertSuggestions(
                    suggest(matcher, line(typed, amount="2300.00", day=late)),
                    [
                        (
                            "account.move",
                            2,
                            score,
                            ("amount exact", reason, "date within 30 days"),
                        )
                    ],
                )
        # three edits (I as 1, a zero as the letter O, a digit left out): no match
        self.assertEqual(
            list(within_distance(["INV202600042"], 12, "1NV2O260042", 2)), []
        )
        self.assertEqual(suggest(matcher, line("1NV/2O26/0042", amount="2300.00")), [])
        # the maximum distance is configurable
        strict = self.matcher([INV1, INV42], fuzzy_max_distance=1)
        self.assertEqual(suggest(strict, line("1NV/2026/0042", amount="2300.00")), [])
        self.assertEqual(
            len(suggest(strict, line("INV/2026/0042", amount="2300.00"))), 1
        )

    def test_reference_fuzzy_needs_five_characters(self):
        matcher = self.matcher([cand(1, "S077"), cand(2, "S0078")])
        self.assertEqual(suggest(matcher, line("S078")), [], "4 characters: exact only")
        self.assertSuggestions(
            suggest(matcher, line("S0079")),
            [
                (
                    "account.move",
                    2,
                    62.0,
                    ("amount exact", "reference 1 edit away", "date within 3 days"),
                )
            ],
        )

    def test_existing_reference_is_not_a_typo(self):
        """INV/2026/00043 exists: INV/2026/00042, one edit away, is not suggested."""
        matcher = self.matcher()
        self.assertSuggestions(
            suggest(matcher, line("INV/2026/00043", amount="2300.00")),
            [
                (
                    "account.move",
                    3,
                    82.0,
                    ("reference exact", "amount exact", "date within 30 days"),
                )
            ],
        )
        # a typo of both: each one edit away, equally good, oldest (same date) then id
        self.assertSuggestions(
            suggest(matcher, line("INV/2026/00044", amount="2300.00")),
            [
                (
                    "account.move",
                    2,
                    59.0,
                    ("amount exact", "reference 1 edit away", "date within 30 days"),
                ),
                (
                    "account.move",
                    3,
                    59.0,
                    ("amount exact", "reference 1 edit away", "date within 30 days"),
                ),
            ],
        )

    def test_references_tuple(self):
        matcher = self.matcher()
        # the subscription's account number
        self.assertSuggestions(
            suggest(matcher, line("acc 7788", amount="999.00")),
            [
                (
                    "sale.subscription",
                    3,
                    85.0,
                    ("reference exact", "amount exact", "date within 3 days"),
                )
            ],
        )
        # the partner's account number, on the partner's open invoice
        self.assertSuggestions(
            suggest(matcher, line("cust0042", amount="700.00")),
            [
                (
                    "account.move",
                    5,
                    85.0,
                    ("reference exact", "amount exact", "date within 3 days"),
                )
            ],
        )
        # a typo in an account number: 7788 typed 7878
        self.assertSuggestions(
            suggest(matcher, line("ACC7878", amount="999.00")),
            [
                (
                    "sale.subscription",
                    3,
                    62.0,
                    ("amount exact", "reference 1 edit away", "date within 3 days"),
                )
            ],
        )

    # --- amount --- #

    def test_amount(self):
        matcher = self.matcher()
        # An amount that does not fit leaves the reference unconfirmed (no payer
        # here): it counts 25 instead of 50.
        cases = {
            "1500.00": ("exact", 85.0, "amount exact", CONFIRMED),
            "1500.80": ("within_tolerance", 77.0, "amount within tolerance", CONFIRMED),
            "1499.00": ("within_tolerance", 77.0, "amount within tolerance", CONFIRMED),
            "1000.00": ("partial", 40.0, "amount partial (less than due)", ALONE),
            "2000.00": ("over", 35.0, "amount over due", ALONE),
        }
        for amount, (match, score, reason, reference) in cases.items():
            with self.subTest(amount=amount):
                (suggestion,) = suggest(matcher, line("INV/2026/00001", amount=amount))
                self.assertEqual(suggestion.amount_match, match)
                self.assertEqual(suggestion.score, score)
                # "amount over due" (5) before "date within 3 days" (5): rule order
                self.assertEqual(
                    suggestion.reasons, (reference, reason, "date within 3 days")
                )
        # still suggested with the least points: 25 + 5 reach min_score (30)
        (suggestion,) = suggest(matcher, line("INV/2026/00001", amount="0"))
        self.assertEqual(suggestion.amount_match, "none")
        self.assertEqual(suggestion.reasons, (ALONE, "date within 3 days"))
        self.assertEqual(suggestion.score, 30.0)
        (suggestion,) = suggest(
            matcher, line("INV/2026/00001", amount="3000.00", day=D + timedelta(90))
        )
        self.assertEqual((suggestion.score, suggestion.reasons[0]), (30.0, ALONE))
        tolerant = self.matcher(amount_tolerance=Decimal("5.00"))
        (suggestion,) = suggest(tolerant, line("INV/2026/00001", amount="1504.00"))
        self.assertEqual(suggestion.amount_match, "within_tolerance")

    def test_slipped_digit_names_another_customers_invoice(self):
        """John mistypes his invoice INV/2026/01070 as INV/2026/00107, Mary's.
        Neither his amount nor his phone fits Mary's invoice: his own invoice of
        that exact amount, found from the phone that paid, ranks first."""
        marys = cand(107, "INV/2026/00107", partner_id=10, amount="500.00")
        johns = cand(1070, "INV/2026/01070", partner_id=11, amount="23112.00")
        matcher = self.matcher((marys, johns))
        johns_payment = line("INV/2026/00107", amount="23112.00", phone="254722000111")
        self.assertSuggestions(
            suggest(matcher, johns_payment),
            [
                (
                    "account.move",
                    1070,
                    50.0,
                    ("amount exact", "partner from phone", "date within 3 days"),
                ),
                (
                    "account.move",
                    107,
                    35.0,
                    (ALONE, "amount over due", "date within 3 days"),
                ),
            ],
        )
        # Mary paying her own invoice in part keeps the reference's full weight:
        # her phone confirms it.
        marys_payment = line("INV/2026/00107", amount="200.00", phone=MARY_MSISDN)
        (suggestion,) = suggest(matcher, marys_payment)
        self.assertEqual(
            (suggestion.record_id, suggestion.score, suggestion.reasons[0]),
            (107, 80.0, CONFIRMED),
        )

    def test_amount_alone_suggests_nothing(self):
        matcher = self.matcher()
        self.assertEqual(suggest(matcher, line("", amount="1500.00")), [])
        self.assertEqual(suggest(matcher, line("NO-SUCH-REF-99", amount="1500.00")), [])

    # --- partner --- #

    def test_partner_from_line(self):
        matcher = self.matcher()
        self.assertSuggestions(
            suggest(matcher, line(partner_id=10)),
            [
                (
                    "account.move",
                    1,
                    50.0,
                    ("amount exact", "partner on line", "date within 3 days"),
                )
            ],
        )
        self.assertEqual(suggest(matcher, line(partner_id=99)), [])

    def test_partner_from_plain_phone(self):
        matcher = self.matcher()
        expected = [
            (
                "account.move",
                1,
                50.0,
                ("amount exact", "partner from phone", "date within 3 days"),
            )
        ]
        for phone in (MARY_MSISDN, "+254 712 345 678", "0712345678"):
            with self.subTest(phone=phone):
                self.assertSuggestions(suggest(matcher, line(phone=phone)), expected)
        self.assertEqual(suggest(matcher, line(phone="254700000000")), [])

    def test_partner_from_hashed_phone(self):
        matcher = self.matcher()
        digest = hashlib.sha256(MARY_MSISDN.encode()).hexdigest()
        expected = [
            (
                "account.move",
                1,
                50.0,
                ("amount exact", "partner from hashed phone", "date within 3 days"),
            )
        ]
        self.assertSuggestions(suggest(matcher, line(phone=digest)), expected)
        self.assertSuggestions(suggest(matcher, line(phone=digest.upper())), expected)
        unknown = hashlib.sha256(b"254700000000").hexdigest()
        self.assertEqual(suggest(matcher, line(phone=unknown)), [])

    def test_partner_from_masked_phone(self):
        matcher = self.matcher()
        # 2541****999 fits partner 13 only
        self.assertSuggestions(
            suggest(matcher, line(phone="2541 ***** 999", amount="999.00")),
            [
                (
                    "sale.subscription",
                    3,
                    43.0,
                    ("amount exact", "partner from masked phone", "date within 3 days"),
                )
            ],
        )
        # 2547****126 fits partners 12 and 14: no partner, no suggestion
        for masked in ("2547****126", "2547 ***** 126"):
            with self.subTest(masked=masked):
                self.assertEqual(
                    suggest(matcher, line(phone=masked, amount="5000.00")), []
                )
        # more digits shown: 254712***126 fits partner 12 only
        self.assertSuggestions(
            suggest(matcher, line(phone="254712***126", amount="5000.00")),
            [
                (
                    "sale.order",
                    7,
                    43.0,
                    ("amount exact", "partner from masked phone", "date within 3 days"),
                )
            ],
        )

    def test_masked_payer_alone_is_never_automatic(self):
        """Payer masking (2026): with no account reference, a masked number and a
        masked name that fit one customer, the exact amount and the same day only
        suggest; nothing is reconciled without the reference (issue #12, point 7)."""
        matcher = self.matcher()
        auto, suggestions = matcher.decide(
            line(phone="2547****678", customer_name="M*** W****** K****")
        )
        self.assertIsNone(auto)
        self.assertSuggestions(
            suggestions,
            [
                (
                    "account.move",
                    1,
                    43.0,
                    ("amount exact", "partner from masked phone", "date within 3 days"),
                )
            ],
        )
        # The masked name alone points at nobody.
        self.assertEqual(suggest(matcher, line(customer_name="M*** W****** K****")), [])
        # With the account reference it is the invoice, automatically.
        auto, _suggestions = matcher.decide(line("inv 2026 00001", phone="2547****678"))
        self.assertEqual((auto.model, auto.record_id), ("account.move", 1))

    def test_partner_from_customer_name(self):
        matcher = self.matcher()
        self.assertSuggestions(
            suggest(matcher, line(customer_name="MARY KAMAU")),
            [
                (
                    "account.move",
                    1,
                    41.0,
                    (
                        "amount exact",
                        "partner from customer name",
                        "date within 3 days",
                    ),
                )
            ],
        )
        # a first name alone is no one
        self.assertEqual(suggest(matcher, line(customer_name="MARY")), [])
        # a one-word partner name is enough on its own
        single = self.matcher([cand(9, "INV/2026/00009", partner_id=15)])
        self.assertEqual(
            suggest(single, line(customer_name="safaricom plc"))[0].reasons,
            ("amount exact", "partner from customer name", "date within 3 days"),
        )

    def test_partner_evidence_only_for_its_partner(self):
        """The phone is John's (11), the reference Mary's (10): Mary's invoice gets no
        partner points, and John's invoices score too low to be suggested."""
        matcher = self.matcher()
        self.assertSuggestions(
            suggest(matcher, line("INV/2026/00001", phone="254722000111")),
            [
                (
                    "account.move",
                    1,
                    85.0,
                    ("reference exact", "amount exact", "date within 3 days"),
                )
            ],
        )

    def test_best_partner_evidence_counts_once(self):
        matcher = self.matcher()
        (suggestion,) = suggest(
            matcher, line(partner_id=10, phone=MARY_MSISDN, customer_name="Mary Kamau")
        )
        self.assertEqual(suggestion.score, 50.0)
        self.assertEqual(
            suggestion.reasons,
            ("amount exact", "partner on line", "date within 3 days"),
        )

    # --- date --- #

    def test_date(self):
        matcher = self.matcher()
        cases = {
            D: (85.0, "date within 3 days"),
            D - timedelta(3): (85.0, "date within 3 days"),
            D + timedelta(3): (85.0, "date within 3 days"),
            D + timedelta(4): (82.0, "date within 30 days"),
            D + timedelta(30): (82.0, "date within 30 days"),
            D + timedelta(31): (80.0, None),
        }
        for day, (score, reason) in cases.items():
            with self.subTest(day=day):
                (suggestion,) = suggest(matcher, line("INV/2026/00001", day=day))
                self.assertEqual(suggestion.score, score)
                expected = ("reference exact", "amount exact") + (
                    (reason,) if reason else ()
                )
                self.assertEqual(suggestion.reasons, expected)
        narrow = self.matcher(date_window_days=7)
        (suggestion,) = suggest(narrow, line("INV/2026/00001", day=D + timedelta(7)))
        self.assertEqual(suggestion.reasons[-1], "date within 7 days")

    # --- deciding --- #

    def test_no_guess_same_amount_same_partner(self):
        """Two open invoices of the same customer for the same amount and no
        reference: both suggested, neither reconciled, whatever the threshold."""
        first = cand(21, "INV/2026/00021", day=D - timedelta(1))
        second = cand(20, "INV/2026/00020")
        for threshold in (90.0, 40.0):
            with self.subTest(threshold=threshold):
                matcher = self.matcher([second, first], auto_threshold=threshold)
                auto, suggestions = matcher.decide(line(phone=MARY_MSISDN))
                reasons = ("amount exact", "partner from phone", "date within 3 days")
                self.assertSuggestions(
                    suggestions,
                    [
                        ("account.move", 21, 50.0, reasons),
                        ("account.move", 20, 50.0, reasons),
                    ],
                )
                self.assertIsNone(auto)

    def test_no_guess_equally_good(self):
        """Two invoices answering to the partner's account number, both perfect."""
        candidates = [
            cand(31, "INV/2026/00031", references=("ACC-0010",)),
            cand(30, "INV/2026/00030", references=("ACC-0010",)),
        ]
        reasons = (
            "reference exact",
            "amount exact",
            "partner from phone",
            "date within 3 days",
        )
        auto, suggestions = self.matcher(candidates).decide(
            line("ACC0010", phone=MARY_MSISDN)
        )
        self.assertSuggestions(
            suggestions,
            [
                ("account.move", 30, 100.0, reasons),
                ("account.move", 31, 100.0, reasons),
            ],
        )
        self.assertIsNone(auto)
        # even when only one suggestion is shown, the runner-up still blocks
        auto, suggestions = self.matcher(candidates, max_suggestions=1).decide(
            line("ACC0010", phone=MARY_MSISDN)
        )
        self.assertEqual([s.record_id for s in suggestions], [30])
        self.assertIsNone(auto)

    def test_no_guess_near_tie(self):
        def suggestion(record_id, score):
            return Suggestion(1, "account.move", record_id, "X", score, (), "exact")

        config = Config()
        self.assertIsNone(is_auto([suggestion(1, 95.0), suggestion(2, 94.5)], config))
        self.assertIsNone(is_auto([suggestion(1, 95.0), suggestion(2, 95.0)], config))
        self.assertEqual(
            is_auto([suggestion(1, 95.0), suggestion(2, 94.4)], config).record_id, 1
        )
        self.assertIsNone(is_auto([], config))

    def test_auto_threshold(self):
        matcher = self.matcher()
        # reference, amount, phone and date: 100, alone
        auto, suggestions = matcher.decide(line("INV/2026/00001", phone=MARY_MSISDN))
        self.assertEqual(suggestions[0].score, 100.0)
        self.assertEqual((auto.model, auto.record_id), ("account.move", 1))
        # amount within tolerance: 50 + 22 + 15 + 5 = 92, still automatic
        auto, suggestions = matcher.decide(
            line("INV/2026/00001", amount="1500.50", phone=MARY_MSISDN)
        )
        self.assertEqual((suggestions[0].score, auto.record_id), (92.0, 1))
        # no phone: 85 < 90
        auto, suggestions = matcher.decide(line("INV/2026/00001"))
        self.assertEqual((suggestions[0].score, auto), (85.0, None))
        lenient = self.matcher(auto_threshold=85.0)
        self.assertEqual(lenient.decide(line("INV/2026/00001"))[0].record_id, 1)
        # a partial payment is never automatic, even above the threshold
        lenient = self.matcher(auto_threshold=70.0)
        auto, suggestions = lenient.decide(
            line("INV/2026/00001", amount="1000.00", phone=MARY_MSISDN)
        )
        self.assertEqual(
            (suggestions[0].score, suggestions[0].amount_match), (80.0, "partial")
        )
        self.assertIsNone(auto)

    def test_ranking_and_max_suggestions(self):
        candidates = [
            cand(41, "A41"),  # 15 + 30 + 5 = 50
            cand(42, "A42", day=D - timedelta(1)),  # 50, older: first
            cand(43, "A43", amount="1500.50"),  # 15 + 22 + 5 = 42
            cand(44, "A44", amount="3000.00"),  # 15 + 10 + 5 = 30
            cand(45, "A45", amount="1000.00"),  # 15 + 5 + 5 = 25: below 30
            cand(46, "A46", amount="3000.00", day=D - timedelta(10)),  # 27: below 30
            cand(47, "A47", day=D - timedelta(60)),  # 15 + 30 = 45
            cand(
                48, "A48", amount="2000.00", day=D - timedelta(2)
            ),  # 30, older than 44
            cand(40, "A40", partner_id=11),  # someone else's
        ]
        phone = line(phone=MARY_MSISDN)
        ranked = [
            (s.record_id, s.score) for s in suggest(self.matcher(candidates), phone)
        ]
        self.assertEqual(
            ranked, [(42, 50.0), (41, 50.0), (47, 45.0), (43, 42.0), (48, 30.0)]
        )
        two = suggest(self.matcher(candidates, max_suggestions=2), phone)
        self.assertEqual([s.record_id for s in two], [42, 41])
        more = suggest(
            self.matcher(candidates, max_suggestions=10, min_score=25.0), phone
        )
        self.assertEqual([s.record_id for s in more], [42, 41, 47, 43, 48, 44, 46, 45])
        # the order of the candidates given does not matter
        shuffled = suggest(self.matcher(list(reversed(candidates))), phone)
        self.assertEqual([s.record_id for s in shuffled], [42, 41, 47, 43, 48])

    def test_nothing(self):
        matcher = self.matcher()
        empty = line("", amount="1500.00")
        self.assertEqual(suggest(matcher, empty), [])
        self.assertEqual(matcher.decide(empty), (None, []))
        self.assertEqual(
            suggest(Matcher([]), line("INV/2026/00001", phone=MARY_MSISDN)), []
        )

    def test_match_all(self):
        matcher = self.matcher()
        lines = [
            line("INV/2026/00001", phone=MARY_MSISDN, line_id=101),
            line("", line_id=102),
            line("S 00077", amount="5000.00", line_id=103),
        ]
        result = matcher.match_all(lines)
        self.assertEqual(set(result), {101, 102, 103})
        self.assertEqual(result[101][0].record_id, 1)
        self.assertEqual(result[102], (None, []))
        auto, suggestions = result[103]
        self.assertIsNone(auto)
        self.assertSuggestions(
            suggestions,
            [
                (
                    "sale.order",
                    7,
                    85.0,
                    ("reference exact", "amount exact", "date within 3 days"),
                )
            ],
        )
        self.assertEqual(result[103], matcher.decide(lines[2]))
