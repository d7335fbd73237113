# Copyright 2026 The mpesa-odoo authors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
{
    "name": "M-PESA Reconciliation",
    "summary": "A ledger of M-PESA receipts matched to invoices and statements",
    "version": "18.0.1.0.2",
    "category": "Accounting",
    "website": "https://github.com/mpesa-odoo/mpesa-odoo",
    "author": "mpesa-odoo contributors",
    "license": "LGPL-3",
    "depends": ["mpesa_payment", "account_reconcile_oca"],
    "data": [
        "security/mpesa_reconciliation_security.xml",
        "security/ir.model.access.csv",
        "wizards/mpesa_statement_import_views.xml",
        "wizards/mpesa_exception_allocate_views.xml",
        "views/mpesa_receipt_views.xml",
        "views/mpesa_exception_views.xml",
        "wizards/mpesa_exception_return_views.xml",
        "views/account_bank_statement_line_views.xml",
        "views/res_config_settings_views.xml",
        "views/mpesa_collection_views.xml",
        "views/mpesa_branch_views.xml",
        "views/payment_provider_views.xml",
        "views/menus.xml",
        "data/ir_cron_data.xml",
        "data/ir_cron_pull_data.xml",
    ],
    "assets": {
        "web.assets_tests": [
            "mpesa_reconciliation/static/tests/tours/*.js",
        ],
    },
}
