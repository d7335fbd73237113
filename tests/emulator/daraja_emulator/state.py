"""Everything the emulated M-PESA remembers: apps, tokens, shortcodes, prompts,
scenarios and the ledger of completed payments. Guarded by one lock."""

import threading
import time
from dataclasses import dataclass, field, replace

from . import helpers
from .scenario import MAGIC_PHONES, Scenario


@dataclass
class Shortcode:
    shortcode: str
    passkey: str | None = None
    kind: str = "paybill"  # or "till" (Buy Goods; shortcode = store number)
    till: str | None = None
    external_validation: bool = True
    initiator: str = "testapi"
    security_credential: str = "emulator-credential"
    balance: float = 0.0
    organization_name: str = "Emulator Merchant"
    initial_balance: float = 0.0
    c2b: dict | None = None  # registered ConfirmationURL/ValidationURL/ResponseType
    pull: dict | None = None  # Pull API registration
    # What the SecurityCredential must decrypt to (the emulator's certificate).
    initiator_password: str = "Safaricom999!*!"

    @property
    def till_number(self):
        return self.till or self.shortcode


@dataclass
class Prompt:
    """An STK push as seen on the customer's phone."""

    checkout_request_id: str
    merchant_request_id: str
    shortcode: str
    phone: str
    amount: int
    account_reference: str
    transaction_desc: str
    callback_url: str
    transaction_type: str
    scenario: Scenario
    created_at: object
    forced_code: int | None = None  # e.g. 2028: the phone never rings
    status: str = "open"  # open, approved, declined, timeout, failed
    result_code: int | None = None
    result_desc: str | None = None
    receipt: str | None = None
    resolved_at: object = None
    decision: str | None = None
    event: threading.Event = field(default_factory=threading.Event, repr=False)

    def as_dict(self):
        return {
            "CheckoutRequestID": self.checkout_request_id,
            "MerchantRequestID": self.merchant_request_id,
            "shortcode": self.shortcode,
            "phone": self.phone,
            "amount": self.amount,
            "account_reference": self.account_reference,
            "transaction_desc": self.transaction_desc,
            "status": self.status,
            "result_code": self.result_code,
            "result_desc": self.result_desc,
            "receipt": self.receipt,
            "created_at": self.created_at.isoformat(),
        }


STATUS_BY_CODE = {0: "approved", 1032: "declined", 1037: "timeout"}


class State:
    def __init__(self, token_lifetime=3599):
        self.lock = threading.RLock()
        self.token_lifetime = token_lifetime
        self.apps = {}  # consumer key -> secret
        self.tokens = {}  # token -> (consumer key, expiry monotonic time)
        self.app_tokens = {}  # consumer key -> its only valid token
        self.shortcodes = {}
        self.prompts = {}
        self.payments = {}  # receipt -> dict
        self.scenarios = {}
        self.default_scenario = Scenario()
        self.receipts = set()  # every receipt ever issued, to keep them unique
        self.generation = 0  # bumped by reset so stale workers stay quiet

    # -- auth ---------------------------------------------------------------
    def issue_token(self, key):
        with self.lock:
            old = self.app_tokens.pop(key, None)
            # Daraja invalidates the app's previous token when a new one is issued.
            self.tokens.pop(old, None)
            token = helpers.access_token()
            self.tokens[token] = (key, time.monotonic() + self.token_lifetime)
            self.app_tokens[key] = token
            return token

    def token_valid(self, token):
        with self.lock:
            entry = self.tokens.get(token)
            return bool(entry) and entry[1] > time.monotonic()

    def invalidate_tokens(self):
        with self.lock:
            self.tokens.clear()
            self.app_tokens.clear()

    # -- shortcodes and scenarios -------------------------------------------
    def find_shortcode(self, value, till_ok=False):
        code = helpers.code_str(value)
        with self.lock:
            if code in self.shortcodes:
                return self.shortcodes[code]
            if till_ok:
                for sc in self.shortcodes.values():
                    if sc.kind == "till" and sc.till_number == code:
                        return sc
        return None

    def scenario_for(self, phone):
        phone = str(phone)
        with self.lock:
            if phone in self.scenarios:
                return self.scenarios[phone]
            if phone in MAGIC_PHONES:
                return replace(self.default_scenario, **MAGIC_PHONES[phone])
            return self.default_scenario

    # -- ledger ---------------------------------------------------------------
    def new_receipt(self):
        with self.lock:
            while True:
                receipt = helpers.receipt_number()
                if receipt not in self.receipts and receipt not in self.payments:
                    self.receipts.add(receipt)
                    return receipt

    def record_payment(
        self,
        shortcode,
        receipt,
        amount,
        phone,
        bill_ref,
        moment,
        source,
        first_name="JOHN",
    ):
        """Store a completed payment, credit the shortcode; return the new balance."""
        with self.lock:
            self.receipts.add(receipt)
            shortcode.balance += float(amount)
            self.payments[receipt] = {
                "receipt": receipt,
                "amount": helpers.number(amount),
                "phone": str(phone),
                "shortcode": shortcode.shortcode,
                "kind": shortcode.kind,
                "bill_ref": bill_ref,
                "time": moment,
                "source": source,
                "first_name": first_name,
                "status": "Completed",
                "reversal": None,
            }
            return shortcode.balance

    def reverse_payment(self, shortcode, payment, receipt):
        """Send a completed payment's money back under the reversal's ``receipt``
        (its TransactionID); return the shortcode's new balance."""
        with self.lock:
            payment["status"] = "Reversed"
            payment["reversal"] = receipt
            shortcode.balance -= float(payment["amount"])
            return shortcode.balance

    def settle(self, prompt, code, desc, paid_amount, paid_phone, moment):
        """Give an STK prompt its final result (a late success may settle again)."""
        with self.lock:
            prompt.result_code = code
            prompt.result_desc = desc
            prompt.resolved_at = moment
            prompt.status = STATUS_BY_CODE.get(code, "failed")
            if code == 0 and prompt.receipt is None:
                prompt.receipt = self.new_receipt()
                shortcode = self.shortcodes[prompt.shortcode]
                self.record_payment(
                    shortcode,
                    prompt.receipt,
                    paid_amount,
                    paid_phone,
                    prompt.account_reference,
                    moment,
                    "stk",
                )

    def reset(self):
        with self.lock:
            self.generation += 1
            for prompt in self.prompts.values():
                prompt.event.set()  # release manual-mode waiters
            self.prompts.clear()
            self.payments.clear()
            self.scenarios.clear()
            self.default_scenario = Scenario()
            for sc in self.shortcodes.values():
                sc.c2b = sc.pull = None
                sc.balance = sc.initial_balance
