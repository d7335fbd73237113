/** @odoo-module **/

import { registry } from "@web/core/registry";

/**
 * Issue #12: an accountant refunds part of an M-PESA payment from the payment form
 * (Odoo's Refund button); the wizard says how M-PESA sends it (B2C), to which phone,
 * and which credit note it pays; once M-PESA's result is in, the credit note is paid.
 */
registry.category("web_tour.tours").add("mpesa_e2e_partial_refund", {
    steps: () => [
        {
            content: "Refund the M-PESA payment",
            trigger: ".o_form_view button[name='action_refund_wizard']",
            run: "click",
        },
        {
            content: "Refund part of it",
            trigger: ".modal div[name='amount_to_refund'] input",
            run: "edit 300 && press Tab",
        },
        {
            content: "The confirmation says how much goes back, how and to which phone",
            trigger: ".modal .alert:contains('Send KES 300.00 by B2C to 254708374149')",
        },
        {
            content: "The refund pays the invoice's credit note",
            trigger: ".modal div[name='mpesa_credit_note_id'] input:value(/RINV/)",
        },
        {
            content: "Confirm",
            trigger: ".modal button[name='action_refund']",
            run: "click",
        },
        {
            content: "The wizard closes",
            trigger: "body:not(:has(.modal))",
        },
        {
            content: "Open the credit notes",
            trigger: ".o_form_view",
            run: () => {
                window.location.href = "/odoo/credit-notes";
            },
            expectUnloadPage: true,
        },
        {
            content: "The credit note is paid by the refund M-PESA confirmed",
            trigger:
                ".o_list_renderer .o_data_row:contains('RINV/') " +
                "td[name='status_in_payment']:contains('Paid'):not(:contains('Not Paid'))",
            timeout: 20000,
        },
    ],
});
