from unittest.mock import patch

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.http import Request
from odoo.tests import tagged

from odoo.addons.mpesa_payment.tests.customer_view import emails_to
from odoo.addons.mpesa_reports.controllers.portal import MpesaPortal

from .common import ReportsCommon, pdf_text

# 07:15 UTC is 10:15 in Nairobi.
PAID_AT = "2026-03-02 07:15:00"
SUBJECT = "Your receipt for M-PESA payment"


@tagged("post_install", "-at_install")
class TestPortal(ReportsCommon):
    """My M-PESA payments, the PDF receipt and its issuing by email."""

    @classmethod
    def setup_independent_company(cls, **kwargs):
        # Swahili for test_in_swahili, loaded before the test company copies the
        # M-PESA provider and its texts.
        swahili = cls.env["res.lang"]._activate_lang("sw")
        cls.env["ir.module.module"]._load_module_terms(
            ["mpesa_payment", "mpesa_reports"], [swahili.code]
        )
        return super().setup_independent_company(**kwargs)

    def _customer_receipt(self, partner, amount, code, lines=None):
        invoice = self._product_invoice(lines or [(self.lamp, amount)], partner=partner)
        receipt = self._c2b(invoice.name, amount, trans_id=code)
        self._write(receipt, {"paid_at": PAID_AT})
        self.assertEqual(receipt.partner_id, partner)
        self.assertEqual(receipt.state, "applied")
        return receipt, invoice

    def _receipt_messages(self, receipt):
        return self.env["mail.message"].search(
            [
                ("model", "=", "mpesa.receipt"),
                ("res_id", "=", receipt.id),
                ("subject", "like", SUBJECT),
            ]
        )

    # === PORTAL PAGES === #

    def test_my_payments_own_receipts_only(self):
        mine, invoice = self._customer_receipt(self.portal_partner, 1500, "QPORTAL001")
        other, _other_invoice = self._customer_receipt(self.partner, 900, "QOTHER0001")
        self.authenticate(self.portal_user.login, self.portal_user.login)

        counters = self.make_jsonrpc_request(
            "/my/counters", {"counters": ["mpesa_receipt_count"]}
        )
        self.assertEqual(counters["mpesa_receipt_count"], 1)
        home = self.url_open("/my/home")
        self.assertIn('href="/my/mpesa"', home.text)
        self.assertIn("My M-PESA payments", home.text)

        page = self.url_open("/my/mpesa")
        self.assertEqual(page.status_code, 200)
        self.assertIn("QPORTAL001", page.text)
        self.assertIn(invoice.name, page.text, "the account reference")
        self.assertIn("1,500.00", page.text)
        self.assertIn("03/02/2026 10:15:00", page.text, "the date in Nairobi")
        self.assertIn('text-bg-success">Paid</span>', page.text)
        self.assertIn(f'href="/my/mpesa/{mine.id}/receipt"', page.text)
        self.assertNotIn("QOTHER0001", page.text)
        self.assertNotIn(f"/my/mpesa/{other.id}/receipt", page.text)

        # Another customer's receipt, or one that does not exist: not found.
        for receipt_id in (other.id, other.id + 10_000):
            response = self.url_open(f"/my/mpesa/{receipt_id}/receipt")
            self.assertEqual(response.status_code, 404, receipt_id)
        with self._real_pdf():
            response = self.url_open(f"/my/mpesa/{mine.id}/receipt")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.headers["Content-Type"], "application/pdf")
        self.assertIn("attachment", response.headers["Content-Disposition"])
        self.assertIn("QPORTAL001", response.headers["Content-Disposition"])
        self.assertTrue(response.content.startswith(b"%PDF"))
        self.assertIn("QPORTAL001", pdf_text(response.content))

        # The record rule agrees with the page.
        with self.assertRaises(AccessError):
            other.with_user(self.portal_user).read(["amount"])

    def test_a_copied_phone_number_shows_none_of_its_payments(self):
        """Issue 11, finding 3: a portal customer types someone else's phone number
        on /my/account. Paybill payments from that phone naming no document are
        suggested to finance as theirs, never shown to them nor applied to them."""
        self.authenticate(self.portal_user.login, self.portal_user.login)
        account = self.url_open(
            "/my/account",
            data={
                "name": self.portal_partner.name,
                "email": self.portal_partner.email,
                "phone": "0722 555 123",  # the victim's phone, not theirs
                "street": "Moi Avenue 1",
                "city": "Nairobi",
                "country_id": self.env.ref("base.ke").id,
                "csrf_token": Request.csrf_token(self),
            },
        )
        self.assertEqual(account.status_code, 200)
        with self._db_lock():
            self.env.invalidate_all()
            self.assertEqual(self.portal_partner.mpesa_msisdn, "254722555123")
        plain = self._c2b("LUNCH", 700, msisdn="254722555123", style="plain")
        hashed = self._c2b("FEES", 800, msisdn="254722555123", style="hashed")
        with self._db_lock():
            for receipt in plain | hashed:
                self.assertEqual(receipt.state, "review", receipt.phone)
                self.assertFalse(receipt.partner_id, "nobody's payment yet")
                self.assertEqual(receipt.suggested_partner_id, self.portal_partner)
                self.assertFalse(receipt.application_ids, "no money applied")
                exception = self.env["mpesa.exception"].search(
                    [("receipt_id", "=", receipt.id)]
                )
                self.assertFalse(exception.partner_id)
                self.assertEqual(exception.suggested_partner_id, self.portal_partner)

        counters = self.make_jsonrpc_request(
            "/my/counters", {"counters": ["mpesa_receipt_count"]}
        )
        self.assertEqual(counters["mpesa_receipt_count"], 0)
        page = self.url_open("/my/mpesa")
        self.assertEqual(page.status_code, 200)
        for receipt in plain | hashed:
            self.assertNotIn(receipt.name, page.text)
            response = self.url_open(f"/my/mpesa/{receipt.id}/receipt")
            self.assertEqual(response.status_code, 404)
            with self.assertRaises(AccessError):
                receipt.with_user(self.portal_user).read(["amount"])

    def test_my_payments_pages_and_anonymous(self):
        codes = ["QPAGE00001", "QPAGE00002", "QPAGE00003"]
        receipts = [
            self._customer_receipt(self.portal_partner, 100 + i, code)[0]
            for i, code in enumerate(codes)
        ]
        for receipt, paid_at in zip(
            receipts,
            ["2026-03-01 06:00:00", "2026-03-02 06:00:00", "2026-03-03 06:00:00"],
            strict=True,
        ):
            self._write(receipt, {"paid_at": paid_at})

        anonymous = self.url_open("/my/mpesa", allow_redirects=False)
        self.assertIn(anonymous.status_code, (302, 303))
        self.assertIn("/web/login", anonymous.headers["Location"])

        self.authenticate(self.portal_user.login, self.portal_user.login)
        with patch.object(MpesaPortal, "_mpesa_per_page", 2):
            first = self.url_open("/my/mpesa")
            second = self.url_open("/my/mpesa/page/2")
        # Newest first, two a page.
        self.assertIn("QPAGE00003", first.text)
        self.assertIn("QPAGE00002", first.text)
        self.assertNotIn("QPAGE00001", first.text)
        self.assertIn('href="/my/mpesa/page/2"', first.text)
        self.assertIn("QPAGE00001", second.text)
        self.assertNotIn("QPAGE00003", second.text)

    # === PDF === #

    def test_receipt_pdf_content(self):
        receipt, invoice = self._customer_receipt(
            self.partner,
            1000,
            "QPDF000001",
            lines=[(self.lamp, 600.0), (self.install, 400.0)],
        )
        self.env.company.name = "Duka La Mama Ltd"
        content = self._render_receipt_pdf(receipt)
        self.assertTrue(content.startswith(b"%PDF"))
        text = pdf_text(content)
        for expected in (
            "Payment Receipt",
            "QPDF000001",  # the M-PESA receipt code
            "Duka La Mama Ltd",  # the company
            "Achieng Otieno",  # the customer
            "1,000.00",  # the amount
            "03/02/2026 10:15:00",  # 07:15 UTC in Nairobi
            "EAT",
            invoice.name,  # the reference and what it paid
            "Solar Lamp",
            "Installation Service",
            "600.00",
            "400.00",
        ):
            self.assertIn(expected, text)

    def test_receipt_pdf_of_a_part_payment(self):
        """KES 600 paid towards a KES 1,000 invoice: the receipt says so, and does not
        list the invoice's lines as if they were paid."""
        receipt, invoice = self._customer_receipt(
            self.partner,
            600,
            "QPDFPART01",
            lines=[(self.lamp, 600.0), (self.install, 400.0)],
        )
        self.assertEqual((invoice.amount_total, receipt.applied_amount), (1000, 600))
        text = pdf_text(self._render_receipt_pdf(receipt))
        self.assertIn(
            f"Part payment towards {invoice.name} (total KES 1,000.00) 1.00 600.00",
            text,
        )
        self.assertNotIn("Installation Service", text)
        self.assertNotIn("Solar Lamp", text)

    # === ISSUING === #

    def test_issued_by_email_when_applied_once_unless_forced(self):
        with self._real_pdf():
            receipt, _invoice = self._customer_receipt(self.partner, 800, "QMAIL00001")
            self.assertFalse(receipt.receipt_issued_on, "never inside the callback")
            with self._db_lock():
                self.env["mpesa.receipt"].with_user(
                    self.env.ref("base.user_root")
                )._cron_issue_receipts()
                self.env.flush_all()

        # Applied by the paybill callback, then issued by the job, to the customer.
        self.assertTrue(receipt.receipt_issued_on)
        self.assertEqual(receipt.receipt_sent_to, "customer@example.com")
        self.assertEqual(receipt.receipt_issued_by, self.env.ref("base.user_root"))
        [message] = self._receipt_messages(receipt)
        self.assertEqual(message.subject, f"{SUBJECT} QMAIL00001")
        self.assertEqual(message.partner_ids, self.partner)
        self.assertEqual(
            message.attachment_ids.mapped("name"), ["M-PESA Receipt QMAIL00001.pdf"]
        )
        self.assertEqual(message.attachment_ids.mimetype, "application/pdf")
        self.assertIn("800.00", pdf_text(message.attachment_ids.raw))
        emailed = message.notification_ids.filtered(
            lambda n: n.notification_type == "email"
        )
        self.assertEqual(emailed.res_partner_id, self.partner)
        self.assertIn("QMAIL00001", str(message.body))
        self.assertIn("800.00", str(message.body))

        # Applied again, or issued again without force: nothing more is sent.
        first_issue = receipt.receipt_issued_on
        self._write(receipt, {"state": "applied"})
        with self._db_lock():
            self.assertFalse(receipt._mpesa_issue_receipt())
            self.env.flush_all()
        self.assertEqual(len(self._receipt_messages(receipt)), 1)
        self.assertEqual(receipt.receipt_issued_on, first_issue)

        # The button sends it again, with a real PDF, and says who did it.
        self._write(self.partner, {"email": "achieng@example.com"})
        with self._real_pdf(), self._db_lock():
            action = receipt.with_user(self.finance).action_issue_receipt()
            self.env.flush_all()
        self.assertEqual(action["params"]["message"], "achieng@example.com")
        self.assertEqual(len(self._receipt_messages(receipt)), 2)
        self.assertEqual(receipt.receipt_issued_by, self.finance)
        self.assertEqual(receipt.receipt_sent_to, "achieng@example.com")
        last = self._receipt_messages(receipt)[0]
        attachment = last.attachment_ids
        self.assertEqual(attachment.mimetype, "application/pdf")
        self.assertIn("QMAIL00001", pdf_text(attachment.raw))

    def test_not_issued_without_email_or_by_outsiders(self):
        self._write(self.partner, {"email": False})
        receipt, _invoice = self._customer_receipt(self.partner, 500, "QNOMAIL001")
        with self._db_lock():
            self.env["mpesa.receipt"]._cron_issue_receipts()
            self.env.flush_all()
        self.assertFalse(receipt.receipt_issued_on, "no address to send it to")
        self.assertFalse(self._receipt_messages(receipt))
        with self.assertRaises(UserError), self._db_lock():
            receipt.with_user(self.finance).action_issue_receipt()
        self._write(self.partner, {"email": "customer@example.com"})
        with self.assertRaises(AccessError), self._db_lock():
            receipt.with_user(self.outsider).action_issue_receipt()
        with self.assertRaises(AccessError), self._db_lock():
            receipt.with_user(self.portal_user).action_issue_receipt()
        self.assertFalse(receipt.receipt_issued_on)
        # Payments in review are not issued by themselves either.
        stray = self._c2b("NOSUCHREF", 50)
        self.assertEqual(stray.state, "review")
        self.assertFalse(stray.receipt_issued_on)

    def test_one_message_per_stk_payment_with_the_pdf_receipt(self):
        """With mpesa_reports too, an STK payer gets one message: the receipt code,
        the real PDF receipt saying the same, and where to download it again."""
        with self._db_lock():
            invoice = self._product_invoice([(self.lamp, 600), (self.install, 400)])
            tx = self._create_mpesa_tx(
                amount=1000, invoice_ids=[Command.set(invoice.ids)]
            )
            self.env.flush_all()
            last = self.env["mail.message"].search([], order="id desc", limit=1).id
        self._push(tx)
        self._wait_callbacks(1)
        with self._real_pdf(), self._db_lock():
            tx._post_process()  # the status page's poll: the invoice is paid
            self.env["mpesa.receipt"]._cron_issue_receipts()  # the job
            self.env["mpesa.receipt"]._cron_issue_receipts()  # nothing twice
            self.env.flush_all()
            [message] = emails_to(self.env, self.partner, after=last)
        code = tx.mpesa_receipt_code
        [attachment] = message.attachment_ids
        self.assertEqual(attachment.name, f"M-PESA Receipt {code}.pdf")
        receipt_text = pdf_text(attachment.raw)
        for text in (code, "1,000.00", invoice.name):
            self.assertIn(text, str(message.body))
            self.assertIn(text, receipt_text)
        self.assertIn("My M-PESA payments", str(message.body))

    # === SWAHILI === #

    def test_in_swahili(self):
        """A customer who reads Swahili: the receipt email, My M-PESA payments and the
        PDF receipt in Swahili (i18n/sw.po of mpesa_payment and mpesa_reports)."""
        self._write(self.portal_partner, {"lang": "sw"})
        if "website" in self.env:  # the portal speaks the website's languages
            self._write(
                self.env["website"].search([]),
                {"language_ids": [Command.link(self.env.ref("base.lang_sw").id)]},
            )
        last_message = self.env["mail.message"].search([], order="id desc", limit=1)
        with self._real_pdf():
            receipt, invoice = self._customer_receipt(
                self.portal_partner, 1500, "QSWA000001"
            )
            with self._db_lock():
                self.env["mpesa.receipt"].with_user(
                    self.env.ref("base.user_root")
                )._cron_issue_receipts()
                self.env.flush_all()

        # The email: its subject, its words and its PDF.
        [email] = emails_to(self.env, self.portal_partner, last_message.id)
        self.assertEqual(email.subject, "Risiti yako ya malipo ya M-PESA QSWA000001")
        body = str(email.body)
        self.assertIn("Habari Wanjiku Kamau,", body)
        self.assertIn("Tumepokea malipo yako ya M-PESA ya", body)
        self.assertIn("Nambari ya risiti ya M-PESA: <strong>QSWA000001</strong>", body)
        self.assertNotIn("We received", body)
        self.assertIn("Risiti ya Malipo QSWA000001", pdf_text(email.attachment_ids.raw))

        # My M-PESA payments.
        self.authenticate(self.portal_user.login, self.portal_user.login)
        page = self.url_open("/my/mpesa")
        self.assertEqual(page.status_code, 200)
        self.assertIn("/sw/my/mpesa", page.url)
        for text in (
            "Malipo ya M-PESA",
            "Tarehe (saa za Nairobi)",
            'text-bg-success">Imelipwa</span>',
            'title="Pakua risiti ya PDF"',
            "QSWA000001",
        ):
            self.assertIn(text, page.text)
        self.assertNotIn("Download the PDF receipt", page.text)

        # The PDF receipt it downloads.
        with self._real_pdf():
            response = self.url_open(f"/my/mpesa/{receipt.id}/receipt")
        self.assertEqual(response.headers["Content-Type"], "application/pdf")
        text = pdf_text(response.content)
        for expected in (
            "Risiti ya Malipo QSWA000001",
            "Imepokelewa kutoka kwa Wanjiku Kamau",
            "Nambari ya risiti ya M-PESA QSWA000001",
            "Tarehe 02/03/2026 10:15:00 EAT (saa za Nairobi)",
            "Nambari ya akaunti " + invoice.name,
            "Kiasi kilichopokelewa",
            "1,500.00",
            "Malipo ya " + invoice.name,
            "Maelezo Idadi Kiasi",
            "Solar Lamp",
            "Risiti hii inathibitisha kwamba malipo ya M-PESA",
        ):
            self.assertIn(expected, text)
        self.assertNotIn("Payment Receipt", text)
