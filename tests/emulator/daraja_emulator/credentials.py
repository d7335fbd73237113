"""The emulator's own RSA key pair: the SecurityCredential of the initiator APIs is
encrypted with its certificate and really decrypted here, as M-PESA decrypts with
the private key behind Safaricom's certificate.

A test-only key, made when first needed (a new one in every process, never
written to disk unless a key file is asked for, as the demo does); its self-signed
certificate is served at GET /emulator/certificate.
"""

import base64
import binascii
import datetime as dt
import hmac
import os
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

KEY_SIZE = 2048  # as Safaricom's certificates
CERTIFICATE_DAYS = 365


class KeyPair:
    """A private key and its self-signed certificate."""

    def __init__(self, key=None, common_name="Daraja Emulator (test only)"):
        self.key = key or rsa.generate_private_key(
            public_exponent=65537, key_size=KEY_SIZE
        )
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "KE"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "daraja-emulator"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        now = dt.datetime.now(dt.timezone.utc)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=CERTIFICATE_DAYS))
            .sign(self.key, hashes.SHA256())
        )

    @classmethod
    def from_file(cls, path):
        """The key pair whose private key is kept in ``path`` (PEM, made there if
        missing, readable by its owner only): the demo keeps one across restarts,
        so the credential its provider holds stays valid."""
        try:
            with open(path, "rb") as key_file:
                key = serialization.load_pem_private_key(key_file.read(), None)
        except FileNotFoundError:
            key = None
        pair = cls(key)
        if key is None:
            pem = pair.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as key_file:
                key_file.write(pem)
        return pair

    @property
    def certificate_pem(self):
        """The certificate as PEM text: what an integrator encrypts with."""
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def encrypt(self, password):
        """A SecurityCredential for ``password``, as a Daraja client makes it."""
        encrypted = self.key.public_key().encrypt(password.encode(), padding.PKCS1v15())
        return base64.b64encode(encrypted).decode()

    def decrypt(self, credential):
        """The bytes inside a credential, or None when it cannot be decrypted. For
        a credential made with another certificate, OpenSSL 3.2+ returns random
        bytes rather than failing (implicit rejection): compare, as matches() does."""
        raw = decode(credential)
        if raw is None:
            return None
        try:
            return self.key.decrypt(raw, padding.PKCS1v15())
        except ValueError:  # wrong length or padding
            return None

    def matches(self, credential, password):
        """Whether ``credential`` is ``password`` encrypted with our certificate."""
        plain = self.decrypt(credential)
        return plain is not None and hmac.compare_digest(plain, password.encode())


def decode(credential):
    """The bytes of a base64 credential; None when it is not base64 at all."""
    if not isinstance(credential, str) or not credential.strip():
        return None
    try:
        return base64.b64decode(credential.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


class LazyKeyPair:
    """Makes the key pair on first use (about 0.1 s): emulators that never see an
    initiator API, most of them in the tests, never pay for it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pair = None

    def get(self):
        with self._lock:
            if self._pair is None:
                self._pair = KeyPair()
            return self._pair
