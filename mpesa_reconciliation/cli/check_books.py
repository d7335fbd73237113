"""odoo-bin mpesa-check-books -c <config> -d <database>

Prints every difference between the M-PESA ledger, the journals and M-PESA's balance,
one per line with its receipt code; exits 1 if there is any.
"""

import argparse
import sys

import odoo
from odoo.cli import Command


class MpesaCheckBooks(Command):
    """Check that every M-PESA receipt is once in the ledger and once in the journal"""

    name = "mpesa-check-books"

    def run(self, cmdargs):
        """Override of `odoo.cli.Command` to run the books check on one database and
        exit 1 when the books and M-PESA disagree."""
        parser = argparse.ArgumentParser(prog=f"odoo-bin {self.name}")
        parser.add_argument("-c", "--config", dest="config")
        parser.add_argument("-d", "--database", dest="database", required=True)
        args, _rest = parser.parse_known_args(cmdargs)
        odoo.tools.config.parse_config(
            [*(["-c", args.config] if args.config else []), "-d", args.database]
        )
        registry = odoo.modules.registry.Registry(args.database)
        with registry.cursor() as cr:
            env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
            providers = env["payment.provider"].search([("code", "=", "mpesa")])
            differences = providers._mpesa_check_books()
        out = sys.stdout  # a report for the operator's terminal, not a log line
        for shortcode, code, problem in differences:
            out.write(f"{shortcode or '-'}\t{code or '-'}\t{problem}\n")
        out.write(f"{len(differences)} differences\n")
        sys.exit(1 if differences else 0)
