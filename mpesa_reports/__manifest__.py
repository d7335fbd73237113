# Copyright 2026 The mpesa-odoo authors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
{
    "name": "M-PESA Reports",
    "summary": "M-PESA finance dashboard, pivot reports, exports and receipts",
    "version": "18.0.1.0.0",
    "category": "Accounting",
    "website": "https://github.com/mpesa-odoo/mpesa-odoo",
    "author": "mpesa-odoo contributors",
    "license": "LGPL-3",
    "depends": ["mpesa_reconciliation"],
    "external_dependencies": {"python": ["xlsxwriter"]},
    "data": [
        # reporting model, exports, daily summary (report/, wizards/, data/)
        "security/ir.model.access.csv",
        "report/mpesa_receipt_report_views.xml",
        "report/mpesa_daily_summary.xml",
        "wizards/mpesa_export_views.xml",
        "data/mpesa_daily_summary_data.xml",
        # dashboard, portal, receipts (views/, report/)
        "views/mpesa_dashboard_views.xml",
        "views/mpesa_receipt_views.xml",
        "views/portal_templates.xml",
        "views/menus.xml",
    ],
    "assets": {
        "web.assets_backend": [
            "mpesa_reports/static/src/dashboard/**/*",
        ],
        "web.assets_tests": [
            "mpesa_reports/static/tests/tours/*.js",
        ],
    },
}
