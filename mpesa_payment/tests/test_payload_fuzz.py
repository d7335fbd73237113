"""Property-based fuzzing of every Daraja payload parser (hypothesis).

Whatever arrives, a parser returns its typed record or raises PayloadError: never
another exception (which would become a 500 and a lost callback)."""

import contextlib
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odoo.tests import BaseCase, tagged

from ..daraja.payloads import (
    PayloadError,
    parse_c2b,
    parse_error,
    parse_initiator_result,
    parse_stk_callback,
    parse_stk_query,
)
from ..daraja.phone import PhoneError, normalize_msisdn
from ..references import normalize_reference

FUZZ = settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same cases every run: CI stays reproducible
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["0", "1032", "1.00", "1,250.00", "", "abc"]),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(max_size=20), children, max_size=5),
    ),
    max_leaves=25,
)
KEYS = [
    "MerchantRequestID",
    "CheckoutRequestID",
    "ResultCode",
    "ResultDesc",
    "CallbackMetadata",
    "Item",
    "Name",
    "Value",
    "Amount",
    "MpesaReceiptNumber",
    "TransactionDate",
    "PhoneNumber",
    "TransID",
    "TransAmount",
    "TransTime",
    "BusinessShortCode",
    "BillRefNumber",
    "MSISDN",
    "OrgAccountBalance",
    "Result",
    "ResultParameters",
    "ResultParameter",
    "Key",
    "ResultType",
    "errorCode",
]
# Dictionaries that look like Daraja's, with the right keys and wrong values.
daraja_like = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.sampled_from(KEYS), children, max_size=8),
    ),
    max_leaves=40,
)
stk_shaped = st.builds(
    lambda cb: {"Body": {"stkCallback": cb}},
    st.dictionaries(st.sampled_from(KEYS), daraja_like, max_size=8),
)
items = st.lists(
    st.fixed_dictionaries(
        {
            "Name": st.sampled_from(
                [
                    "Amount",
                    "MpesaReceiptNumber",
                    "TransactionDate",
                    "PhoneNumber",
                    "Balance",
                ]
            )
        },
        optional={"Value": scalars},
    ),
    max_size=6,
)


def _only_payload_errors(parser, data):
    with contextlib.suppress(PayloadError):  # the one accepted way to refuse
        parser(data)


@tagged("post_install", "-at_install")
class TestPayloadFuzz(BaseCase):
    @FUZZ
    @given(st.one_of(json_values, daraja_like, stk_shaped))
    def test_stk_callback_parser_never_crashes(self, data):
        _only_payload_errors(parse_stk_callback, data)

    @FUZZ
    @given(items, st.one_of(st.integers(), st.text(max_size=6)))
    def test_stk_callback_metadata_shapes(self, metadata, code):
        data = {
            "Body": {
                "stkCallback": {
                    "MerchantRequestID": "m",
                    "CheckoutRequestID": "c",
                    "ResultCode": code,
                    "ResultDesc": "d",
                    "CallbackMetadata": {"Item": metadata},
                }
            }
        }
        try:
            cb = parse_stk_callback(data)
        except PayloadError:
            return
        if cb.is_success:  # a success always carries a usable receipt and amount
            self.assertTrue(cb.receipt)
            self.assertIsInstance(cb.amount, Decimal)
            self.assertGreaterEqual(cb.amount, 0)

    @FUZZ
    @given(
        st.integers(min_value=1, max_value=250000),
        st.booleans(),
        st.from_regex(r"[A-Z0-9]{10}", fullmatch=True),
    )
    def test_stk_success_round_trip(self, amount, as_decimal, receipt):
        value = f"{amount}.00" if as_decimal else amount
        data = {
            "Body": {
                "stkCallback": {
                    "MerchantRequestID": "m",
                    "CheckoutRequestID": "c",
                    "ResultCode": 0,
                    "ResultDesc": "ok",
                    "CallbackMetadata": {
                        "Item": [
                            {"Name": "Amount", "Value": value},
                            {"Name": "MpesaReceiptNumber", "Value": receipt},
                            {"Name": "Balance"},
                            {"Name": "TransactionDate", "Value": 20261128101500},
                            {"Name": "PhoneNumber", "Value": 254708374149},
                        ]
                    },
                }
            }
        }
        cb = parse_stk_callback(data)
        self.assertEqual((cb.amount, cb.receipt), (Decimal(amount), receipt))

    @FUZZ
    @given(st.one_of(json_values, daraja_like))
    def test_other_parsers_never_crash(self, data):
        for parser in (parse_stk_query, parse_c2b, parse_initiator_result):
            _only_payload_errors(parser, data)
        parse_error(data)  # never raises

    @FUZZ
    @given(st.text(max_size=25))
    def test_phone_and_reference_normalisers(self, text):
        try:
            msisdn = normalize_msisdn(text)
        except PhoneError as error:
            self.assertTrue(str(error))
        else:
            self.assertRegex(msisdn, r"^254[71]\d{8}$")
        self.assertRegex(normalize_reference(text), r"^[0-9A-Z]*$")
