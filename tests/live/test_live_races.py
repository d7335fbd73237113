"""Races between workers, made deterministic: the test holds a row lock from its own
database connection so that a worker's transaction takes its (REPEATABLE READ) snapshot
before another transaction commits, then lets go."""

import contextlib
import threading

import requests

from .harness import http, pg_connect, wait_until

ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}


@contextlib.contextmanager
def holding(db, *statements):
    """Run ``statements`` in a transaction of our own; roll it back (or commit it with
    ``blocker.commit()``) when the block ends."""
    conn = pg_connect(db, autocommit=False)
    try:
        with conn.cursor() as cr:
            for query, params in statements:
                cr.execute(query, params)
        yield conn
    finally:
        conn.rollback()
        conn.close()


def post_in_thread(url, body):
    result = {}

    def post():
        try:
            result["response"] = http().post(
                url, data=body, headers={"Content-Type": "application/json"}, timeout=90
            )
        except requests.RequestException as error:  # reported by the assertions
            result["error"] = error

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return thread, result


@contextlib.contextmanager
def booked_at_once(mpesa):
    """Without initiator credentials a paybill confirmation is booked at once
    (unconfirmed): it reaches its invoice in the job that applies it, where the races
    below are staged."""
    credential = mpesa.rpc(
        "payment.provider", "read", [mpesa.provider_id], ["mpesa_security_credential"]
    )[0]["mpesa_security_credential"]
    mpesa.set_provider({"mpesa_security_credential": False})
    try:
        yield
    finally:
        mpesa.set_provider({"mpesa_security_credential": credential})


def post_confirmations(mpesa, bodies):
    """Post C2B confirmations; each is answered at once, whatever the books do."""
    url = mpesa.url + mpesa.c2b_url("confirmation")
    for body in bodies:
        response = http().post(
            url, data=body, headers={"Content-Type": "application/json"}, timeout=30
        )
        assert (response.status_code, response.json()) == (200, ACCEPTED)


def start_recovery_job(mpesa, body):
    """The recovery job, in another worker, on the last stored callback with
    ``body`` (made old enough for it); returns its thread and the errors it met."""
    mpesa.sql.execute(
        "UPDATE mpesa_callback SET create_date = create_date - interval '5 minutes'"
        " WHERE id = (SELECT max(id) FROM mpesa_callback"
        "  WHERE kind = 'c2b_confirmation' AND body = %s)",
        [body.decode()],
    )
    errors = []

    def run():
        try:
            mpesa.rpc.run_cron("mpesa_payment.cron_process_stuck_callbacks")
        except Exception as error:  # noqa: BLE001 - reported by the caller
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def test_inbox_keeps_the_body_when_its_insert_hits_a_concurrent_update(mpesa):
    """The raw body must be stored whatever happens. Here the inbox INSERT (its foreign
    key check on the payment transaction) meets an update committed by another
    transaction after its snapshot, as when 100 copies race (test_live_concurrency):
    a serialization failure. Odoo then retries the whole request, whose body was
    already read with get_data(cache=False): the retry stores an empty body, answers
    400 "Malformed JSON", and the callback Safaricom sent is lost."""
    phone = "254711000500"
    mpesa.emulator.set_scenario(phone, no_callback=True)
    _invoice_id, tx = mpesa.pay_invoice_by_push(1600, phone)
    path, body = mpesa.stk_callback(tx)

    # Another worker is updating the payment (e.g. the first of several copies).
    touch = "UPDATE payment_transaction SET write_date = write_date WHERE id = %s"
    with holding(
        mpesa.server.db,
        ("SELECT id FROM payment_transaction WHERE id = %s FOR UPDATE", [tx["id"]]),
        (touch, [tx["id"]]),
    ) as other_worker:
        thread, result = post_in_thread(mpesa.url + path, body)
        wait_until(
            lambda: mpesa.lock_waiters('%INSERT INTO "mpesa_callback"%'),
            20,
            "the callback's inbox INSERT to wait for the transaction row",
        )
        other_worker.commit()
    thread.join(90)
    mpesa.settle_inbox()

    stored = mpesa.sql.all(
        "SELECT state, body FROM mpesa_callback WHERE transaction_id = %s ORDER BY id",
        [tx["id"]],
    )
    response = result.get("response")
    assert response is not None, result.get("error")
    assert response.status_code == 200, (response.status_code, response.text, stored)
    assert response.json() == ACCEPTED
    assert stored == [("processed", body.decode())], "the body, exactly as sent"
    assert mpesa.tx(tx_id=tx["id"])["state"] == "done"


