"""The emulator's clock: payments made now can carry an earlier date (the demo's
history is replayed day by day), and reset() brings the real time back."""

from datetime import datetime, timedelta

from daraja_emulator.helpers import KENYA

PHONE = "254708374149"


def stk_paid_at(emu, client, receiver):
    status, answer = client.stk_push(phone=PHONE, callback_url=receiver.url("/stk"))
    assert status == 200, answer
    [delivery] = emu.wait_for_deliveries(1, kind="stk_callback")
    meta = delivery.payload["Body"]["stkCallback"]["CallbackMetadata"]["Item"]
    return str({i["Name"]: i.get("Value") for i in meta}["TransactionDate"])


def test_stk_and_c2b_carry_the_emulator_clock(emu, client, receiver):
    then = datetime(2026, 3, 14, 9, 30, tzinfo=KENYA)
    emu.set_clock(then)
    paid = stk_paid_at(emu, client, receiver)
    assert then <= datetime.strptime(paid, "%Y%m%d%H%M%S").replace(tzinfo=KENYA)
    assert paid.startswith("2026031409")

    status, answer = client.post(
        "/mpesa/c2b/v2/registerurl",
        {
            "ShortCode": "174379",
            "ResponseType": "Completed",
            "ConfirmationURL": receiver.url("/confirmation"),
            "ValidationURL": receiver.url("/validation"),
        },
    )
    assert status == 200, answer
    trans_id = emu.c2b_pay("174379", "254708374126", 250, "ACC 1")
    confirmation = emu.wait_for_deliveries(1, kind="c2b_confirmation")[0].payload
    assert confirmation["TransID"] == trans_id
    assert confirmation["TransTime"].startswith("2026031409")
    assert emu.payments[trans_id]["time"].date() == then.date()


def test_reset_brings_back_the_real_time(emu):
    emu.set_clock(datetime.now(KENYA) - timedelta(days=40))
    emu.reset()
    receipt = emu.add_payment(100)
    now = datetime.now(KENYA)
    assert abs(emu.payments[receipt]["time"] - now) < timedelta(seconds=5)
