import base64
import csv
import io

import xlsxwriter

from odoo import api, fields, models
from odoo.exceptions import UserError

from odoo.addons.mpesa_payment.kenya_time import (
    kenya_day_bounds,
    kenya_today,
    to_kenya,
)

from ..report_company import report_company_field

# The columns of the accounting export, in order (documented in readme/USAGE.md).
# The headers are fixed, untranslated names: accounting imports map them.
COLUMNS = [
    "Date",
    "Receipt Code",
    "Shortcode",
    "Channel",
    "Kind",
    "Customer",
    "Phone",
    "Account Reference",
    "Amount",
    "Expected Amount",
    "Status",
    "Reconciliation Status",
    "Invoice",
    "Sales Order",
    "Journal Entry",
    "Branch",
    "Department",
    "Owner",
]
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
MIMETYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv",
}


# A spreadsheet reads a cell starting with one of these as a formula (CSV injection):
# such text gets a leading apostrophe, as OWASP recommends. Customers' names and the
# references they type are theirs to choose. (XLSX cells are written as strings.)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value):
    """A text cell safe to open in a spreadsheet."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class MpesaExport(models.TransientModel):
    """M-PESA receipts of a period as a file for accounting."""

    _name = "mpesa.export"
    _description = "M-PESA Export for Accounting"

    date_from = fields.Date(
        string="From",
        required=True,
        default=lambda self: kenya_today().replace(day=1),
        help="First day (Africa/Nairobi) included.",
    )
    date_to = fields.Date(
        string="To",
        required=True,
        default=lambda self: kenya_today(),
        help="Last day (Africa/Nairobi) included.",
    )
    company_id = report_company_field()
    shortcode = fields.Selection(
        selection="_selection_shortcode",
        help="The M-PESA paybill or till to export. Empty: all of the company's.",
    )
    file_format = fields.Selection(
        [("xlsx", "Excel (XLSX)"), ("csv", "CSV (UTF-8)")],
        string="Format",
        required=True,
        default="xlsx",
    )

    @api.model
    def _selection_shortcode(self):
        providers = self.env["payment.provider"]._mpesa_providers(active=False)
        shortcodes = {}
        for provider in providers:
            # The value is the ledger's shortcode (a till's store number); the label
            # says what finance knows: "Till 5123456".
            if provider.mpesa_shortcode:
                shortcodes.setdefault(
                    provider.mpesa_shortcode,
                    f"{provider._mpesa_shortcode_label()} ({provider.company_id.name})",
                )
        return sorted(shortcodes.items())

    # === DATA === #

    def _domain(self):
        self.ensure_one()
        if self.date_to < self.date_from:
            raise UserError(self.env._("The period ends before it starts."))
        start = kenya_day_bounds(self.date_from)[0]
        end = kenya_day_bounds(self.date_to)[1]
        domain = [
            ("company_id", "=", self.company_id.id),
            ("paid_at", ">=", start),
            ("paid_at", "<", end),
        ]
        if self.shortcode:
            domain.append(("shortcode", "=", self.shortcode))
        return domain

    def _receipts(self):
        """The period's receipts the user may see: searched with their record rules."""
        return self.env["mpesa.receipt"].search(self._domain(), order="paid_at, id")

    def _rows(self, receipts):
        """One list of values per receipt, in COLUMNS order. Dates are Nairobi
        local datetimes (naive); amounts are floats."""
        Receipt = self.env["mpesa.receipt"]
        labels = {
            name: dict(Receipt._fields[name]._description_selection(self.env))
            for name in ("channel", "kind", "state", "reconcile_state")
        }
        rows = []
        # Links (invoices, journal entries...) are shown by name to whoever may see
        # the receipt itself.
        for receipt in receipts.sudo():
            tx = receipt.transaction_id
            invoices = receipt.invoice_id or tx.invoice_ids
            orders = receipt.sale_order_id or tx.sale_order_ids
            paid_at = receipt.paid_at and to_kenya(receipt.paid_at)
            rows.append(
                [
                    paid_at or None,
                    receipt.name,
                    receipt.shortcode,
                    labels["channel"].get(receipt.channel, ""),
                    labels["kind"].get(receipt.kind, ""),
                    receipt.partner_id.name or receipt.customer_name or "",
                    receipt.phone or "",
                    receipt.reference or "",
                    receipt.amount,
                    receipt.expected_amount,
                    labels["state"].get(receipt.state, ""),
                    labels["reconcile_state"].get(receipt.reconcile_state, ""),
                    ", ".join(invoices.mapped("name")),
                    ", ".join(orders.mapped("name")),
                    receipt.statement_line_id.move_id.name or "",
                    receipt.branch_id.name or "",
                    receipt.team_id.name or "",
                    receipt.user_id.name or "",
                ]
            )
        return rows

    # === FILES === #

    def _csv_content(self, rows):
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=",", lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for row in rows:
            values = [csv_text(value) for value in row]
            values[0] = row[0].strftime(DATE_FORMAT) if row[0] else ""
            values[8] = f"{row[8]:.2f}"
            values[9] = f"{row[9]:.2f}"
            writer.writerow(values)
        return buffer.getvalue().encode("utf-8-sig")

    def _xlsx_content(self, rows):
        buffer = io.BytesIO()
        workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
        sheet = workbook.add_worksheet("M-PESA")
        bold = workbook.add_format({"bold": True})
        date_fmt = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        money_fmt = workbook.add_format({"num_format": "#,##0.00"})
        sheet.write_row(0, 0, COLUMNS, bold)
        sheet.freeze_panes(1, 0)
        for index, row in enumerate(rows, start=1):
            for col, value in enumerate(row):
                if col == 0:
                    if value:
                        sheet.write_datetime(index, col, value, date_fmt)
                elif col in (8, 9):
                    sheet.write_number(index, col, value, money_fmt)
                else:
                    sheet.write_string(index, col, value)
        sheet.set_column(0, 0, 20)
        sheet.set_column(1, len(COLUMNS) - 1, 16)
        if rows:
            sheet.autofilter(0, 0, len(rows), len(COLUMNS) - 1)
        workbook.close()
        return buffer.getvalue()

    def _filename(self):
        return (
            f"mpesa_receipts_{self.company_id.name}_{self.date_from}_{self.date_to}"
            f".{self.file_format}"
        ).replace(" ", "_")

    def action_export(self):
        self.ensure_one()
        rows = self._rows(self._receipts())
        if self.file_format == "csv":
            content = self._csv_content(rows)
        else:
            content = self._xlsx_content(rows)
        attachment = self.env["ir.attachment"].create(
            {
                "name": self._filename(),
                "datas": base64.b64encode(content),
                "mimetype": MIMETYPES[self.file_format],
                "res_model": self._name,
                "res_id": self.id,
            }
        )
        return {
            "type": "ir.actions.act_url",
            "url": f"/web/content/{attachment.id}?download=true",
            "target": "self",
        }