def test_two_first_c2b_confirmations_racing(mpesa):
    """Two copies of a new C2B confirmation applied at once: the first by the inbox
    job, still open (not committed) when the recovery job, in another worker, applies
    the second. The second one's INSERT of the receipt waits for the first, then hits
    the unique constraint; the existing receipt is not visible in its REPEATABLE READ
    snapshot. It must end as a duplicate on a new snapshot, never in state error nor as
    a second payment."""
    phone, amount = "254711000600", 1700
    invoice_id, invoice_name = mpesa.create_invoice(amount)
    with booked_at_once(mpesa):
        _race_two_first_copies(mpesa, phone, amount, invoice_id, invoice_name)


def _race_two_first_copies(mpesa, phone, amount, invoice_id, invoice_name):
    mpesa.emulator.set_scenario(phone, no_callback=True)
    trans_id = mpesa.emulator.c2b_pay("174379", phone, amount, invoice_name)
    body = mpesa.c2b_notification(trans_id, phone, amount, invoice_name)

    # Someone works on the invoice (row locked, nothing changed): the inbox job stops
    # on the first copy after creating the receipt, when it links it to the invoice.
    with holding(
        mpesa.server.db,
        ("SELECT id FROM account_move WHERE id = %s FOR UPDATE", [invoice_id]),
    ):
        post_confirmations(mpesa, [body, body])
        wait_until(
            lambda: mpesa.lock_waiters("%"), 20, "the inbox job to wait for the invoice"
        )
        # The recovery job takes the second copy meanwhile.
        recovery, recovery_errors = start_recovery_job(mpesa, body)
        wait_until(
            lambda: mpesa.lock_waiters('%INSERT INTO "mpesa_receipt"%'),
            20,
            "the second copy's receipt INSERT to wait for the first copy",
        )
    recovery.join(90)
    assert not recovery.is_alive(), "the recovery job did not finish"
    assert recovery_errors == []
    mpesa.settle_inbox()

    callbacks = mpesa.sql.all(
        "SELECT state, error FROM mpesa_callback WHERE kind = 'c2b_confirmation'"
        " AND body = %s ORDER BY id",
        [body.decode()],
    )
    assert sorted(state for state, _error in callbacks) == [
        "duplicate",
        "processed",
    ], callbacks
    assert len(mpesa.receipts(trans_id)) == 1
    assert (
        mpesa.sql.scalar(
            "SELECT count(*) FROM payment_transaction WHERE mpesa_receipt_code = %s",
            [trans_id],
        )
        == 1
    )
    # The payment framework's job, woken when the payment is done, may meet the
    # recovery job's locks: core then rolls back and tries on its next run. Run it.
    mpesa.post_process()
    assert mpesa.invoice(invoice_id)["payment_state"] in ("paid", "in_payment")
    assert mpesa.check_books() == []


