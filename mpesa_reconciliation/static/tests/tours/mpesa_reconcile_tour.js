/** @odoo-module **/

import { registry } from "@web/core/registry";

// An accountant opens the reconciliation screen, sees the ranked M-PESA suggestion with
// its reason, and accepts it with one click.
registry.category("web_tour.tours").add("mpesa_reconcile_suggestion", {
    steps: () => [
        {
            content: "Open the M-PESA statement line",
            trigger: ".o_kanban_record:contains('SKLTOUR001')",
            run: "click",
        },
        {
            content: "The M-PESA suggestions are shown",
            trigger: "a.nav-link:contains('M-PESA Suggestions')",
            run: "click",
        },
        {
            content: "The best suggestion is the invoice, whose and what it asks, with why",
            trigger:
                ".o_mpesa_suggestions .o_data_row:first-child:contains('INV/'):contains('Norbert Buyer'):contains('1,000.00'):contains('amount exact')",
        },
        {
            content: "Accept it",
            trigger: ".o_mpesa_suggestions .o_data_row:first-child button.o_mpesa_accept",
            run: "click",
        },
        {
            content: "The line is reconciled against the M-PESA payment",
            trigger: "button:contains('Unreconcile')",
        },
        {
            content: "and leaves the list of lines to reconcile",
            trigger: ".o_view_nocontent:contains('Nothing to reconcile')",
        },
    ],
});
