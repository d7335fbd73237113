"""SecurityCredential: the emulator decrypts it with its own private key and refuses
one that is not the initiator's password encrypted with its certificate, as Daraja
does (an ack, then ResultCode 2001 in the Result)."""

import base64
import re
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from daraja_emulator import (
    DEFAULT_INITIATOR,
    DEFAULT_INITIATOR_PASSWORD,
    DEFAULT_SECURITY_CREDENTIAL,
    DarajaEmulator,
    KeyPair,
)
from daraja_emulator.testing import DarajaClient

CERTIFICATES = Path(__file__).parent.parent / "mpesa_payment/data/certificates"
INVALID = (2001, "The initiator information is invalid.")


def encrypt(password, cert_pem):
    """A client's SecurityCredential: RSA PKCS#1 v1.5 with the certificate, base64."""
    if isinstance(cert_pem, str):
        cert_pem = cert_pem.encode()
    key = x509.load_pem_x509_certificate(cert_pem).public_key()
    return base64.b64encode(key.encrypt(password.encode(), padding.PKCS1v15())).decode()


@pytest.fixture
def strict():
    """An emulator accepting only really encrypted credentials."""
    with DarajaEmulator(fixed_credentials=False) as emulator:
        yield emulator


@pytest.fixture
def strict_client(strict):
    return DarajaClient(strict.base_url)


def body(receiver, credential, command="TransactionStatusQuery", **extra):
    data = {
        "Initiator": DEFAULT_INITIATOR,
        "SecurityCredential": credential,
        "CommandID": command,
        "PartyA": "174379",
        "IdentifierType": "4",
        "ResultURL": receiver.url("/result"),
        "QueueTimeOutURL": receiver.url("/timeout"),
        "Remarks": "Check",
        "Occasion": "",
    }
    data.update(extra)
    return data


def status(client, receiver, credential, receipt="NOSUCH0001", **extra):
    return client.post(
        "/mpesa/transactionstatus/v1/query",
        body(receiver, credential, TransactionID=receipt, **extra),
    )


def balance(client, receiver, credential):
    data = body(receiver, credential, "AccountBalance")
    del data["Occasion"]
    return client.post("/mpesa/accountbalance/v1/query", data)


def reverse(client, receiver, credential, receipt, amount):
    data = body(
        receiver,
        credential,
        "TransactionReversal",
        TransactionID=receipt,
        Amount=str(amount),
        ReceiverParty="174379",
        RecieverIdentifierType="11",
    )
    del data["PartyA"], data["IdentifierType"]
    return client.post("/mpesa/reversal/v1/request", data)


def result_of(emu, count=1):
    return emu.wait_for_deliveries(count, kind="result")[count - 1].payload["Result"]


def assert_refused(result):
    assert (result["ResultCode"], result["ResultDesc"]) == INVALID
    assert result["ResultType"] == 0
    # A placeholder transaction id, like "MAS0000000" in the reports.
    assert re.fullmatch(r"[A-Z][A-Z0-9]{2}0000000", result["TransactionID"])


def test_certificate_is_served_and_usable(strict):
    url = f"{strict.base_url}/emulator/certificate"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/x-pem-file"
        pem = response.read()
    assert pem.decode() == strict.certificate_pem
    cert = x509.load_pem_x509_certificate(pem)
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)
    assert cert.public_key().key_size == 2048
    # The same key for the emulator's whole life (reset keeps it).
    strict.reset()
    assert strict.certificate_pem == pem.decode()


def test_real_credential_is_accepted(strict, strict_client, receiver):
    receipt = strict.add_payment(120)
    credential = encrypt(DEFAULT_INITIATOR_PASSWORD, strict.certificate_pem)
    code, answer = status(strict_client, receiver, credential, receipt)
    assert (code, answer["ResponseCode"]) == (200, "0")
    result = result_of(strict)
    assert result["ResultCode"] == 0
    # The emulator's helper makes the same kind of credential.
    status(strict_client, receiver, strict.security_credential(), receipt)
    assert result_of(strict, 2)["ResultCode"] == 0


def test_safaricom_certificate_is_refused_in_the_result(
    strict, strict_client, receiver
):
    """Encrypted with Safaricom's sandbox certificate, not the emulator's: Daraja
    acknowledges the request, then answers 2001 in the Result."""
    receipt = strict.add_payment(120)
    sandbox = (CERTIFICATES / "sandbox.cer").read_bytes()
    credential = encrypt(DEFAULT_INITIATOR_PASSWORD, sandbox)
    code, answer = status(strict_client, receiver, credential, receipt, Occasion="x")
    assert (code, answer["ResponseCode"]) == (200, "0")
    assert answer["ResponseDescription"] == "Accept the service request successfully."
    result = result_of(strict)
    assert_refused(result)
    assert result["ConversationID"] == answer["ConversationID"]
    assert result["ReferenceData"] == {
        "ReferenceItem": {"Key": "Occasion", "Value": "x"}
    }
    assert "ResultParameters" not in result


