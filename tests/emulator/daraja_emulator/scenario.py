"""What happens after an STK push (or a C2B payment): result codes and scenarios."""

from dataclasses import dataclass

RESULT_DESCS = {
    0: "The service request is processed successfully.",
    1: "The balance is insufficient for the transaction.",
    2: "Declined due to limit rule: less than the minimum transaction amount.",
    3: "Declined due to limit rule: greater than the maximum transaction amount.",
    4: "Declined due to limit rule: would exceed daily transfer limit.",
    8: "Declined due to limit rule: would exceed the maximum balance.",
    17: "Rule limited.",
    26: "System busy. The service request is rejected.",
    1001: "Unable to lock subscriber, a transaction is already in process for the "
    "current subscriber",
    1019: "Transaction has expired",
    1025: "An error occurred while sending a push request",
    1032: "Request cancelled by user",
    1037: "DS timeout user cannot be reached",
    2001: "The initiator information is invalid.",
    2028: "The request is not permitted according to product assignment",
    8006: "The security credential is locked",
    9999: "An error occurred while sending a push request",
}

# Paying phone numbers with a built-in outcome: the single table documented in
# README.md. The values are Scenario fields.
MAGIC_PHONES = {
    "254700001032": {"result_code": 1032},
    "254700001037": {"result_code": 1037},
    "254700000001": {"result_code": 1},
    "254700002001": {"result_code": 2001},
    "254700001019": {"result_code": 1019},
    "254700001038": {"result_code": 1037, "late_success_after": 1.0},
}

# Manual answers from the virtual phone / resolve_prompt.
ACTION_CODES = {"approve": 0, "decline": 1032, "timeout": 1037}


def describe(code):
    return RESULT_DESCS.get(code, "The service request failed.")


@dataclass(frozen=True)
class Scenario:
    """How the emulated customer and M-PESA behave for one paying phone."""

    result_code: int = 0
    result_desc: str | None = None
    delay: float = 0.05
    repeat: int = 1
    concurrent: bool = False
    before_response: bool = False
    no_callback: bool = False
    late_success_after: float | None = None
    amount: float | None = None
    paid_phone: str | None = None
    amount_style: str = "int"
    balance_item: bool = False
    query_pending: str = "http500"
    metadata_missing: bool = False
    # A paybill STK payment also notified as a C2B confirmation (TransID = receipt).
    c2b_echo: bool = False
    # Daraja accepts the push and runs the prompt, but its answer never reaches the
    # caller (the connection drops): the caller has no CheckoutRequestID.
    response_lost: bool = False

    def __post_init__(self):
        if self.amount_style not in ("int", "decimal"):
            raise ValueError("amount_style must be 'int' or 'decimal'")
        if self.query_pending not in ("http500", "4999"):
            raise ValueError("query_pending must be 'http500' or '4999'")
        if int(self.repeat) < 1:
            raise ValueError("repeat must be >= 1")

    def desc(self, code=None):
        code = self.result_code if code is None else code
        if code == self.result_code and self.result_desc:
            return self.result_desc
        return describe(code)
