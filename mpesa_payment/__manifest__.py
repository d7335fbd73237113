# Copyright 2026 The mpesa-odoo authors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
{
    "name": "Payment Provider: M-PESA",
    "summary": "Take M-PESA payments (Safaricom Daraja STK push) on the website, "
    "portal and payment links",
    "version": "18.0.1.4.3",
    "category": "Accounting/Payment Providers",
    "website": "https://github.com/mpesa-odoo/mpesa-odoo",
    "author": "mpesa-odoo contributors",
    "license": "LGPL-3",
    "depends": [
        "payment",
        "account_payment",
        "sale",
        "subscription_oca",
    ],
    "external_dependencies": {"python": ["phonenumbers", "requests"]},
    "data": [
        "security/mpesa_security.xml",
        "security/ir.model.access.csv",
        "views/payment_provider_views.xml",
        "views/payment_provider_refund_views.xml",
        "views/payment_provider_readiness_views.xml",
        "views/payment_transaction_views.xml",
        "views/mpesa_callback_views.xml",
        "views/mpesa_receipt_views.xml",
        "views/res_partner_views.xml",
        "views/sale_subscription_views.xml",
        "views/payment_mpesa_templates.xml",
        "views/mpesa_how_to_pay_templates.xml",
        "views/mpesa_api_request_views.xml",
        "views/mpesa_collection_views.xml",
        "wizards/mpesa_receipt_lookup_views.xml",
        "wizards/payment_refund_wizard_views.xml",
        "views/menus.xml",
        "data/payment_provider_data.xml",
        "data/ir_cron_data.xml",
        "data/refund_data.xml",
        "report/mpesa_receipt_report.xml",
        "data/mail_template_receipt.xml",
        "data/mail_template_reminders.xml",
    ],
    "post_init_hook": "post_init_hook",
    "uninstall_hook": "uninstall_hook",
    "assets": {
        "web.assets_frontend": [
            "mpesa_payment/static/src/js/payment_form.js",
        ],
        "web.assets_backend": [
            "mpesa_payment/static/src/collection/*",
        ],
    },
}
