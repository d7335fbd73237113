from odoo import fields
from odoo.tests import tagged

from .common import ReportsCommon, pdf_text

# The codes the tours look for (static/tests/tours/mpesa_reports_tours.js).
UNMATCHED_CODE = "QTOURUNM01"
PORTAL_CODE = "QTOURPRT01"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@tagged("post_install", "-at_install", "is_tour")
class TestTours(ReportsCommon):
    """Finance and a customer in Chromium; screenshots of what they see."""

    browser_size = "1440x1000"

    def _assert_png(self, path):
        self.assertTrue(path.is_file(), path)
        content = path.read_bytes()
        self.assertGreater(len(content), 1000, path)
        self.assertTrue(content.startswith(PNG_MAGIC), path)

    def test_dashboard_drilldown(self):
        invoice = self._product_invoice([(self.lamp, 1234.0)])
        receipt = self._c2b(invoice.name, 1234, trans_id=UNMATCHED_CODE)
        # Paid now: today's figures on the dashboard (in Nairobi, the user's zone).
        self._write(
            receipt, {"paid_at": fields.Datetime.now(), "branch_id": self.nairobi.id}
        )
        self.assertEqual(receipt.reconcile_state, "unreconciled")
        self._write(
            self.mpesa,
            {"mpesa_balance": 1234.0, "mpesa_balance_date": fields.Datetime.now()},
        )

        self.start_tour(
            "/odoo/mpesa-dashboard",
            "mpesa_reports_dashboard_drilldown",
            login=self.finance.login,
            timeout=120,
        )

        path = self._screenshot(
            "/odoo/mpesa-dashboard",
            "!!document.querySelector(\".o_mpesa_figures[data-loaded='1'] "
            ".o_mpesa_figure[data-name='unmatched']\")",
            "mpesa_dashboard.png",
            login=self.finance.login,
        )
        self._assert_png(path)

    def test_portal_download_receipt(self):
        invoice = self._product_invoice(
            [(self.install, 2500.0)], partner=self.portal_partner
        )
        receipt = self._c2b(invoice.name, 2500, trans_id=PORTAL_CODE)
        self.assertEqual(receipt.partner_id, self.portal_partner)
        self.assertEqual(receipt.state, "applied")
        other = self._c2b("NOSUCHREF", 40)
        self._write(other, {"partner_id": self.partner.id})

        with self._real_pdf():
            self.start_tour(
                "/my",
                "mpesa_reports_portal_receipt",
                login=self.portal_user.login,
                timeout=120,
            )
            # What the link gave the browser, fetched again here: the customer's PDF.
            self.authenticate(self.portal_user.login, self.portal_user.login)
            response = self.url_open(f"/my/mpesa/{receipt.id}/receipt")
            refused = self.url_open(f"/my/mpesa/{other.id}/receipt")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.headers["Content-Type"], "application/pdf")
        text = pdf_text(response.content)
        self.assertIn(PORTAL_CODE, text)
        self.assertIn("Wanjiku Kamau", text)
        self.assertIn("2,500.00", text)
        self.assertEqual(refused.status_code, 404)

        path = self._screenshot(
            "/my/mpesa",
            f"!!document.querySelector(\"tr.o_mpesa_receipt_row[data-receipt='{PORTAL_CODE}']\")",
            "mpesa_portal_payments.png",
            login=self.portal_user.login,
        )
        self._assert_png(path)
