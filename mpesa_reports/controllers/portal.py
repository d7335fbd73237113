from odoo import http
from odoo.exceptions import AccessError, MissingError
from odoo.http import request

from odoo.addons.portal.controllers.portal import CustomerPortal
from odoo.addons.portal.controllers.portal import pager as portal_pager

RECEIPT_REPORT = "mpesa_payment.action_report_mpesa_receipt"
# A page number or a record id in a URL: ASCII digits, no more than a PostgreSQL integer
# has. (Odoo's <int:...> converter turns any run of digits into an int, and fails with
# a 500 past 4300 of them before any controller runs: these routes read text instead.)
NUMBER_DIGITS = 10


def url_number(value):
    """The number a URL segment or query argument names, or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if (
        isinstance(value, str)
        and value.isascii()
        and value.isdigit()
        and len(value) <= NUMBER_DIGITS
    ):
        return int(value)
    return None


class MpesaPortal(CustomerPortal):
    """My M-PESA payments: the customer's receipts, each downloadable as a PDF."""

    _mpesa_per_page = 20

    def _mpesa_receipts_domain(self):
        # The portal record rule already limits customers to their commercial
        # partner's receipts; say it here too, for internal users browsing /my.
        partner = request.env.user.partner_id.commercial_partner_id
        return [
            ("partner_id", "child_of", partner.id),
            ("kind", "=", "payment"),
        ]

    def _prepare_home_portal_values(self, counters):
        """Override of `portal` to count the customer's M-PESA receipts on My Account."""
        values = super()._prepare_home_portal_values(counters)
        if "mpesa_receipt_count" in counters:
            Receipt = request.env["mpesa.receipt"]
            values["mpesa_receipt_count"] = (
                Receipt.search_count(self._mpesa_receipts_domain(), limit=1)
                if Receipt.has_access("read")
                else 0
            )
        return values

    @http.route(
        ["/my/mpesa", f"/my/mpesa/page/<string(maxlength={NUMBER_DIGITS}):page>"],
        type="http",
        auth="user",
        website=True,
    )
    def portal_my_mpesa_receipts(self, page=1, **kw):
        number = url_number(page)
        if number is None:
            if "/page/" in request.httprequest.path:
                raise request.not_found()
            number = 1  # ?page=abc: the first page, as for any portal list
        page = number
        Receipt = request.env["mpesa.receipt"]
        values = self._prepare_portal_layout_values()
        domain = self._mpesa_receipts_domain()
        readable = Receipt.has_access("read")
        total = Receipt.search_count(domain) if readable else 0
        pager = portal_pager(
            url="/my/mpesa",
            total=total,
            page=page,
            step=self._mpesa_per_page,
        )
        receipts = (
            Receipt.search(
                domain,
                order="paid_at desc, id desc",
                limit=self._mpesa_per_page,
                offset=pager["offset"],
            )
            if readable
            else Receipt
        )
        values.update(
            {
                "receipts": receipts,
                "page_name": "mpesa_receipts",
                "pager": pager,
                "default_url": "/my/mpesa",
            }
        )
        return request.render("mpesa_reports.portal_my_mpesa_receipts", values)

    @http.route(
        f"/my/mpesa/<string(maxlength={NUMBER_DIGITS}):receipt_id>/receipt",
        type="http",
        auth="user",
        website=True,
    )
    def portal_my_mpesa_receipt_pdf(self, receipt_id, download=True, **kw):
        receipt_id = url_number(receipt_id)
        if receipt_id is None:
            raise request.not_found()
        try:
            receipt_sudo = self._document_check_access("mpesa.receipt", receipt_id)
        except (AccessError, MissingError):
            raise request.not_found() from None
        if receipt_sudo.kind != "payment":
            raise request.not_found()
        return self._show_report(
            model=receipt_sudo,
            report_type="pdf",
            report_ref=RECEIPT_REPORT,
            download=download not in (False, "0", "false"),
        )
