from odoo import models

from odoo.addons.mpesa_payment.models.payment_provider_readiness import MISSING


class PaymentProvider(models.Model):
    # One file per feature: the go-live checklist's pull item.
    _inherit = "payment.provider"  # pylint: disable=consider-merging-classes-inherited

    def _mpesa_readiness_items(self):
        """The pull job is only ready once the shortcode is registered for Pull
        Transactions: until then the job skips it."""
        items = super()._mpesa_readiness_items()
        item = self._mpesa_ready_crons(
            "pull_job",
            self.env._("Pull job (payments whose callback never came)"),
            ("mpesa_reconciliation.cron_mpesa_pull",),
        )
        if item["state"] != MISSING and not self.mpesa_pull_registered:
            item.update(
                state=MISSING,
                sentence=self.env._(
                    "The shortcode is not registered for Pull Transactions: the job "
                    "skips it."
                ),
                fix=self.env._("Nominated Number, then Register for Pull Transactions"),
            )
        return [*items, item]
