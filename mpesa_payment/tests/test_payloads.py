import datetime as dt
from decimal import Decimal

from odoo.tests import BaseCase, tagged

from ..daraja.payloads import (
    PayloadError,
    parse_c2b,
    parse_error,
    parse_initiator_result,
    parse_stk_callback,
    parse_stk_query,
)
from .common import load_sample


def _stk(result_code, items=None, metadata=True):
    cb = {
        "MerchantRequestID": "29115-34620561-1",
        "CheckoutRequestID": "ws_CO_191220191020363925",
        "ResultCode": result_code,
        "ResultDesc": "desc",
    }
    if metadata:
        cb["CallbackMetadata"] = {"Item": items or []}
    return {"Body": {"stkCallback": cb}}


@tagged("post_install", "-at_install")
class TestPayloads(BaseCase):
    def test_stk_success_sample(self):
        cb = parse_stk_callback(load_sample("stk_callback_success.json"))
        self.assertTrue(cb.is_success)
        self.assertEqual(cb.checkout_request_id, "ws_CO_191220191020363925")
        self.assertEqual(cb.amount, Decimal(1))
        self.assertEqual(cb.receipt, "NLJ7RT61SV")
        self.assertEqual(cb.phone, "254708374149")
        # 2019-12-19 10:21:15 in Nairobi is 07:21:15 UTC
        self.assertEqual(cb.transaction_date, dt.datetime(2019, 12, 19, 7, 21, 15))

    def test_stk_success_balance_without_value_and_int_amount(self):
        cb = parse_stk_callback(
            load_sample("stk_callback_success_with_empty_balance.json")
        )
        self.assertEqual(cb.amount, Decimal(1))
        self.assertEqual(cb.receipt, "LGR7OWQX0R")
        self.assertNotIn("Balance", cb.metadata)

    def test_stk_cancelled_sample(self):
        cb = parse_stk_callback(load_sample("stk_callback_cancelled.json"))
        self.assertFalse(cb.is_success)
        self.assertEqual(cb.result_code, 1032)
        self.assertIsNone(cb.receipt)

    def test_stk_result_code_as_string(self):
        self.assertEqual(
            parse_stk_callback(_stk("1037", metadata=False)).result_code, 1037
        )

    def test_stk_amount_variants(self):
        items = [{"Name": "MpesaReceiptNumber", "Value": "ABC1234567"}]
        for value, expected in (
            (1, "1"),
            (1.0, "1"),
            ("1.00", "1"),
            ("1,250.50", "1250.5"),
        ):
            cb = parse_stk_callback(
                _stk(0, items + [{"Name": "Amount", "Value": value}])
            )
            self.assertEqual(cb.amount, Decimal(expected), value)

    def test_stk_success_without_metadata_is_an_error(self):
        with self.assertRaises(PayloadError):
            parse_stk_callback(_stk(0, metadata=False))
        with self.assertRaises(PayloadError):  # metadata without the receipt
            parse_stk_callback(_stk(0, [{"Name": "Amount", "Value": 5}]))

    def test_stk_malformed(self):
        for bad in (
            [],
            {},
            {"Body": []},
            {"Body": {"stkCallback": {"ResultCode": 0}}},
            {
                "Body": {
                    "stkCallback": {"CheckoutRequestID": "x", "MerchantRequestID": "y"}
                }
            },
            _stk(True, metadata=False),
            _stk(
                0,
                [
                    {"Name": "Amount", "Value": "abc"},
                    {"Name": "MpesaReceiptNumber", "Value": "R"},
                ],
            ),
            _stk(
                0,
                [
                    {"Name": "Amount", "Value": -5},
                    {"Name": "MpesaReceiptNumber", "Value": "R"},
                ],
            ),
        ):
            with self.assertRaises(PayloadError, msg=repr(bad)):
                parse_stk_callback(bad)

    def test_stk_query(self):
        done = parse_stk_query(load_sample("stk_query_response_done.json"))
        self.assertEqual(done.result_code, 0)  # a string "0" in the payload
        pending = parse_stk_query(
            {"ResultCode": "4999", "ResultDesc": "under processing"}
        )
        self.assertIsNone(pending.result_code)  # the customer has not answered yet
        self.assertEqual(parse_stk_query({"ResultCode": "1032"}).result_code, 1032)

    def test_error_body(self):
        body = load_sample("stk_query_response_processing_http500.json")
        self.assertEqual(
            parse_error(body), ("500.001.1001", "The transaction is being processed")
        )
        self.assertIsNone(parse_error({"ResponseCode": "0"}))

    def test_c2b_masked(self):
        c2b = parse_c2b(load_sample("c2b_confirmation_v2_masked.json"))
        self.assertEqual(c2b.trans_id, "RKL51ZDR4F")
        self.assertEqual(c2b.amount, Decimal("5.00"))
        self.assertEqual(c2b.msisdn, "2547 ***** 126")
        self.assertEqual(c2b.org_balance, Decimal("25.00"))
        self.assertEqual(c2b.customer_name, "NICHOLAS")
        self.assertIsNone(parse_c2b(load_sample("c2b_validation_v2.json")).org_balance)

    def test_transaction_status_result(self):
        res = parse_initiator_result(load_sample("transaction_status_result.json"))
        self.assertTrue(res.is_success)
        self.assertEqual(res.parameters["ReceiptNo"], "MBN31H462N")
        self.assertEqual(res.parameters["Amount"], 10)
        self.assertEqual(res.parameters["TransactionStatus"], "Completed")
