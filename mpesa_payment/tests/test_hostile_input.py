"""Issue 11, finding 6: hostile bodies get a clear 4xx or are stored as errors, never a
500, and lose nothing."""

import json

from odoo import fields
from odoo.tests import tagged
from odoo.tools import hmac as hmac_tool
from odoo.tools import mute_logger

from .common import MpesaHttpCommon, stk_payload


@tagged("post_install", "-at_install")
class TestHostileInput(MpesaHttpCommon):
    def _post(self, url, body):
        response = self.url_open(
            url, data=body, headers={"Content-Type": "application/json"}, timeout=30
        )
        self._apply_inbox()  # the job each stored body wakes
        return response

    def _stored(self, tx):
        self.env.invalidate_all()
        return self.env["mpesa.callback"].search([("transaction_id", "=", tx.id)])

    @mute_logger("odoo.addons.mpesa_payment.models.mpesa_callback")
    def test_deeply_nested_body_is_stored_and_refused_clearly(self):
        tx = self._create_mpesa_tx(reference="NESTED")
        self.env.flush_all()
        token = self.mpesa._mpesa_make_token("stk", tx.id)
        body = "[" * 30000 + "]" * 30000  # 60 KB: within the size limit
        response = self._post(f"/payment/daraja/stk/{token}", body)
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["ResultDesc"], "Malformed JSON")
        stored = self._stored(tx)
        self.assertEqual(stored.state, "error")
        self.assertEqual(len(stored.body), len(body), "kept whole")

    @mute_logger("odoo.addons.mpesa_payment.models.mpesa_callback")
    def test_integer_of_five_thousand_digits_is_a_payload_error(self):
        tx = self._create_mpesa_tx(reference="HUGEINT")
        self.env.flush_all()
        payload = stk_payload(tx, 0)
        payload["Body"]["stkCallback"]["ResultCode"] = "1" * 5000
        token = self.mpesa._mpesa_make_token("stk", tx.id)
        response = self._post(f"/payment/daraja/stk/{token}", json.dumps(payload))
        self.assertEqual(response.status_code, 200)
        stored = self._stored(tx)
        self.assertEqual(stored.state, "error")
        self.assertIn("ResultCode must be an integer", stored.error)
        self.assertEqual(tx.state, "draft")

    def test_access_token_of_the_wrong_type_is_refused_with_a_message(self):
        tx = self._create_mpesa_tx(reference="LISTTOKEN")
        self.env.flush_all()
        good = hmac_tool(
            self.env(su=True), "generate_access_token", f"{tx.reference}|{tx.amount}"
        )
        for token in ([good], {"token": good}, 12345):
            response = self._post(
                "/payment/mpesa/stk_push",
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "method": "call",
                        "params": {
                            "reference": tx.reference,
                            "access_token": token,
                            "phone": "0708374149",
                        },
                    }
                ),
            )
            error = response.json()["error"]["data"]
            self.assertEqual(error["name"], "odoo.exceptions.ValidationError", token)
            self.assertIn("not valid", error["message"])

    def test_letters_in_the_phone_never_prompt_another_number(self):
        """A customer types the letter O for zero: the number is refused with a
        message, not read as keypad digits (0722 666 111, a stranger's phone)."""
        tx, token = self._tx_for(self._invoice(1250))
        _result, error = self._ask_prompt(tx, token, "0722 OOO 111")
        self.assertIn("is not a Kenyan mobile number", error)
        self.assertFalse(self.emulator.prompts, "nothing was sent to any phone")
        self.env.invalidate_all()
        self.assertEqual((tx.state, tx.mpesa_phone), ("draft", False))

    def test_another_companys_invoice_is_never_prompted_through_our_paybill(self):
        """Core's transaction route takes whatever provider the request names (the
        payment form offers the invoice's company's only): for another company's
        invoice our paybill prompted the customer and took the money, booked in our
        company, and its payment could never be made ("Incompatible companies";
        live test_live_companies.py). A branch's invoice, which the form offers our
        paybill for, is still prompted."""
        other = self.setup_other_company(name="Mombasa Traders")["company"]
        with self._db_lock():
            branch = self.env["res.company"].create(
                {"name": "Nairobi CBD", "parent_id": self.env.company.id}
            )
            self.env.cr.precommit.run()  # the branch's accounting, as on commit
            theirs, ours = (
                self.init_invoice(
                    "out_invoice",
                    partner=self.partner,
                    amounts=[amount],
                    company=company,
                    currency=self.currency_kes,
                    taxes=[],
                    post=True,
                    invoice_date=fields.Date.today(),
                )
                for company, amount in ((other, 1810), (branch, 1820))
            )
            self.env.flush_all()
        tx, token = self._tx_for(theirs)
        _result, error = self._ask_prompt(tx, token, "0708374149")
        self.assertIn("cannot pay", error or "(the prompt went out)")
        self.assertFalse(self.emulator.prompts, "nothing was sent to any phone")
        self.env.invalidate_all()
        self.assertEqual((tx.state, tx.mpesa_checkout_request_id), ("draft", False))
        tx, token = self._tx_for(ours)
        result, error = self._ask_prompt(tx, token, "0708374149")
        self.assertIsNone(error)
        self.assertEqual(result["state"], "pending")
