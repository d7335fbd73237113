"""The M-PESA payment method line of a provider's journal (issue #11, finding 10).

Core creates it when ``journal_id`` is first computed: on a fresh database that was the
first payments, in several workers at once, and each made a line on the same journal.
The line is now made eagerly, its lazy creation is serialized on the provider row, and
the duplicates left in a database hit by the race are mended. The race itself needs real
workers: tests/live/test_live_method_line.py."""

from unittest.mock import patch

from odoo.tests import tagged

from odoo.addons.account.tests.common import AccountTestInvoicingCommon

from ..models.payment_provider import PaymentProvider

LOGGER = "odoo.addons.mpesa_payment.models.payment_provider"
CREDENTIALS = {
    "mpesa_consumer_key": "key",
    "mpesa_consumer_secret": "secret",
    "mpesa_shortcode": "174379",
    "mpesa_passkey": "passkey",
}


@tagged("post_install", "-at_install")
class TestPaymentMethodLine(AccountTestInvoicingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Provider = cls.env["payment.provider"]
        cls.Line = cls.env["account.payment.method.line"]
        cls.bank = cls.company_data["default_journal_bank"]
        cls.other_bank = cls.env["account.journal"].create(
            {"name": "M-PESA Till", "code": "MPTL", "type": "bank"}
        )
        cls.mpesa_method = cls.env["account.payment.method"].search(
            [("code", "=", "mpesa")]
        )
        cls.provider = cls._new_provider("M-PESA")

    @classmethod
    def _new_provider(cls, name, **values):
        return cls.Provider.create(
            {
                "name": name,
                "code": "mpesa",
                "company_id": cls.env.company.id,
                **CREDENTIALS,
                **values,
            }
        )

    def _lines(self, provider=None, journal=None):
        """What the database holds, found without reading the provider's journal_id
        (reading it would create the line lazily, as core does)."""
        domain = [("payment_provider_id", "=", (provider or self.provider).id)]
        if journal:
            domain.append(("journal_id", "=", journal.id))
        else:
            domain.append(("journal_id", "!=", False))
        return self.Line.search(domain)

    def _reread_journal(self, provider=None):
        provider = provider or self.provider
        provider.invalidate_recordset(["journal_id"])
        return provider.journal_id

    def _duplicate(self, line):
        """A copy of ``line`` as a concurrent worker made it: inserted in SQL, since the
        ORM's constraint would see both (each worker saw only its own)."""
        self.env.flush_all()
        self.env.cr.execute(
            "INSERT INTO account_payment_method_line (name, payment_method_id,"
            " journal_id, payment_provider_id, payment_account_id, sequence)"
            " SELECT name, payment_method_id, journal_id, payment_provider_id,"
            " payment_account_id, sequence FROM account_payment_method_line"
            " WHERE id = %s RETURNING id",
            [line.id],
        )
        [(line_id,)] = self.env.cr.fetchall()
        self.env.invalidate_all()
        return self.Line.browse(line_id)

    def _payment(self, line):
        return self.env["account.payment"].create(
            {
                "payment_type": "inbound",
                "partner_type": "customer",
                "partner_id": self.partner_a.id,
                "amount": 100.0,
                "journal_id": line.journal_id.id,
                "payment_method_line_id": line.id,
            }
        )

    def test_enabling_makes_the_line_without_a_lazy_read(self):
        self.assertFalse(self._lines(), "a disabled provider has no line")
        self.provider.write({"state": "test"})
        line = self._lines()
        self.assertEqual(len(line), 1, "the line exists as soon as it is enabled")
        self.assertEqual(line.payment_method_id, self.mpesa_method)
        self.assertEqual(line.journal_id.type, "bank")
        self.assertEqual(line.journal_id.company_id, self.env.company)
        self.assertEqual(self._reread_journal(), line.journal_id)
        self.assertEqual(self._lines(), line, "reading journal_id made no other line")

    def test_created_enabled_or_with_a_journal(self):
        provider = self._new_provider("M-PESA Paybill", state="test")
        self.assertEqual(len(self._lines(provider)), 1)
        with_journal = self._new_provider(
            "M-PESA Buy Goods", state="enabled", journal_id=self.other_bank.id
        )
        self.assertEqual(self._lines(with_journal).journal_id, self.other_bank)
        self._reread_journal(with_journal)
        self.assertEqual(len(self._lines(with_journal)), 1)

    def test_state_and_journal_changes_make_no_duplicate(self):
        self.provider.write({"state": "test"})
        line = self._lines()
        for state in ("enabled", "test", "disabled", "enabled", "test", "enabled"):
            self.provider.write({"state": state})
            self.assertEqual(self._lines(), line, state)
            self._reread_journal()
            self.assertEqual(self._lines(), line, f"{state}, journal read")
        self.provider.write({"journal_id": self.other_bank.id})
        self.assertEqual(self._lines(), line, "the line moves with the journal")
        self.assertEqual(line.journal_id, self.other_bank)
        self.assertEqual(self._reread_journal(), self.other_bank)
        self.assertEqual(len(self._lines()), 1)

    def test_another_provider_on_the_same_journal(self):
        self.provider.write({"state": "test", "journal_id": self.bank.id})
        till = self._new_provider("M-PESA Till")
        till.write({"state": "test", "journal_id": self.bank.id})
        mpesa_lines = self.Line.search(
            [("journal_id", "=", self.bank.id), ("code", "=", "mpesa")]
        )
        self.assertEqual(mpesa_lines.payment_provider_id, self.provider | till)
        self.assertEqual(len(mpesa_lines), 2, "one line each")
        self.assertEqual(self._lines(till).name, "M-PESA Till")

    def test_duplicated_provider_is_enabled_beside_the_original(self):
        """A second shortcode (a till) is added by duplicating the M-PESA provider:
        Odoo lists no New provider. Enabled as it comes, on the company's first bank
        journal like the original, it gets its own line there instead of failing on
        two lines of the same name (issue #12, point 5)."""
        self.provider.write({"state": "test"})
        till = self.provider.copy()
        self.assertNotEqual(till.name, self.provider.name)
        till.write({"state": "test"})
        journal = self._reread_journal(till)
        self.assertEqual(journal, self._reread_journal(), "the same first bank journal")
        mpesa_lines = self.Line.search(
            [("journal_id", "=", journal.id), ("code", "=", "mpesa")]
        )
        self.assertEqual(mpesa_lines.payment_provider_id, self.provider | till)
        self.assertEqual(len(mpesa_lines), 2, "one line each")
        till.write({"journal_id": self.other_bank.id})
        self.assertEqual(self._lines(till).journal_id, self.other_bank)
        self.assertEqual(len(self._lines()), 1)
        other_company = self.env["res.company"].create({"name": "Other Traders"})
        for_other = self.provider.copy({"company_id": other_company.id})
        self.assertEqual(for_other.name, self.provider.name, "another company's")

    def test_missing_line_is_made_once_under_the_provider_lock(self):
        """A line still missing (removed, or a provider enabled before this fix) is
        made by the first read, after the provider row is taken: a concurrent
        first reader then waits and is retried instead of making a second line."""
        self.provider.write({"state": "test", "journal_id": self.bank.id})
        self._lines().write({"payment_provider_id": False, "journal_id": False})
        self.assertFalse(self._lines())
        lock = PaymentProvider._mpesa_lock_method_line
        with patch.object(
            PaymentProvider, "_mpesa_lock_method_line", autospec=True, side_effect=lock
        ) as locked:
            self.assertTrue(self._reread_journal())
            self.assertEqual(len(self._lines()), 1)
            self.assertEqual(locked.call_count, 1)
            self._reread_journal()
        self.assertEqual(locked.call_count, 1, "no lock once the line exists")
        self.assertEqual(len(self._lines()), 1)

    def test_duplicates_left_by_the_race_are_mended(self):
        """A database hit by the race: three identical lines, two used by payments.
        The line most payments use stays, the other used one only leaves the journal
        (its payment keeps it), the unused one goes."""
        self.provider.write({"state": "test", "journal_id": self.bank.id})
        first = self._lines()
        second, third = self._duplicate(first), self._duplicate(first)
        self.assertEqual(len(self._lines()), 3)
        pay_first = self._payment(first)
        pays_second = self._payment(second) | self._payment(second)
        with self.assertLogs(LOGGER, "WARNING") as logs:
            self.assertEqual(self._reread_journal(), self.bank)
        self.assertIn("had 3 payment method lines", logs.output[0])
        self.assertEqual(self._lines(), second, "the line most payments use")
        self.assertFalse(third.exists(), "unused duplicate deleted")
        self.assertTrue(first.exists(), "a line payments use is not deleted")
        self.assertFalse(first.journal_id)
        self.assertEqual(pay_first.payment_method_line_id, first)
        self.assertEqual(pays_second.payment_method_line_id, second)
        till = self._new_provider("M-PESA Till", state="test", journal_id=self.bank.id)
        self.assertEqual(len(self._lines(till, self.bank)), 1)

    def test_other_provider_enabled_on_a_journal_with_duplicates(self):
        """Enabling a provider on the journal failed ("two payment method lines ...
        with the same name"); the duplicates are mended first."""
        self.provider.write({"state": "test", "journal_id": self.bank.id})
        line = self._lines()
        self._duplicate(line)
        self._duplicate(line)
        with self.assertLogs(LOGGER, "WARNING"):
            till = self._new_provider(
                "M-PESA Till", state="test", journal_id=self.bank.id
            )
        self.assertEqual(self._lines(journal=self.bank), line)
        self.assertEqual(len(self._lines(till, self.bank)), 1)