def test_two_paybill_payments_of_one_invoice_at_the_same_instant(mpesa):
    """Two customers' paybill payments (two receipts) quote one invoice and are
    applied at the same instant in two workers: the inbox job and the recovery job.
    Both read what the invoice has left to pay before either commits. Only the first
    may pay it; the second is a duplicate for finance, not a second payment credited
    to the customer."""
    phone, amount = "254711000650", 1750
    invoice_id, invoice_name = mpesa.create_invoice(amount)
    with booked_at_once(mpesa):
        codes = _race_two_payments(mpesa, phone, amount, invoice_id, invoice_name)
    [first], [second] = (mpesa.receipts(code) for code in codes)
    assert sorted((first["state"], second["state"])) == ["applied", "review"], (
        first,
        second,
    )
    waiting = first if first["state"] == "review" else second
    assert (
        mpesa.sql.scalar(
            "SELECT review_cause FROM mpesa_receipt WHERE id = %s", [waiting["id"]]
        )
        == "duplicate"
    )
    applied = second if waiting is first else first
    mpesa.post_process()
    assert mpesa.invoice(invoice_id)["payment_state"] in ("paid", "in_payment")
    mpesa.assert_books([applied["transaction_id"]], [invoice_id])
    assert mpesa.check_books() == []


def _race_two_payments(mpesa, phone, amount, invoice_id, invoice_name):
    """Stage the race; returns the two receipt codes."""
    mpesa.emulator.set_scenario(phone, no_callback=True)
    codes, bodies = [], []
    for _payment in range(2):
        code = mpesa.emulator.c2b_pay("174379", phone, amount, invoice_name)
        codes.append(code)
        bodies.append(mpesa.c2b_notification(code, phone, amount, invoice_name))
    # Someone works on the invoice (row locked, nothing changed): each worker stops
    # at the invoice once its snapshot is taken, and both go on together.
    with holding(
        mpesa.server.db,
        ("SELECT id FROM account_move WHERE id = %s FOR UPDATE", [invoice_id]),
    ):
        post_confirmations(mpesa, bodies)
        wait_until(
            lambda: mpesa.lock_waiters("%"), 20, "the inbox job to wait for the invoice"
        )
        recovery, recovery_errors = start_recovery_job(mpesa, bodies[1])
        wait_until(
            lambda: len(mpesa.lock_waiters("%")) >= 2,
            20,
            "both payments to wait for the invoice",
        )
    recovery.join(90)
    assert not recovery.is_alive(), "the recovery job did not finish"
    assert recovery_errors == []
    mpesa.settle_inbox()
    return codes


def test_c2b_confirmation_kept_while_the_provider_is_updated(mpesa):
    """Same loss for money paid by paybill, which no status query recovers: the C2B
    inbox INSERT checks its foreign key on the provider row, which other workers update
    (e.g. the shared Daraja OAuth token, ProviderTokenStore.refresh)."""
    phone, amount = "254711000700", 1900
    _invoice_id, invoice_name = mpesa.create_invoice(amount)
    mpesa.emulator.set_scenario(phone, no_callback=True)
    trans_id = mpesa.emulator.c2b_pay("174379", phone, amount, invoice_name)
    body = mpesa.c2b_notification(trans_id, phone, amount, invoice_name)
    url = mpesa.url + mpesa.c2b_url("confirmation")

    last_id = mpesa.sql.scalar("SELECT coalesce(max(id), 0) FROM mpesa_callback")
    touch = "UPDATE payment_provider SET write_date = write_date WHERE id = %s"
    with holding(
        mpesa.server.db,
        (
            "SELECT id FROM payment_provider WHERE id = %s FOR UPDATE",
            [mpesa.provider_id],
        ),
        (touch, [mpesa.provider_id]),
    ) as other_worker:
        thread, result = post_in_thread(url, body)
        wait_until(
            lambda: mpesa.lock_waiters('%INSERT INTO "mpesa_callback"%'),
            20,
            "the confirmation's inbox INSERT to wait for the provider row",
        )
        other_worker.commit()
    thread.join(90)
    mpesa.settle_inbox()

    # The inbox job asks M-PESA (Transaction Status) whether a paybill payment
    # happened before booking it: that Result is stored too, a moment later.
    stored = mpesa.sql.all(
        "SELECT state, body FROM mpesa_callback WHERE id > %s"
        " AND kind = 'c2b_confirmation' ORDER BY id",
        [last_id],
    )
    response = result.get("response")
    assert response is not None, result.get("error")
    assert response.status_code == 200, (response.status_code, response.text, stored)
    assert stored == [("processed", body.decode())], "the body, exactly as sent"
    assert len(mpesa.receipts(trans_id)) == 1


