"""Control API, manual mode (virtual phone), the phone page and the CLI."""

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from daraja_emulator import DarajaEmulator, Scenario
from daraja_emulator.testing import DarajaClient

PHONE = "254708374149"


def control(client, path, data=None):
    return client.request(path, data, method="POST" if data is not None else None)


# -- control API ---------------------------------------------------------------------
def test_scenario_endpoint(emu, client, receiver):
    assert control(
        client, "/emulator/scenario", {"phone": PHONE, "result_code": 1032}
    ) == (200, {"ok": True})
    assert (
        control(client, "/emulator/scenario", {"default": {"result_code": 1}})[0] == 200
    )
    client.stk_push(phone=PHONE, callback_url=receiver.url("/cb"))
    client.stk_push(phone="254799000000", callback_url=receiver.url("/cb"))
    codes = sorted(
        d.payload["Body"]["stkCallback"]["ResultCode"]
        for d in emu.wait_for_deliveries(2)
    )
    assert codes == [1, 1032]
    assert emu.scenario_for(PHONE) == Scenario(result_code=1032)


def test_scenario_endpoint_rejects_bad_fields(client):
    status, answer = control(
        client, "/emulator/scenario", {"phone": PHONE, "colour": "red"}
    )
    assert status == 400 and answer["errorCode"] == "400.002.02"
    status, answer = control(
        client, "/emulator/scenario", {"phone": PHONE, "amount_style": "roman"}
    )
    assert status == 400
    with pytest.raises(ValueError):
        Scenario(query_pending="later")


def test_reset_endpoint(emu, client, receiver):
    emu.set_scenario(PHONE, result_code=1032)
    emu.add_shortcode("600984")
    client.post(
        "/mpesa/c2b/v2/registerurl",
        {
            "ShortCode": "174379",
            "ResponseType": "Completed",
            "ConfirmationURL": receiver.url("/c"),
            "ValidationURL": receiver.url("/v"),
        },
    )
    client.stk_push(callback_url=receiver.url("/cb"))
    emu.wait_for_deliveries(1)
    emu.add_payment(10)
    assert control(client, "/emulator/reset", {}) == (200, {"ok": True})
    assert emu.prompts == {} and emu.deliveries == [] and emu.payments == {}
    assert emu.scenario_for(PHONE) == Scenario()
    assert emu.state.shortcodes["174379"].c2b is None
    assert "600984" in emu.state.shortcodes and emu.balance() == 0
    # Apps and their tokens survive a reset.
    assert client.stk_query("ws_CO_x")[1]["errorCode"] == "400.002.02"


def test_reset_silences_pending_work(emu, client, receiver):
    emu.set_scenario(PHONE, delay=0.3)
    client.stk_push(callback_url=receiver.url("/cb"))
    emu.reset()
    with pytest.raises(TimeoutError):
        emu.wait_for_deliveries(1, timeout=0.6)
    assert receiver.received == []


def test_prompts_deliveries_payments_endpoints(emu, client, receiver):
    _, pushed = client.stk_push(callback_url=receiver.url("/cb"), amount=1250)
    emu.wait_for_deliveries(1)
    status, prompts = client.request("/emulator/prompts")
    assert status == 200 and len(prompts) == 1
    prompt = prompts[0]
    assert prompt["CheckoutRequestID"] == pushed["CheckoutRequestID"]
    assert (prompt["amount"], prompt["phone"], prompt["status"]) == (
        1250,
        PHONE,
        "approved",
    )
    status, deliveries = client.request("/emulator/deliveries")
    assert deliveries[0]["kind"] == "stk_callback" and deliveries[0]["status"] == 200
    assert '"ResultCode": 0' in deliveries[0]["body"]
    status, payments = client.request("/emulator/payments")
    assert payments[0]["receipt"] == prompt["receipt"]
    assert payments[0]["time"].endswith("+03:00")


def test_c2b_pay_endpoint(emu, client, receiver):
    client.post(
        "/mpesa/c2b/v2/registerurl",
        {
            "ShortCode": "174379",
            "ResponseType": "Completed",
            "ConfirmationURL": receiver.url("/c"),
            "ValidationURL": receiver.url("/v"),
        },
    )
    status, answer = control(
        client,
        "/emulator/c2b/pay",
        {
            "shortcode": "174379",
            "msisdn": PHONE,
            "amount": "75",
            "bill_ref": "INV7",
            "msisdn_style": "hashed",
            "api_version": "v1",
        },
    )
    assert status == 200
    confirmation = emu.wait_for_deliveries(1, kind="c2b_confirmation")[0].payload
    assert confirmation["TransID"] == answer["TransID"]
    assert confirmation["TransAmount"] == "75.00" and len(confirmation["MSISDN"]) == 64
    status, answer = control(client, "/emulator/c2b/pay", {"shortcode": "174379"})
    assert status == 400 and "msisdn" in answer["errorMessage"]


