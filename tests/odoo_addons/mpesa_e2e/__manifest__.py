# Copyright 2026 The mpesa-odoo authors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
{
    "name": "M-PESA end-to-end tests",
    "summary": "Browser tours and cross-addon flows of the M-PESA payment provider "
    "against the Daraja emulator (shop, portal invoices, quotations, payment links)",
    "version": "18.0.1.0.0",
    "category": "Hidden/Tests",
    "website": "https://github.com/mpesa-odoo/mpesa-odoo",
    "author": "mpesa-odoo contributors",
    "license": "LGPL-3",
    "depends": ["mpesa_payment", "website_sale", "sale_management", "account_payment"],
    "assets": {
        "web.assets_tests": [
            "mpesa_e2e/static/tests/tours/*.js",
        ],
    },
}
