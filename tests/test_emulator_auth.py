"""OAuth tokens, bearer checks and generic request errors of the emulator."""

import time

from daraja_emulator import (
    DEFAULT_CONSUMER_KEY,
    DEFAULT_CONSUMER_SECRET,
    DarajaEmulator,
)
from daraja_emulator.testing import DarajaClient


def test_oauth_success(client):
    status, answer = client.oauth()
    assert status == 200
    assert set(answer) == {"access_token", "expires_in"}
    assert len(answer["access_token"]) == 28 and answer["access_token"].isalnum()
    assert answer["expires_in"] == 3599


def test_oauth_expires_in_as_string():
    with DarajaEmulator(expires_in_as_string=True) as emu:
        status, answer = DarajaClient(emu.base_url).oauth()
    assert status == 200 and answer["expires_in"] == "3599"


def test_oauth_bad_credentials(client):
    status, answer = client.oauth(secret="wrong")
    assert status == 400
    assert answer["errorCode"] == "400.008.01"
    assert answer["errorMessage"] == "Invalid Authentication passed"
    assert set(answer) == {"requestId", "errorCode", "errorMessage"}


def test_oauth_missing_credentials(client):
    status, answer = client.request("/oauth/v1/generate?grant_type=client_credentials")
    assert (status, answer["errorCode"]) == (400, "400.008.01")


def test_oauth_wrong_grant_type(client):
    status, answer = client.oauth(grant_type="password")
    assert status == 400
    assert answer["errorCode"] == "400.008.02"
    assert answer["errorMessage"] == "Invalid grant type passed"


def test_added_app_gets_tokens(emu):
    emu.add_app("odoo-key", "odoo-secret")
    client = DarajaClient(emu.base_url, key="odoo-key", secret="odoo-secret")
    assert client.oauth()[0] == 200
    assert client.oauth(secret=DEFAULT_CONSUMER_SECRET)[0] == 400


def test_new_token_invalidates_previous(client):
    first = client.token()
    assert client.stk_query("ws_CO_unknown")[1]["errorCode"] == "400.002.02"
    second = client.token()
    assert first != second
    status, answer = client.post("/mpesa/stkpushquery/v1/query", {}, token=first)
    assert status == 404
    assert answer["errorCode"] == "404.001.03"
    assert answer["errorMessage"] == "Invalid Access Token"
    # The newest token still works.
    assert client.post("/mpesa/stkpushquery/v1/query", {}, token=second)[0] == 400


def test_tokens_of_other_apps_survive(emu):
    emu.add_app("other", "secret")
    mine = DarajaClient(emu.base_url)
    other = DarajaClient(emu.base_url, key="other", secret="secret")
    token = mine.token()
    other.token()
    assert mine.post("/mpesa/stkpushquery/v1/query", {}, token=token)[0] == 400


def test_invalidate_tokens(emu, client):
    token = client.token()
    emu.invalidate_tokens()
    status, answer = client.post("/mpesa/stkpushquery/v1/query", {}, token=token)
    assert (status, answer["errorCode"]) == (404, "404.001.03")


def test_token_expiry():
    with DarajaEmulator(token_lifetime=0.2) as emu:
        client = DarajaClient(emu.base_url)
        token = client.token()
        assert client.post("/mpesa/stkpushquery/v1/query", {}, token=token)[0] == 400
        time.sleep(0.3)
        status, answer = client.post("/mpesa/stkpushquery/v1/query", {}, token=token)
    assert (status, answer["errorCode"]) == (404, "404.001.03")


def test_missing_and_garbage_bearer(client):
    status, answer = client.request("/mpesa/stkpush/v1/processrequest", {"a": 1})
    assert (status, answer["errorCode"]) == (404, "404.001.03")
    status, answer = client.post("/mpesa/stkpush/v1/processrequest", {}, token="nope")
    assert (status, answer["errorCode"]) == (404, "404.001.03")


def test_invalid_json(client):
    status, answer = client.post("/mpesa/stkpush/v1/processrequest", raw=b"{not json")
    assert status == 400
    assert answer["errorCode"] == "400.002.02"
    assert answer["errorMessage"] == "Bad Request - Invalid JSON"
    status, answer = client.post("/mpesa/stkpush/v1/processrequest", raw=b"[1, 2]")
    assert answer["errorMessage"] == "Bad Request - Invalid JSON"


def test_unknown_route(client):
    status, answer = client.post("/mpesa/nothing/v1/here", {})
    assert status == 404 and answer["errorCode"].startswith("404.")


def test_request_log(emu, client):
    client.token()
    client.post("/mpesa/stkpushquery/v1/query", {"CheckoutRequestID": "x"})
    methods_paths = [(m, p) for m, p, _ in emu.request_log]
    assert ("GET", "/oauth/v1/generate?grant_type=client_credentials") in methods_paths
    assert emu.request_log[-1] == (
        "POST",
        "/mpesa/stkpushquery/v1/query",
        {"CheckoutRequestID": "x"},
    )
    assert DEFAULT_CONSUMER_KEY in emu.state.apps
