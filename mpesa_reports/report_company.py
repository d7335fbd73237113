"""The company a report or export is about. One home for the rule both the daily
summary and the accounting export follow: a company the user works in, by default
the current one."""

from odoo import fields


def report_company_field():
    """``company_id`` of a report wizard: required, one of the user's companies."""
    return fields.Many2one(
        "res.company",
        required=True,
        default=lambda self: self.env.company,
        domain=lambda self: [("id", "in", self.env.companies.ids)],
    )
