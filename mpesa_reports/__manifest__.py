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
}
