import base64
import io
import pathlib
from contextlib import contextmanager
from unittest.mock import patch

import odoo
from odoo import Command, fields
from odoo.tests import new_test_user
from odoo.tests.common import TEST_CURSOR_COOKIE_NAME, ChromeBrowser
from odoo.tools.pdf import PdfFileReader

from odoo.addons.mpesa_reconciliation.tests.common import ReconciliationCommon

RECEIPT_REPORT = "mpesa_payment.action_report_mpesa_receipt"
# Where Daraja posts (the emulator sends no test cookie).
CALLBACK_PREFIXES = ("/payment/daraja/", "/payment/mpesa/")


def pdf_text(content):
    """The text of every page of a PDF, its white space collapsed to single spaces."""
    reader = PdfFileReader(io.BytesIO(content), strict=False)
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


class ReportsCommon(ReconciliationCommon):
    """Receipts, customers, branches and the staff who look at them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        company = cls.env.company
        cls.kes = cls.currency_kes
        cls.lamp = cls.env["product.product"].create(
            {"name": "Solar Lamp", "type": "consu", "list_price": 600.0}
        )
        cls.install = cls.env["product.product"].create(
            {"name": "Installation Service", "type": "service", "list_price": 400.0}
        )
        cls.nairobi = cls.env["mpesa.branch"].create({"name": "Nairobi CBD"})
        cls.mombasa = cls.env["mpesa.branch"].create({"name": "Mombasa Road"})
        cls.field_team = cls.env["crm.team"].create({"name": "Field Sales"})
        common = {
            "company_id": company.id,
            "company_ids": [Command.set(company.ids)],
            "tz": "Africa/Nairobi",
        }
        cls.finance = new_test_user(
            cls.env,
            "mpesa_finance",
            groups="base.group_user,mpesa_reconciliation.group_mpesa_reconciler",
            name="Faith Finance",
            email="faith@example.com",
            **common,
        )
        cls.clerk = new_test_user(
            cls.env,
            "mpesa_branch_clerk",
            groups="base.group_user,mpesa_payment.group_mpesa_user",
            name="Brian Branch",
            **common,
        )
        cls.clerk.mpesa_branch_ids = cls.nairobi
        cls.outsider = new_test_user(
            cls.env, "no_mpesa_employee", groups="base.group_user", **common
        )
        cls.partner.write({"name": "Achieng Otieno", "lang": "en_US"})
        cls.portal_partner.write(
            {
                "name": "Wanjiku Kamau",
                "email": "wanjiku@example.com",
                "country_id": cls.env.ref("base.ke").id,
                "lang": "en_US",
            }
        )

    # === TEST SERVER === #

    def check_test_cursor(self, operation):
        """Let Daraja's callbacks in after a browser ran: Safaricom sends no test
        cookie. Only its routes, only for this test (see mpesa_e2e)."""
        request = odoo.http.request
        if (
            request
            and odoo.modules.module.current_test is self
            and self.http_request_key
            and request.httprequest.path.startswith(CALLBACK_PREFIXES)
            and not request.httprequest.cookies.get(TEST_CURSOR_COOKIE_NAME)
        ):
            return
        super().check_test_cursor(operation)

    # === DATA === #

    def _product_invoice(self, lines, partner=None):
        """A posted KES invoice with product lines [(product, price)], no taxes."""
        with self._db_lock():
            invoice = self.env["account.move"].create(
                {
                    "move_type": "out_invoice",
                    "partner_id": (partner or self.partner).id,
                    "currency_id": self.kes.id,
                    "invoice_line_ids": [
                        Command.create(
                            {
                                "product_id": product.id,
                                "quantity": 1,
                                "price_unit": price,
                                "tax_ids": [Command.clear()],
                            }
                        )
                        for product, price in lines
                    ],
                }
            )
            invoice.action_post()
            self.env.flush_all()
        return invoice

    def _write(self, records, values):
        with self._db_lock():
            records.sudo().write(values)
            self.env.flush_all()

    def _set_create_date(self, records, moment):
        with self._db_lock():
            self.env.flush_all()
            self.env.cr.execute(
                f'UPDATE "{records._table}" SET create_date = %s WHERE id IN %s',
                [moment, tuple(records.ids)],
            )
            records.invalidate_recordset(["create_date"])

    @staticmethod
    def _utc(text):
        return fields.Datetime.to_datetime(text)

    # === REPORTS === #

    @contextmanager
    def _real_pdf(self):
        """Render PDFs with wkhtmltopdf although tests run (Odoo renders HTML in tests),
        and keep wkhtmltopdf from calling the test server back for its stylesheets (a
        request thread waiting on wkhtmltopdf holds the test cursor)."""
        Report = self.registry["ir.actions.report"]
        pre_render = Report._pre_render_qweb_pdf

        def forced(report, *args, **kwargs):
            return pre_render(
                report.with_context(force_report_rendering=True), *args, **kwargs
            )

        with self._db_lock():
            self.env["ir.config_parameter"].sudo().set_param(
                "report.url", "http://127.0.0.1:9"
            )
        with patch.object(Report, "_pre_render_qweb_pdf", forced):
            yield

    def _render_receipt_pdf(self, receipt):
        with self._real_pdf():
            content, kind = self.env["ir.actions.report"]._render_qweb_pdf(
                RECEIPT_REPORT, receipt.ids
            )
        self.assertEqual(kind, "pdf")
        return content

    # === SCREENSHOTS === #

    def _screenshot(self, url_path, ready, filename, login):
        """Open ``url_path`` in headless Chromium as ``login``, wait until the ``ready``
        JavaScript expression is true and save a PNG named ``filename`` in the folder
        given by ``--screenshots``. Returns its path.

        Also waits for the page's own JavaScript to have started (Odoo sets
        ``odoo.__WOWL_DEBUG__`` once its services are up, web client and portal
        alike): a portal row is in the HTML before that, and closing the browser
        while a service still fetches its data logs "Failed to fetch"."""
        started = "!!(window.odoo && odoo.__WOWL_DEBUG__)"
        browser = ChromeBrowser(self)
        try:
            self.http_request_key = self.canonical_tag + "_screenshot"
            self.authenticate(login, login, browser=browser)
            self.http_request_strict_check = True
            self.cr.flush()
            self.cr.clear()
            browser.navigate_to(f"{self.base_url()}{url_path}")
            self.assertTrue(
                browser._wait_ready(f"{started} && ({ready})", timeout=60),
                f"{url_path}: {ready}",
            )
            shot = browser._websocket_request(
                "Page.captureScreenshot", params={"format": "png"}, timeout=30
            )
        finally:
            browser.stop()
            self._wait_remaining_requests()
            self.http_request_key = self.canonical_tag
            self.opener.cookies[TEST_CURSOR_COOKIE_NAME] = self.http_request_key
        folder = pathlib.Path(odoo.tools.config["screenshots"])
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / filename
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
