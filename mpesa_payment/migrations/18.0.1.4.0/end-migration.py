"""Before 18.0.1.4.0 a paybill payment made while the customer's prompt for the same
document was open waited on that prompt, and stayed there when the prompt then
failed (declined, timed out): the receipt 'received', nothing applied, the invoice
due, no exception. Since then a failing prompt releases such money to what its
account number names (mpesa.receipt._mpesa_release_from_push). Release what the old
version left waiting on prompts that have failed since.

An end- script: the money path it runs (statement lines, reconciliation) belongs to
mpesa_reconciliation as well, whose fields and overrides must be loaded."""

import logging

from odoo import SUPERUSER_ID, api

_logger = logging.getLogger(__name__)


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    stranded = env["mpesa.receipt"].search(
        [
            ("state", "=", "received"),
            ("application_ids", "=", False),
            ("transaction_id.provider_code", "=", "mpesa"),
            ("transaction_id.state", "in", ("cancel", "error")),
        ]
    )
    for receipt in stranded:
        if receipt._mpesa_release_from_push(receipt.transaction_id):
            _logger.info(
                "M-PESA receipt %s released from its failed prompt", receipt.name
            )
