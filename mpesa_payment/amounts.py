"""How an amount of Kenyan shillings reads in our messages: one home for it.

M-PESA's own texts write amounts as 1,250.00 in English and Swahili alike, so the
figure does not follow the reader's language settings (Odoo's ``format_amount``
would, and would add the currency's symbol): the translated text around it says
"KES". Customer emails and reports, rendered by QWeb, use ``format_amount`` as core's
do. Plain Python, no Odoo import.
"""


def shillings(amount):
    """1234.5 -> "1,234.50"."""
    return format(amount, ",.2f")


def whole_shillings(amount):
    """M-PESA takes whole shillings only: 1234 -> "1,234"."""
    return format(amount, ",.0f")
