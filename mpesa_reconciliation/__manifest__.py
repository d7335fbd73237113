# Copyright 2026 The mpesa-odoo authors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
{
    "name": "M-PESA Reconciliation",
    "summary": "A ledger of M-PESA receipts matched to invoices and statements",
    "version": "18.0.1.0.0",
    "category": "Accounting",
    "website": "https://github.com/mpesa-odoo/mpesa-odoo",
    "author": "mpesa-odoo contributors",
    "license": "LGPL-3",
    "depends": ["mpesa_payment", "account_reconcile_oca"],
}
