from odoo.tests import HttpCase, tagged


@tagged("post_install", "-at_install", "mpesa_skip_probe")
class TestProbe(HttpCase):
    def test_skipped_on_purpose(self):
        self.skipTest("skipped on purpose by the summary probe")

    def test_browser(self):
        """A browser test: passes with Chromium, is skipped by Odoo without it."""
        self.browser_js("/web/health", "console.log('test successful')", login=None)
