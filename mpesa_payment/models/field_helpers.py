"""Field declarations that follow one rule wherever they are used.

Admin-only settings: M-PESA credentials (keys, secrets, passkey, initiator
credentials, tokens), what routes the money (shortcodes, tills, API and callback
addresses) and the go-live checks that show them are declared with ``admin_only`` or
``admin_char`` on payment.provider, so that the rule "credentials only in admin-only
fields" is written once: such a field is invisible to every other user, accountants
and M-PESA managers included.

Account numbers: what a customer types as account number at the paybill, on the
records that give one (customers, subscriptions), is declared with
``account_number_field``.
"""

from odoo import fields

ADMIN_GROUP = "base.group_system"


def admin_only(field_type, *args, **kwargs):
    """``field_type(*args, **kwargs)``, readable and writable by administrators
    only."""
    return field_type(*args, groups=ADMIN_GROUP, **kwargs)


def admin_char(**kwargs):
    """A Char field only administrators read or write: every M-PESA credential."""
    return admin_only(fields.Char, **kwargs)


def account_number_field(**kwargs):
    """The M-PESA account number of a record: it names that one record, so it is
    never copied, and every paybill payment looks it up, so it is indexed. The
    model keeps it unique with an SQL constraint."""
    return fields.Char(string="M-PESA Account Number", copy=False, index=True, **kwargs)
