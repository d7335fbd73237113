"""Since 18.0.1.3.0 a paybill payment sent to review keeps the document its account
number named and what that document had left to pay (review_document, review_due):
its exception's expected amount, and what Send Back pays before the rest goes back,
come from them. Payments already in review have neither, so their exceptions expect
the whole payment. Name their documents as the money path does; what they had left
to pay when the money came is kept nowhere, so it is what they have left now (what
Send Back would pay anyway).

An end- script: it runs once every module is loaded, so that writing these fields
recomputes the expected amount that mpesa_reconciliation stores (a post- script of
this addon runs before that addon's fields are in the registry)."""

from odoo import SUPERUSER_ID, api

# The causes for which the money path names the document (_why_not_apply_to).
NAMED_CAUSES = ("duplicate", "slip", "overpaid")


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    receipts = env["mpesa.receipt"].search(
        [
            ("state", "=", "review"),
            ("review_document", "=", False),
            # a payment request's receipt expects what the request asked
            ("transaction_id", "=", False),
        ]
    )
    for receipt in receipts:
        named, _why = receipt._resolve_reference(receipt.reference, receipt.company_id)
        if named is None:
            continue
        # Receipts older than review_cause (18.0.1.0.x) have none: ask the money
        # path again, so that a document created since the money came, which it
        # could pay, is not named.
        if receipt.review_cause in NAMED_CAUSES or receipt._why_not_apply_to(
            named, receipt.suggested_partner_id
        ):
            receipt.write(receipt._review_document_values(named))