def test_status_result_before_its_request_is_committed(mpesa):
    """Before booking a paybill payment, the inbox job asks M-PESA whether it happened
    (Transaction Status), inside the transaction that applies the confirmation. The
    Result can reach us before that transaction commits: its request is not found
    yet. It was kept for a person, and the invoice stayed unpaid; it must be applied
    once the request is committed."""
    phone, amount = "254711000710", 2300
    invoice_id, invoice_name = mpesa.create_invoice(amount)
    mpesa.emulator.set_scenario(phone, no_callback=True)
    trans_id = mpesa.emulator.c2b_pay("174379", phone, amount, invoice_name)
    body = mpesa.c2b_notification(trans_id, phone, amount, invoice_name)
    mpesa.emulator.result_before_ack = True
    try:
        ((status, _answer),) = mpesa.fire(mpesa.c2b_url("confirmation"), body, 1)
        assert status == 200
        mpesa.settle_inbox()
        assert mpesa.wait_confirmed(trans_id) == "verified"
    finally:
        mpesa.emulator.result_before_ack = False

    (delivery,) = [
        d
        for d in mpesa.emulator.deliveries
        if d.kind == "result" and trans_id in d.body.decode()
    ]
    # Delivered while the request was not committed: the route could not see it.
    results = mpesa.sql.dicts(
        "SELECT c.state, c.api_request_id, r.receipt_code FROM mpesa_callback c"
        " JOIN mpesa_api_request r ON r.id = c.url_request_number"
        " WHERE c.kind = 'result' AND c.body = %s",
        [delivery.body.decode()],
    )
    assert [(r["state"], r["receipt_code"]) for r in results] == [
        ("processed", trans_id)
    ], results
    assert results[0]["api_request_id"]
    (receipt,) = mpesa.receipts(trans_id)
    assert receipt["state"] == "applied", receipt
    mpesa.post_process()
    mpesa.assert_books([receipt["transaction_id"]], [invoice_id])


def test_post_processing_retried_after_a_concurrent_update(mpesa):
    """Core's post-processing job rolls back a payment whose post-processing meets a
    concurrency error and leaves it to its next run, ten minutes on: the invoice
    shows unpaid meanwhile (1 in 100 in the callback benchmark, at 50 and at 100
    senders). Here another transaction updates the invoice while the job pays it: the
    M-PESA payment must be retried at once, on a new snapshot."""
    phone, amount = "254711000730", 2500
    mpesa.emulator.set_scenario(phone, no_callback=True)
    invoice_id, tx = mpesa.pay_invoice_by_push(amount, phone)
    path, body = mpesa.stk_callback(tx)
    touch = "UPDATE account_move SET write_date = write_date WHERE id = %s"
    with holding(mpesa.server.db, (touch, [invoice_id])) as other_worker:
        ((status, _answer),) = mpesa.fire(path, body, 1)
        assert status == 200
        mpesa.wait_tx_state(tx["id"], ("done",), 60)
        # The job woken by the payment reaches the invoice, and waits for us.
        wait_until(
            lambda: mpesa.lock_waiters("%"),
            60,
            "the post-processing job to wait for the invoice",
        )
        other_worker.commit()
    wait_until(
        lambda: mpesa.invoice(invoice_id)["payment_state"] in ("paid", "in_payment"),
        60,
        "the invoice to be paid",
    )
    mpesa.assert_books([tx["id"]], [invoice_id])
