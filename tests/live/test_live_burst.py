"""A burst of STK callbacks for many payments at once, with Safaricom's duplicates, in
random order: every body stored, each payment done once, the books without difference.

``MPESA_LIVE_BURST`` sets the number of callbacks (default 400; the specification's
full run is 2000). 80 % are distinct payments, 20 % are repeated copies."""

import json
import os
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from .harness import http

ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}
CALLBACKS = int(os.environ.get("MPESA_LIVE_BURST") or 400)
SUCCESS_PHONE = "254711000900"
CANCEL_PHONE = "254711000901"  # the customer cancels the prompt (1032)


def send_all(url, messages, threads, max_delay):
    """POST each (path, body) from a bounded pool, each after a small random delay.
    Returns [(status or None, text or error)] in the order of ``messages``."""

    def post(message):
        path, body = message
        time.sleep(random.uniform(0, max_delay))
        try:
            response = http().post(
                url + path,
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=120,
            )
            return response.status_code, response.text
        except requests.RequestException as error:
            return None, repr(error)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(post, messages))


def test_burst_of_callbacks_with_duplicates(mpesa, record_property, tmp_path):
    """N callbacks (N = MPESA_LIVE_BURST, 400 by default) for 0.8 N payments, 10 % of
    them cancelled, sent in random order by 16 threads with random delays up to 20 ms.
    The sender saw 200 ``Accepted`` for every one of them."""
    rng = random.Random(20260)
    distinct = CALLBACKS * 4 // 5
    cancelled = distinct // 10
    started = time.monotonic()

    # Transactions in batches over XML-RPC; the real push code sends the prompts (in
    # server actions of 50): the emulator settles them but keeps the callbacks back.
    mpesa.emulator.set_scenario(SUCCESS_PHONE, no_callback=True)
    mpesa.emulator.set_scenario(CANCEL_PHONE, no_callback=True, result_code=1032)
    amounts = [rng.randint(10, 5000) for _ in range(distinct)]
    tx_ids = mpesa.create_transactions(amounts, f"BURST{os.getpid()}")
    mpesa.push_many(tx_ids[cancelled:], SUCCESS_PHONE)
    mpesa.push_many(tx_ids[:cancelled], CANCEL_PHONE)
    txs = mpesa.sql.dicts(
        "SELECT id, state, mpesa_checkout_request_id FROM payment_transaction"
        " WHERE id = ANY(%s)",
        [tx_ids],
    )
    assert {tx["state"] for tx in txs} == {"pending"}, Counter(t["state"] for t in txs)
    # The exact bytes the emulator would have posted for each prompt.
    callbacks = [mpesa.stk_callback(tx) for tx in txs]
    messages = callbacks + rng.choices(callbacks, k=CALLBACKS - distinct)
    rng.shuffle(messages)
    prepared = time.monotonic()

    results = send_all(mpesa.url, messages, threads=16, max_delay=0.02)
    sent = time.monotonic()
    record_property("burst_callbacks", CALLBACKS)
    record_property("burst_prepare_s", round(prepared - started, 1))
    record_property("burst_send_s", round(sent - prepared, 1))
    statuses = Counter(status for status, _text in results)
    refused = [(s, t[:200]) for s, t in results if s != 200]
    assert statuses == {200: CALLBACKS}, (dict(statuses), refused[:5])
    assert {text for _status, text in results} == {json.dumps(ACCEPTED)}

    # Every body stored, as sent.
    where, params = "transaction_id = ANY(%s)", [tx_ids]
    stored = mpesa.sql.all(f"SELECT body FROM mpesa_callback WHERE {where}", params)
    assert len(stored) == CALLBACKS
    assert Counter(body for (body,) in stored) == Counter(
        body.decode() for _path, body in messages
    )
    before = mpesa.recover_stuck_callbacks(where, params)
    record_property("burst_states_before_recovery", dict(before))
    assert mpesa.callback_states(where, params) == {
        "processed": distinct,
        "duplicate": CALLBACKS - distinct,
    }

    # Each payment once: done with its receipt, or cancelled.
    states = mpesa.sql.dicts(
        "SELECT state, count(*) AS n, count(mpesa_receipt_code) AS receipts,"
        " count(DISTINCT mpesa_receipt_code) AS codes, bool_or(mpesa_needs_review) AS review"
        " FROM payment_transaction WHERE id = ANY(%s) GROUP BY state",
        [tx_ids],
    )
    by_state = {row["state"]: row for row in states}
    assert set(by_state) == {"done", "cancel"}, states
    done = by_state["done"]
    assert done["n"] == done["receipts"] == done["codes"] == distinct - cancelled
    assert not done["review"]
    assert by_state["cancel"]["n"] == cancelled
    assert by_state["cancel"]["receipts"] == 0
    # One receipt and one statement line per receipt, for the right amount.
    lines = mpesa.sql.dicts(
        "SELECT r.name, r.amount AS paid, t.amount, count(l.id) AS lines,"
        " sum(l.amount) AS booked"
        " FROM mpesa_receipt r JOIN payment_transaction t ON t.id = r.transaction_id"
        " LEFT JOIN account_bank_statement_line l ON l.mpesa_receipt_id = r.id"
        " WHERE r.transaction_id = ANY(%s) GROUP BY r.id, t.id",
        [tx_ids],
    )
    assert len(lines) == distinct - cancelled
    assert all(row["lines"] == 1 for row in lines), [
        r for r in lines if r["lines"] != 1
    ]
    assert all(row["paid"] == row["amount"] == row["booked"] for row in lines)

    assert mpesa.check_books() == []
    code, output = mpesa.check_books_cli(tmp_path)
    assert code == 0, output
    assert "0 differences" in output, output
    record_property("burst_total_s", round(time.monotonic() - started, 1))
