{
    "name": "M-PESA test-summary probe",
    "summary": "A throw-away module whose tests skip on purpose: proves what "
    "setup/odoo_test_summary.py counts (tests/test_odoo_test_summary.py).",
    "version": "18.0.1.0.0",
    "category": "Hidden/Tests",
    "license": "LGPL-3",
    "author": "M-PESA for Odoo contributors",
    "depends": ["web"],
    "installable": True,
}
