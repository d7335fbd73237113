"""The initiator password is typed once on the provider form, encrypted at once with
the certificate of the provider's environment, and only the result is kept. The
emulator really decrypts it, and refuses one encrypted with another certificate as
Daraja does (ResultCode 2001 in the Result)."""

import base64
import datetime as dt
import hashlib
import logging

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from daraja_emulator import DEFAULT_INITIATOR_PASSWORD

from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, new_test_user, tagged
from odoo.tests.common import BaseCase
from odoo.tools import file_open, mute_logger

from ..daraja.credential import (
    SHIPPED_CERTIFICATES,
    CertificateError,
    encrypt_initiator_password,
    load_certificate,
    validity,
)
from .common import PHONE, SHORTCODE, MpesaHttpCommon

# Unmistakable: searched for everywhere once the admin has typed it.
PASSWORD = "Kiboko-7f3a!initiator"
UTC = dt.timezone.utc
CREDENTIAL_FIELDS = (
    "mpesa_initiator_password",
    "mpesa_security_credential",
    "mpesa_certificate",
)


def _self_signed(key, days_from=-1, days_to=365):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    now = dt.datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=days_from))
        .not_valid_after(now + dt.timedelta(days=days_to))
        .sign(key, hashes.SHA256())
    )


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@tagged("post_install", "-at_install")
class TestSecurityCredential(MpesaHttpCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin = new_test_user(
            cls.env,
            login="mpesa_settings_admin",
            groups="base.group_user,base.group_system,account.group_account_manager",
            company_id=cls.company.id,
            company_ids=[cls.company.id],
        )

    # === HELPERS === #

    def _set_password_on_form(self, password=PASSWORD, certificate=None):
        """The admin opens the provider, types the password (and maybe pastes a
        certificate), and saves."""
        with self._db_lock():
            with Form(self.mpesa.with_user(self.admin)) as form:
                if certificate is not None:
                    form.mpesa_certificate = certificate
                form.mpesa_initiator_password = password
            self.env.flush_all()
        self.mpesa.invalidate_recordset()

    def _ask(self, kind, code=None):
        """Send an initiator API request as the admin; its Result applied."""
        before = len([d for d in self.emulator.deliveries if d.kind == "result"])
        with self._db_lock():
            request = self.env["mpesa.api.request"]._send(self.mpesa, kind, code)
            self.env.flush_all()
        self._wait_callbacks(before + 1, kind="result")
        with self._db_lock():
            request.invalidate_recordset()
        return request

    def _tables_holding(self, text):
        """Every (table, column) of the database whose text holds ``text``. Odoo 18
        has no ir_property table: company-dependent values live in jsonb columns,
        which are searched as well."""
        cr = self.env.cr
        cr.execute(
            """
            SELECT c.table_name, c.column_name
              FROM information_schema.columns c
              JOIN information_schema.tables t
                ON t.table_schema = c.table_schema AND t.table_name = c.table_name
             WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
               AND c.data_type IN ('character varying', 'text', 'jsonb', 'json')
            """
        )
        columns = {}
        for table, column in cr.fetchall():
            columns.setdefault(table, []).append(column)
        found = []
        for table, names in columns.items():
            for name in names:
                cr.execute(
                    f'SELECT 1 FROM "{table}" WHERE "{name}"::text LIKE %s LIMIT 1',
                    [f"%{text}%"],
                )
                if cr.fetchone():
                    found.append((table, name))
        return found

    # === THE ADMIN TYPES THE PASSWORD === #

    def test_password_typed_on_form_is_only_kept_encrypted(self):
        old = self.mpesa.mpesa_security_credential
        collector = _Collect()
        root = logging.getLogger()
        root.addHandler(collector)
        try:
            self._set_password_on_form()
        finally:
            root.removeHandler(collector)
        credential = self.mpesa.mpesa_security_credential
        self.assertTrue(credential)
        self.assertNotEqual(credential, old)
        self.assertNotIn(PASSWORD, credential)
        # RSA-2048 with PKCS#1 v1.5, base64: 256 bytes, and the emulator's private
        # key gives the password back.
        self.assertEqual(len(base64.b64decode(credential)), 256)
        self.assertEqual(self.emulator.key_pair.decrypt(credential), PASSWORD.encode())
        # Nothing keeps the password: not the record, not a column of any table,
        # not a log line.
        self.assertFalse(self.mpesa.mpesa_initiator_password)
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT row_to_json(p)::text FROM payment_provider p WHERE id = %s",
            [self.mpesa.id],
        )
        row = self.env.cr.fetchone()[0]
        self.assertNotIn(PASSWORD, row)
        self.assertIn(credential, row)
        self.assertEqual(self._tables_holding(PASSWORD), [])
        self.assertTrue(
            any("security credential set" in line for line in collector.lines)
        )
        self.assertFalse([line for line in collector.lines if PASSWORD in line])

    def test_saving_the_form_does_not_send_the_password_back(self):
        """The web client saves with web_save and shows what it answers."""
        with self._db_lock():
            answer = self.mpesa.with_user(self.admin).web_save(
                {"mpesa_initiator_password": PASSWORD},
                {"mpesa_initiator_password": {}, "mpesa_security_credential": {}},
            )
            self.env.flush_all()
        self.assertFalse(answer[0]["mpesa_initiator_password"])
        self.assertNotIn(PASSWORD, str(answer))
        self.assertTrue(answer[0]["mpesa_security_credential"])

    def test_balance_and_status_work_with_the_encrypted_password(self):
        shortcode = self.emulator.state.find_shortcode("174379")
        self.addCleanup(
            setattr, shortcode, "initiator_password", DEFAULT_INITIATOR_PASSWORD
        )
        shortcode.initiator_password = PASSWORD
        self._set_password_on_form()
        balance = self._ask("balance")
        self.assertEqual(balance.state, "done")
        self.assertEqual(self.mpesa.mpesa_balance, self.emulator.balance())
        code = self.emulator.add_payment(450, phone=PHONE, first_name="Jane Doe")
        status = self._ask("status", code)
        self.assertEqual(status.state, "done")
        self.assertEqual(status.receipt_id.name, code)
        # What went to Daraja is the stored credential, never the password.
        sent = [body for _m, path, body in self.emulator.request_log if body]
        self.assertFalse([body for body in sent if PASSWORD in str(body)])
        self.assertIn(
            self.mpesa.mpesa_security_credential,
            [body.get("SecurityCredential") for body in sent],
        )

    def test_wrong_certificate_is_refused_like_daraja(self):
        """Encrypted with Safaricom's sandbox certificate (the one shipped, used when
        the Encryption Certificate is empty) while the API URL points at the
        emulator: M-PESA accepts the request, then refuses the initiator."""
        self._set_password_on_form(password=DEFAULT_INITIATOR_PASSWORD, certificate="")
        self.assertFalse(self.mpesa.mpesa_certificate)
        credential = self.mpesa.mpesa_security_credential
        self.assertFalse(
            self.emulator.key_pair.matches(credential, DEFAULT_INITIATOR_PASSWORD)
        )
        request = self._ask("balance")
        self.assertEqual(request.state, "failed")
        self.assertEqual(request.result_code, "2001")
        # What the user reads on the request opened by Check Balance.
        self.assertEqual(
            request.result_message, "The initiator information is invalid."
        )
        self.assertFalse(self.mpesa.mpesa_balance_date)
        # The emulator's own certificate again: accepted.
        self._set_password_on_form(
            password=DEFAULT_INITIATOR_PASSWORD,
            certificate=self.emulator.certificate_pem,
        )
        self.assertEqual(self._ask("balance").state, "done")

    @mute_logger("odoo.addons.mpesa_payment.models.mpesa_api_request")
    def test_wrong_credential_leaves_paybill_payments_waiting_not_refused(self):
        """A wrong credential is our configuration, not an unknown payment: the paybill
        payments M-PESA would not confirm wait, and are booked once it is fixed."""
        invoice = self._invoice(800)
        self._set_password_on_form(password=DEFAULT_INITIATOR_PASSWORD, certificate="")
        results = len([d for d in self.emulator.deliveries if d.kind == "result"])
        confirmations = len(
            [d for d in self.emulator.deliveries if d.kind == "c2b_confirmation"]
        )
        code = self.emulator.c2b_pay(SHORTCODE, PHONE, 800, invoice.name)
        # Applying the confirmation asks M-PESA about it (Transaction Status).
        self._wait_callbacks(confirmations + 1, kind="c2b_confirmation")
        self._wait_callbacks(results + 1, kind="result")
        with self._db_lock():
            receipt = self.env["mpesa.receipt"].search([("name", "=", code)])
            self.assertEqual(receipt.verification, "pending", "not refused")
            self.assertFalse(receipt.application_ids)
            request = self.env["mpesa.api.request"].search(
                [("receipt_id", "=", receipt.id)]
            )
            self.assertEqual((request.state, request.result_code), ("failed", "2001"))
        self._set_password_on_form(
            password=DEFAULT_INITIATOR_PASSWORD,
            certificate=self.emulator.certificate_pem,
        )
        with self._db_lock():
            self.env["mpesa.receipt"]._cron_mpesa_confirm_paybill()
            self.env.flush_all()
        self._wait_callbacks(results + 2, kind="result")
        self._wait_confirmed(receipt)
        self._post_process(receipt)
        with self._db_lock():
            self.assertEqual(receipt.verification, "verified")
            self.assertEqual(receipt.application_ids.invoice_ids, invoice)
            self.assertIn(invoice.payment_state, ("paid", "in_payment"))

    def test_empty_password_keeps_the_credential(self):
        credential = self.mpesa.mpesa_security_credential
        with self._db_lock():
            self.mpesa.with_user(self.admin).write({"mpesa_initiator_password": ""})
            self.mpesa.with_user(self.admin).write({"mpesa_initiator_password": False})
        self.assertEqual(self.mpesa.mpesa_security_credential, credential)

    def test_credential_stays_directly_editable(self):
        """An admin who has a credential encrypted elsewhere pastes it."""
        pasted = self.emulator.security_credential(DEFAULT_INITIATOR_PASSWORD)
        with self._db_lock():
            with Form(self.mpesa.with_user(self.admin)) as form:
                form.mpesa_security_credential = pasted
            self.env.flush_all()
        self.mpesa.invalidate_recordset()
        self.assertEqual(self.mpesa.mpesa_security_credential, pasted)
        self.assertEqual(self._ask("balance").state, "done")

    def test_unusable_certificates_are_explained(self):
        credential = self.mpesa.mpesa_security_credential
        provider = self.mpesa.with_user(self.admin)
        expired = _self_signed(
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            days_from=-30,
            days_to=-1,
        )
        ec_cert = _self_signed(ec.generate_private_key(ec.SECP256R1()))
        cases = [
            ("not a certificate", "not a readable X.509 certificate"),
            (expired.public_bytes(serialization.Encoding.PEM).decode(), "expired on"),
            (
                ec_cert.public_bytes(serialization.Encoding.PEM).decode(),
                "does not hold an RSA public key",
            ),
        ]
        for certificate, message in cases:
            with self.subTest(message=message):
                # A refused save is rolled back in the UI; here, start again.
                self.mpesa.mpesa_certificate = self.emulator.certificate_pem
                with self.assertRaisesRegex(UserError, message):
                    provider.write(
                        {
                            "mpesa_certificate": certificate,
                            "mpesa_initiator_password": PASSWORD,
                        }
                    )
                self.assertEqual(self.mpesa.mpesa_security_credential, credential)
        self.mpesa.mpesa_certificate = self.emulator.certificate_pem
        with self.assertRaisesRegex(UserError, "too long"):
            provider.write({"mpesa_initiator_password": "x" * 300})
        self.assertEqual(self.mpesa.mpesa_security_credential, credential)

    def test_certificate_of_the_environment(self):
        """Empty Encryption Certificate: Safaricom's sandbox certificate in test
        mode, its production certificate when enabled."""
        Provider = self.env["payment.provider"]
        for state, environment in (("test", "sandbox"), ("enabled", "production")):
            provider = Provider.new({"code": "mpesa", "state": state})
            self.assertEqual(provider.mpesa_environment, environment)
            data, shipped = provider._mpesa_certificate_data()
            self.assertTrue(shipped)
            with file_open(SHIPPED_CERTIFICATES[environment], "rb") as f:
                self.assertEqual(data, f.read())
        self.assertEqual(
            self.mpesa._mpesa_certificate_data(),
            (self.emulator.certificate_pem.strip().encode(), False),
        )

    # === ACCESS === #

    def test_non_admin_cannot_read_or_write_the_credential(self):
        user = self.internal_user
        self._prepare_user(user, "account.group_account_manager")
        self._prepare_user(user, "mpesa_payment.group_mpesa_manager")
        provider = self.mpesa.with_user(user)
        seen = provider.fields_get()
        for fname in CREDENTIAL_FIELDS:
            self.assertNotIn(fname, seen, fname)
            with self.assertRaises(AccessError):
                provider.read([fname])
        with self.assertRaises(AccessError):
            provider.write({"mpesa_initiator_password": PASSWORD})
        admin_fields = self.mpesa.with_user(self.admin).fields_get()
        for fname in CREDENTIAL_FIELDS:
            self.assertIn(fname, admin_fields, fname)


