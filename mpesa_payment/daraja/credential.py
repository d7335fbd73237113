"""Daraja's SecurityCredential: the initiator password encrypted with Safaricom's
public certificate (RSA, PKCS#1 v1.5 padding, then base64), as the initiator APIs
(transaction status, reversal, account balance) require it.

Plain Python (no Odoo): the password only goes through memory here, never a log.
"""

import base64
import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# Safaricom's public certificates shipped with the addon, by Daraja environment
# (odoo.tools.file_open paths; sources and rotation: data/certificates/README.md).
SHIPPED_CERTIFICATES = {
    "sandbox": "mpesa_payment/data/certificates/sandbox.cer",
    "production": "mpesa_payment/data/certificates/production.cer",
}
PEM_MARKER = b"-----BEGIN CERTIFICATE-----"
# PKCS#1 v1.5 adds at least 11 bytes of padding to the message.
PKCS1_OVERHEAD = 11


class CertificateError(ValueError):
    """The certificate cannot encrypt the credential; ``reason`` says why:
    ``unreadable``, ``not_rsa``, ``expired``, ``not_yet_valid``."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


def load_certificate(data):
    """An X.509 certificate from PEM or DER bytes (or PEM text)."""
    if isinstance(data, str):
        data = data.encode()
    data = (data or b"").strip()
    try:
        if PEM_MARKER in data:
            # Text around the PEM block (an openssl dump, a pasted title) is fine.
            return x509.load_pem_x509_certificate(data[data.index(PEM_MARKER) :])
        try:
            return x509.load_der_x509_certificate(data)
        except ValueError:
            # DER pasted as base64 text, without the PEM lines.
            der = base64.b64decode(b"".join(data.split()), validate=True)
            return x509.load_der_x509_certificate(der)
    except ValueError as error:  # binascii.Error is a ValueError too
        raise CertificateError(
            "unreadable", "This is not a readable X.509 certificate (PEM or DER)."
        ) from error


def validity(cert):
    """(not before, not after) as aware UTC datetimes, whatever the version of
    ``cryptography`` (the ``*_utc`` properties exist from 42 on)."""
    try:
        return cert.not_valid_before_utc, cert.not_valid_after_utc
    except AttributeError:  # cryptography < 42 (Odoo's pin on Python < 3.12)
        return (
            cert.not_valid_before.replace(tzinfo=dt.timezone.utc),
            cert.not_valid_after.replace(tzinfo=dt.timezone.utc),
        )


def check_validity(cert, now=None):
    """Raise CertificateError if ``cert`` is outside its validity period at ``now``."""
    now = now or dt.datetime.now(dt.timezone.utc)
    start, end = validity(cert)
    if now > end:
        raise CertificateError(
            "expired", f"The certificate expired on {end:%Y-%m-%d %H:%M} UTC."
        )
    if now < start:
        raise CertificateError(
            "not_yet_valid",
            f"The certificate is only valid from {start:%Y-%m-%d %H:%M} UTC.",
        )


def encrypt_initiator_password(password, cert_pem, *, allow_expired=False, now=None):
    """Daraja's SecurityCredential for ``password``: RSA PKCS#1 v1.5 with the public
    key of ``cert_pem`` (PEM or DER), base64-encoded.

    An expired (or not yet valid) certificate is refused unless ``allow_expired``:
    Safaricom's own published certificates have long expired and Daraja still
    decrypts what they encrypt (see data/certificates/README.md)."""
    if not password:
        raise ValueError("The initiator password is empty.")
    cert = load_certificate(cert_pem)
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise CertificateError(
            "not_rsa", "The certificate does not hold an RSA public key."
        )
    if not allow_expired:
        check_validity(cert, now)
    message = password.encode()
    if len(message) > key.key_size // 8 - PKCS1_OVERHEAD:
        raise ValueError("The initiator password is too long for this certificate.")
    return base64.b64encode(key.encrypt(message, padding.PKCS1v15())).decode()
