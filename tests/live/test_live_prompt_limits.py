"""Prompt spam and double prompts on a real 4-worker server (issue 11, finding 2).

Two browser tabs of one customer, or a script holding an emailed invoice link, hammer
``/payment/mpesa/stk_push``: exactly one prompt reaches the phone per document at a
time, and a burst over the provider's limits gets clear refusals, not prompts."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from .harness import JsonRpcError

NO_LIMITS = {
    "mpesa_push_limit_document": 0,
    "mpesa_push_limit_phone": 0,
    "mpesa_push_limit_address": 0,
}
CLEAR_REFUSALS = (
    "is being sent right now",
    "is already waiting on",
    "was already sent",
    "Too many payment requests",
)


@pytest.fixture
def limits(live):
    """Set the provider's limits; the phones of this test leave their prompts open
    (the emulated customer does not answer) until the test declines them."""
    live.emulator.auto_complete = False
    yield live.set_provider
    live.emulator.auto_complete = True
    live.set_provider(NO_LIMITS)
    for prompt in live.emulator.prompts.values():
        if prompt.phone.startswith("25471100050") and prompt.status == "open":
            live.emulator.resolve_prompt(prompt.checkout_request_id, "decline")


def _ask_all(live, calls):
    """Send every (client, processing, phone) at once; returns (answers, refusals)."""

    def ask(call):
        client, processing, phone = call
        try:
            return live.stk_push(client, processing, phone), None
        except JsonRpcError as error:
            assert error.error["data"]["name"] == "odoo.exceptions.ValidationError", (
                error.error
            )
            return None, str(error)

    with ThreadPoolExecutor(len(calls)) as pool:
        results = list(pool.map(ask, calls))
    answers = [answer for answer, _refusal in results if answer]
    refusals = [refusal for _answer, refusal in results if refusal]
    return answers, refusals


def _prompts_to(live, phone):
    return [p for p in live.emulator.prompts.values() if p.phone == phone]


def test_fifty_pushes_from_two_tabs_send_one_prompt(live, limits):
    limits({**NO_LIMITS, "mpesa_push_limit_document": 5})
    phone = "254711000500"
    invoice_id, _name = live.create_invoice(1500)
    tabs = [live.portal_transaction(invoice_id) for _tab in range(2)]
    calls = [(*tabs[i % 2], phone) for i in range(50)]

    answers, refusals = _ask_all(live, calls)

    assert len(_prompts_to(live, phone)) == 1, "one prompt on the phone"
    assert len(answers) == 1, answers
    assert answers[0]["state"] == "pending"
    assert len(refusals) == 49
    unclear = [r for r in refusals if not any(text in r for text in CLEAR_REFUSALS)]
    assert not unclear, unclear
    pending = live.sql.all(
        "SELECT count(*) FROM payment_transaction WHERE reference IN %s"
        " AND state = 'pending'",
        [tuple(processing["reference"] for _client, processing in tabs)],
    )
    assert pending == [(1,)]


def test_burst_over_the_limits_gets_clear_refusals(live, limits):
    limits({**NO_LIMITS, "mpesa_push_limit_phone": 3})
    victim = "254711000501"
    # A script with eight emailed invoice links floods one phone at once.
    calls = [
        (*live.portal_transaction(live.create_invoice(100 + i)[0]), victim)
        for i in range(8)
    ]

    answers, refusals = _ask_all(live, calls)

    # Pushes to one phone at the same moment are refused while one is being sent:
    # the burst gets at most the limit, and a clear word for each refusal.
    assert 1 <= len(answers) <= 3, answers
    assert len(_prompts_to(live, victim)) == len(answers)
    assert len(refusals) == 8 - len(answers)
    assert all(
        "Too many payment requests were sent to 2547****501" in r
        or "is being sent right now" in r
        for r in refusals
    ), refusals
    # Then one at a time: the limit is reached, and holds.
    for amount in range(200, 205):
        client, processing = live.portal_transaction(live.create_invoice(amount)[0])
        try:
            live.stk_push(client, processing, victim)
        except JsonRpcError as refusal:
            assert "Too many payment requests were sent to 2547****501" in str(refusal)
            break
    else:
        pytest.fail("the phone's limit never refused a prompt")
    assert len(_prompts_to(live, victim)) == 3
