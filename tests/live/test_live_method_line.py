"""Concurrent first payments and the journal's payment method lines (issue #11,
finding 10).

Odoo core creates a provider's payment method line when ``journal_id`` is first
computed. On a fresh database that is when the first M-PESA payments are booked (the
receipt's statement line reads the provider's journal), in several workers at once: four
first STK callbacks made four M-PESA lines on one journal within 130 ms, after which no
provider could be enabled on that journal ("two payment method lines ... with the same
name") and no payment could be created for them ("Expected singleton").

Callbacks are applied off the request path now, by the inbox job, and by each customer's
status page for their own payment: the first payments are still booked in several
workers at once when the customers' pages poll while the job runs."""

import json
import threading
from collections import Counter

import requests

from .harness import JsonRpcError, http

ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}
PAYMENTS = 8


def _mpesa_lines(mpesa, journal_id):
    return mpesa.sql.dicts(
        "SELECT l.id, l.name, l.payment_provider_id, l.create_date"
        " FROM account_payment_method_line l"
        " JOIN account_payment_method m ON m.id = l.payment_method_id"
        " WHERE l.journal_id = %s AND m.code = 'mpesa' ORDER BY l.id",
        [journal_id],
    )


def _pay_all_at_once(url, payments):
    """For each payment, in its own thread, all released together: M-PESA posts the
    callback, then the customer's status page polls (and applies its own payment,
    while the inbox job applies the others). Returns the callback answers."""
    start = threading.Barrier(len(payments))
    results = [None] * len(payments)

    def pay(index, client, path, body):
        start.wait()
        try:
            response = http().post(
                url + path,
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=120,
            )
            results[index] = (response.status_code, response.text)
            client.jsonrpc("/payment/status/poll", {}, timeout=120)
        except (requests.RequestException, JsonRpcError) as error:
            results[index] = (None, repr(error))

    threads = [
        threading.Thread(target=pay, args=(i, client, path, body), daemon=True)
        for i, (client, path, body) in enumerate(payments)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    return results


def test_concurrent_first_payments_make_one_method_line(mpesa, record_property):
    journal_id, provider_id = mpesa.journal_id, mpesa.provider_id
    phones = [f"2547110011{i:02d}" for i in range(PAYMENTS)]
    payments = []
    for i, phone in enumerate(phones):
        mpesa.emulator.set_scenario(phone, no_callback=True)
        invoice_id, _name = mpesa.create_invoice(2000 + i)
        client, processing = mpesa.portal_transaction(invoice_id)
        assert mpesa.stk_push(client, processing, phone)["state"] == "pending"
        tx = mpesa.tx(processing["reference"])
        payments.append((invoice_id, tx, client, *mpesa.stk_callback(tx)))

    # A fresh database: the provider is enabled, its line not made yet, and the
    # M-PESA journal is the company's first bank journal (the one core then picks).
    # The line is taken off the journal rather than deleted: earlier tests' payments
    # may use it.
    sequence = mpesa.sql.scalar(
        "SELECT sequence FROM account_journal WHERE id = %s", [journal_id]
    )
    mpesa.sql.execute(
        "UPDATE account_journal SET sequence = -1 WHERE id = %s", [journal_id]
    )
    mpesa.sql.execute(
        "UPDATE account_payment_method_line SET journal_id = NULL,"
        " payment_provider_id = NULL WHERE payment_provider_id = %s",
        [provider_id],
    )
    till_id = None
    try:
        assert _mpesa_lines(mpesa, journal_id) == []

        results = _pay_all_at_once(
            mpesa.url,
            [(client, path, body) for _inv, _tx, client, path, body in payments],
        )
        statuses = Counter(status for status, _text in results)
        assert statuses == {200: PAYMENTS}, results
        assert {text for _status, text in results} == {json.dumps(ACCEPTED)}
        mpesa.settle_inbox()

        lines = _mpesa_lines(mpesa, journal_id)
        if len(lines) > 1:
            spread = lines[-1]["create_date"] - lines[0]["create_date"]
            record_property("duplicate_lines_within_ms", spread.total_seconds() * 1000)
        record_property("mpesa_lines_on_journal", len(lines))
        assert [line["payment_provider_id"] for line in lines] == [provider_id], (
            f"{len(lines)} M-PESA payment method lines on the journal: {lines}"
        )
        [provider] = mpesa.rpc(
            "payment.provider", "read", [provider_id], ["journal_id"]
        )
        assert provider["journal_id"][0] == journal_id

        for _invoice_id, tx, _client, _path, _body in payments:
            assert mpesa.tx(tx_id=tx["id"])["state"] == "done", tx
        # The payments use the one line (core: "Expected singleton" with several).
        mpesa.post_process()
        for invoice_id, tx, _client, _path, _body in payments:
            assert mpesa.invoice(invoice_id)["payment_state"] == "paid", tx
        assert mpesa.sql.scalar(
            "SELECT array_agg(DISTINCT p.payment_method_line_id)"
            " FROM account_payment p JOIN payment_transaction tx"
            " ON tx.payment_id = p.id WHERE tx.id = ANY(%s)",
            [[tx["id"] for _inv, tx, _client, _path, _body in payments]],
        ) == [lines[0]["id"]]

        # Another provider enabled on that journal: refused while duplicates exist.
        # (Core's provider creation rewrites the post-processing job, which the
        # payments above woke: harness.Rpc tries again until the job is done.)
        till_id = mpesa.rpc(
            "payment.provider",
            "create",
            {
                "name": "M-PESA Till (live)",
                "code": "mpesa",
                "state": "test",
                "mpesa_consumer_key": "till-key",
                "mpesa_consumer_secret": "till-secret",
                "mpesa_shortcode": "600000",
                "mpesa_passkey": "till-passkey",
                "journal_id": journal_id,
            },
        )
        names = sorted(line["name"] for line in _mpesa_lines(mpesa, journal_id))
        assert names == sorted([lines[0]["name"], "M-PESA Till (live)"])
    finally:
        mpesa.sql.execute(
            "UPDATE account_journal SET sequence = %s WHERE id = %s",
            [sequence, journal_id],
        )
        if till_id:
            mpesa.rpc("payment.provider", "write", [till_id], {"state": "disabled"})
            till_lines = mpesa.rpc(
                "account.payment.method.line",
                "search",
                [("payment_provider_id", "=", till_id)],
            )
            mpesa.rpc("account.payment.method.line", "unlink", till_lines)
            mpesa.rpc("payment.provider", "unlink", [till_id])
        # Whatever happened, later tests get one line on the journal.
        mpesa.sql.execute(
            "UPDATE account_payment_method_line SET journal_id = NULL"
            " WHERE payment_provider_id = %s AND journal_id = %s AND id <> ("
            "  SELECT min(id) FROM account_payment_method_line"
            "  WHERE payment_provider_id = %s AND journal_id = %s)",
            [provider_id, journal_id, provider_id, journal_id],
        )
