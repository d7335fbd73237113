"""Lipa na M-PESA Online: the life of a prompt and its callback body."""

import json

from . import c2b, helpers
from .callbacks import spawn
from .scenario import ACTION_CODES

# Placeholder swapped for the literal amount text: json would write 1.00 as 1.0.
_AMOUNT_TOKEN = "__daraja_emulator_amount__"


def amount_literal(amount, style):
    amount = float(amount)
    if style == "decimal":
        return f"{amount:.2f}"
    return str(int(amount)) if amount.is_integer() else json.dumps(amount)


def callback_body(prompt):
    """The exact bytes M-PESA posts to CallBackURL for the prompt's current result."""
    sc = prompt.scenario
    cb = {
        "MerchantRequestID": prompt.merchant_request_id,
        "CheckoutRequestID": prompt.checkout_request_id,
        "ResultCode": prompt.result_code,
        "ResultDesc": prompt.result_desc,
    }
    if prompt.result_code == 0 and not sc.metadata_missing:
        when = int(helpers.stamp(prompt.resolved_at))
        items = [
            {"Name": "Amount", "Value": _AMOUNT_TOKEN},
            {"Name": "MpesaReceiptNumber", "Value": prompt.receipt},
        ]
        if sc.balance_item:
            items.append({"Name": "Balance"})
        items += [
            {"Name": "TransactionDate", "Value": when},
            {"Name": "PhoneNumber", "Value": int(paid_phone(prompt))},
        ]
        cb["CallbackMetadata"] = {"Item": items}
    text = json.dumps({"Body": {"stkCallback": cb}})
    literal = amount_literal(paid_amount(prompt), sc.amount_style)
    return text.replace(f'"{_AMOUNT_TOKEN}"', literal).encode()


def paid_amount(prompt):
    amount = prompt.scenario.amount
    return prompt.amount if amount is None else amount


def paid_phone(prompt):
    return str(prompt.scenario.paid_phone or prompt.phone)


def query_answer(prompt):
    """(HTTP status, body) of an STK query for this prompt."""
    if prompt.status == "open":
        if prompt.scenario.query_pending == "http500":
            return 500, {
                "requestId": prompt.checkout_request_id,
                "errorCode": "500.001.1001",
                "errorMessage": "The transaction is being processed",
            }
        code, desc = "4999", "The transaction is still under processing"
    else:
        code, desc = str(prompt.result_code), prompt.result_desc
    return 200, {
        "ResponseCode": "0",
        "ResponseDescription": "The service request has been accepted successfully",
        "MerchantRequestID": prompt.merchant_request_id,
        "CheckoutRequestID": prompt.checkout_request_id,
        "ResultCode": code,
        "ResultDesc": desc,
    }


def launch(emu, prompt):
    """Run the prompt: in the request thread for before_response, else a worker."""
    gen = emu.state.generation
    if prompt.scenario.before_response:
        late = _complete(emu, prompt, gen)
        if late:
            spawn(_late_success, emu, prompt, gen)
    else:
        spawn(_run, emu, prompt, gen)


def _run(emu, prompt, gen):
    if _complete(emu, prompt, gen):
        _late_success(emu, prompt, gen)


def _complete(emu, prompt, gen):
    """Wait for the customer, settle, call back. True if a late success follows."""
    sc = prompt.scenario
    manual = not emu.auto_complete and prompt.forced_code is None
    decided = prompt.event.wait(emu.prompt_timeout if manual else sc.delay)
    if manual and not emu.pause(sc.delay):
        return False
    if prompt.forced_code is not None:
        code = prompt.forced_code
    elif decided and prompt.decision:
        code = ACTION_CODES[prompt.decision]
    else:
        code = 1037 if manual else sc.result_code
    if not emu.alive(gen):
        return False
    emu.state.settle(
        prompt,
        code,
        sc.desc(code),
        paid_amount(prompt),
        paid_phone(prompt),
        helpers.kenya_now(),
    )
    _deliver(emu, prompt, gen)
    return code != 0 and sc.late_success_after is not None and not manual


def _late_success(emu, prompt, gen):
    """1037 first, then the customer's PIN arrives after all (seen in production)."""
    if not emu.pause(prompt.scenario.late_success_after) or not emu.alive(gen):
        return
    emu.state.settle(
        prompt,
        0,
        prompt.scenario.desc(0),
        paid_amount(prompt),
        paid_phone(prompt),
        helpers.kenya_now(),
    )
    _deliver(emu, prompt, gen)


def _deliver(emu, prompt, gen):
    sc = prompt.scenario
    if not emu.alive(gen):
        return
    if not sc.no_callback:
        emu.courier.post_repeated(
            "stk_callback",
            prompt.callback_url,
            callback_body(prompt),
            max(1, int(sc.repeat)),
            sc.concurrent,
        )
    # Independent of no_callback: the STK callback may be lost and the C2B one not.
    if sc.c2b_echo and prompt.result_code == 0:
        c2b.echo_stk(emu, prompt, paid_amount(prompt), paid_phone(prompt))