def test_control_unknown_paths(client):
    assert client.request("/emulator/nothing")[0] == 404
    assert control(client, "/emulator/nothing", {})[0] == 404


# -- manual mode ------------------------------------------------------------------------
@pytest.fixture
def manual():
    with DarajaEmulator(auto_complete=False, prompt_timeout=0.4) as emulator:
        yield emulator


@pytest.mark.parametrize(
    "action,code,status",
    [
        ("approve", 0, "approved"),
        ("decline", 1032, "declined"),
        ("timeout", 1037, "timeout"),
    ],
)
def test_manual_resolve(manual, receiver, action, code, status):
    client = DarajaClient(manual.base_url)
    _, pushed = client.stk_push(callback_url=receiver.url("/cb"))
    checkout_id = pushed["CheckoutRequestID"]
    assert client.stk_query(checkout_id)[0] == 500  # waiting for the customer
    assert manual.prompts[checkout_id].status == "open"
    assert control(client, f"/emulator/prompts/{checkout_id}/{action}", {})[0] == 200
    callback = manual.wait_for_deliveries(1)[0].payload["Body"]["stkCallback"]
    assert callback["ResultCode"] == code
    assert manual.prompts[checkout_id].status == status
    # A settled prompt cannot be answered again.
    assert control(client, f"/emulator/prompts/{checkout_id}/approve", {})[0] == 400


def test_manual_resolve_in_process_keeps_scenario(manual, receiver):
    manual.set_scenario(PHONE, amount_style="decimal", result_code=1)
    client = DarajaClient(manual.base_url)
    _, pushed = client.stk_push(callback_url=receiver.url("/cb"), amount=3)
    manual.resolve_prompt(pushed["CheckoutRequestID"], "approve")
    delivery = manual.wait_for_deliveries(1)[0]
    assert b'"Value": 3.00}' in delivery.body  # style kept, code from the customer
    with pytest.raises(ValueError):
        manual.resolve_prompt(pushed["CheckoutRequestID"], "dance")
    with pytest.raises(KeyError):
        manual.resolve_prompt("ws_CO_unknown", "approve")


def test_manual_prompt_expires(manual, receiver):
    client = DarajaClient(manual.base_url)
    started = time.monotonic()
    _, pushed = client.stk_push(callback_url=receiver.url("/cb"))
    callback = manual.wait_for_deliveries(1)[0].payload["Body"]["stkCallback"]
    assert time.monotonic() - started >= 0.4
    assert callback["ResultCode"] == 1037
    assert manual.prompts[pushed["CheckoutRequestID"]].status == "timeout"


def test_manual_mode_bad_action_and_unknown_prompt(manual):
    client = DarajaClient(manual.base_url)
    assert control(client, "/emulator/prompts/ws_CO_nope/approve", {})[0] == 404
    _, pushed = client.stk_push()
    status, _ = control(
        client, f"/emulator/prompts/{pushed['CheckoutRequestID']}/x", {}
    )
    assert status == 400


# -- phone page ---------------------------------------------------------------------------
def test_phone_page(client):
    status, page = client.request("/phone")
    assert status == 200
    assert "<title>M-PESA virtual phone</title>" in page
    for text in (
        "Approve",
        "Decline",
        "Let it time out",
        "Pay bill",
        "/emulator/prompts",
        "/emulator/c2b/pay",
        "setInterval(refresh, 2000)",
    ):
        assert text in page
    assert not re.search(r"""(src|href)=["']?https?:""", page)  # self-contained


def test_root_redirects_to_phone(emu):
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect, urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as info:
        opener.open(emu.base_url + "/")
    assert info.value.code == 302 and info.value.headers["Location"] == "/phone"


# -- lifecycle and CLI --------------------------------------------------------------------------
def test_start_stop_context_manager():
    emu = DarajaEmulator()
    assert emu.start() is emu
    url = emu.base_url
    assert re.match(r"^http://127\.0\.0\.1:\d+$", url)
    assert DarajaClient(url).oauth()[0] == 200
    emu.stop()
    emu.stop()  # idempotent
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/phone", timeout=2)


def test_cli_runs_and_stops_on_sigterm():
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent / "emulator"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daraja_emulator",
            "--port",
            "0",
            "--manual",
            "--consumer-key",
            "K",
            "--consumer-secret",
            "S",
            "--shortcode",
            "600100",
            "--passkey",
            "P",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        client = DarajaClient(url, key="K", secret="S", shortcode="600100", passkey="P")
        client.token()
        status, _ = client.stk_push()
        assert status == 200
        assert client.request("/emulator/prompts")[1][0]["status"] == "open"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert "stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
