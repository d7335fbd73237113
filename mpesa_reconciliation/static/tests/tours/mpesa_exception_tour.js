/** @odoo-module **/

import { registry } from "@web/core/registry";

// An accountant works the exception queue: a paybill payment whose account number
// names nothing, matched to the customer's invoice from the exception itself.
registry.category("web_tour.tours").add("mpesa_exception_find_matches", {
    steps: () => [
        {
            content: "Open the payment whose account number names nothing",
            trigger:
                ".o_data_row:contains('Reference Unknown') td[name='receipt_code']:contains('SKLEXC0001')",
            run: "click",
        },
        {
            content: "Ask for matches now rather than at the next matching run",
            trigger: "button[name='action_find_matches']",
            run: "click",
        },
        {
            content: "The customer's invoice comes first: whose, what it asks, why",
            trigger:
                ".o_mpesa_suggestions .o_data_row:first-child:contains('INV/'):contains('Norbert Buyer'):contains('1,000.00'):contains('amount exact')",
        },
        {
            content: "Accept it",
            trigger: ".o_mpesa_suggestions .o_data_row:first-child button.o_mpesa_accept",
            run: "click",
        },
        {
            content: "The exception is resolved: allocated to the invoice",
            trigger: ".o_statusbar_status button.o_arrow_button_current:contains('Resolved')",
        },
        {
            content: "and says how",
            trigger: ".o_field_widget[name='resolution']:contains('Allocated')",
        },
    ],
});