def test_wrong_password_refused_for_balance(strict, strict_client, receiver):
    credential = encrypt("not-the-password", strict.certificate_pem)
    code, answer = balance(strict_client, receiver, credential)
    assert (code, answer["ResponseCode"]) == (200, "0")
    result = result_of(strict)
    assert_refused(result)
    # Daraja's single parameter comes unwrapped.
    parameter = result["ResultParameters"]["ResultParameter"]
    assert parameter["Key"] == "BOCompletedTime"
    assert re.fullmatch(r"\d{14}", str(parameter["Value"]))
    assert result["ReferenceData"]["ReferenceItem"] == {
        "Key": "QueueTimeoutURL",
        "Value": receiver.url("/timeout"),
    }


def test_refused_reversal_reverses_nothing(strict, strict_client, receiver):
    receipt = strict.add_payment(300)
    before = strict.balance()
    wrong = encrypt(DEFAULT_INITIATOR_PASSWORD + "x", strict.certificate_pem)
    code, _answer = reverse(strict_client, receiver, wrong, receipt, 300)
    assert code == 200
    assert_refused(result_of(strict))
    assert strict.payments[receipt]["status"] == "Completed"
    assert strict.balance() == before
    # The right credential then reverses it.
    reverse(strict_client, receiver, strict.security_credential(), receipt, 300)
    assert result_of(strict, 2)["ResultCode"] == 0
    assert strict.payments[receipt]["status"] == "Reversed"


def test_other_emulator_key_is_refused(strict, strict_client, receiver):
    with DarajaEmulator() as other:
        assert other.certificate_pem != strict.certificate_pem
        credential = other.security_credential()
    status(strict_client, receiver, credential)
    assert_refused(result_of(strict))


@pytest.mark.parametrize(
    "credential",
    ["", "not base64!", DEFAULT_SECURITY_CREDENTIAL, None, 12345],
)
def test_malformed_credential_is_a_bad_request(
    strict, strict_client, receiver, credential
):
    """Not base64 at all: refused at once, nothing is sent to the ResultURL."""
    code, answer = status(strict_client, receiver, credential)
    assert (code, answer["errorCode"]) == (400, "400.002.02")
    assert answer["errorMessage"] == "Bad Request - Invalid SecurityCredential"
    assert not strict.deliveries


def test_initiator_password_per_shortcode(strict, strict_client, receiver):
    strict.add_shortcode("600984", initiator="apiop37", initiator_password="S3cr3t!")
    receipt = strict.add_payment(50, shortcode="600984")
    good = encrypt("S3cr3t!", strict.certificate_pem)
    extra = {"PartyA": "600984", "Initiator": "apiop37"}
    status(strict_client, receiver, good, receipt, **extra)
    assert result_of(strict)["ResultCode"] == 0
    # The default shortcode's password is not this shortcode's.
    status(strict_client, receiver, strict.security_credential(), receipt, **extra)
    assert_refused(result_of(strict, 2))


def test_fixed_credential_only_on_request(emu, client, receiver):
    """By default the emulator is strict, as Daraja: the fixed test credential is
    refused. Asked explicitly (fixed_credentials, --fixed-credentials), it takes
    it too, and still decrypts real ones."""
    assert not emu.fixed_credentials
    code, answer = status(client, receiver, DEFAULT_SECURITY_CREDENTIAL)
    assert (code, answer["errorMessage"]) == (
        400,
        "Bad Request - Invalid SecurityCredential",
    )
    # Well-formed base64 that is no credential of ours: refused in the Result.
    status(client, receiver, base64.b64encode(b"emulator-credential").decode())
    assert_refused(result_of(emu))
    emu.fixed_credentials = True
    status(client, receiver, DEFAULT_SECURITY_CREDENTIAL)
    assert result_of(emu, 2)["ResultCode"] == "R000002"
    status(client, receiver, emu.security_credential())
    assert result_of(emu, 3)["ResultCode"] == "R000002"
    status(client, receiver, encrypt("wrong", emu.certificate_pem))
    assert_refused(result_of(emu, 4))


def test_key_file_keeps_the_key(tmp_path):
    """--key-file (the demo): a credential encrypted with the certificate of one
    run is still decrypted after a restart; the key file is its owner's only."""
    path = tmp_path / "emulator-key.pem"
    first = KeyPair.from_file(str(path))
    assert path.stat().st_mode & 0o777 == 0o600
    credential = encrypt(DEFAULT_INITIATOR_PASSWORD, first.certificate_pem)
    again = KeyPair.from_file(str(path))
    assert again.matches(credential, DEFAULT_INITIATOR_PASSWORD)
    assert not KeyPair().matches(credential, DEFAULT_INITIATOR_PASSWORD)