@tagged("post_install", "-at_install")
class TestShippedCertificates(BaseCase):
    """Safaricom's public certificates shipped in data/certificates (sources and
    fingerprints in its README.md)."""

    EXPECTED = {
        "sandbox": (
            "apicrypt.safaricom.co.ke",
            dt.datetime(2014, 11, 12, 7, 12, 45, tzinfo=UTC),
            dt.datetime(2016, 11, 11, 7, 12, 45, tzinfo=UTC),
            "a542c3c67b598a337a1cc741e5434c70de565081e5c853e05a51c843764766f0",
        ),
        "production": (
            "apigee.apicaller.safaricom.co.ke",
            dt.datetime(2017, 4, 25, 16, 7, 24, tzinfo=UTC),
            dt.datetime(2018, 3, 21, 13, 20, 13, tzinfo=UTC),
            "9417915212ac708d3ac82b710e71d976fa0eb783f467b159c15ad7216ef2c16b",
        ),
    }

    def _read(self, environment):
        with file_open(SHIPPED_CERTIFICATES[environment], "rb") as f:
            return f.read()

    def test_subject_validity_and_fingerprint(self):
        for environment, (cn, start, end, sha256) in self.EXPECTED.items():
            with self.subTest(environment=environment):
                data = self._read(environment)
                self.assertTrue(data.startswith(b"-----BEGIN CERTIFICATE-----"))
                cert = load_certificate(data)
                self.assertEqual(
                    cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
                    cn,
                )
                self.assertEqual(
                    cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
                    "Safaricom Internal Issuing CA 02",
                )
                self.assertEqual(validity(cert), (start, end))
                der = cert.public_bytes(serialization.Encoding.DER)
                self.assertEqual(hashlib.sha256(der).hexdigest(), sha256)
                self.assertEqual(cert.public_key().key_size, 2048)

    def test_shipped_certificates_encrypt_although_expired(self):
        for environment in self.EXPECTED:
            with self.subTest(environment=environment):
                data = self._read(environment)
                with self.assertRaises(CertificateError) as caught:
                    encrypt_initiator_password(PASSWORD, data)
                self.assertEqual(caught.exception.reason, "expired")
                credential = encrypt_initiator_password(
                    PASSWORD, data, allow_expired=True
                )
                self.assertEqual(len(base64.b64decode(credential)), 256)
                # Random padding: never twice the same credential.
                self.assertNotEqual(
                    credential,
                    encrypt_initiator_password(PASSWORD, data, allow_expired=True),
                )

    def test_pem_der_and_base64_der_all_load(self):
        cert = load_certificate(self._read("sandbox"))
        der = cert.public_bytes(serialization.Encoding.DER)
        pem = cert.public_bytes(serialization.Encoding.PEM)
        for data in (
            der,
            base64.encodebytes(der),
            b"Subject: apicrypt\r\n" + pem.replace(b"\n", b"\r\n"),
            pem.decode(),
        ):
            self.assertEqual(load_certificate(data), cert)
        for data in (b"", b"garbage", pem[:200]):
            with self.assertRaises(CertificateError):
                load_certificate(data)

    def test_credential_decrypts_to_the_password(self):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = _self_signed(key).public_bytes(serialization.Encoding.PEM)
        credential = encrypt_initiator_password(PASSWORD, pem)
        plain = key.decrypt(base64.b64decode(credential), padding.PKCS1v15())
        self.assertEqual(plain, PASSWORD.encode())
        with self.assertRaises(ValueError):
            encrypt_initiator_password("", pem)
