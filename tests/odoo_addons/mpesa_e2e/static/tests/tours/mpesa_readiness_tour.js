/** @odoo-module **/

import { registry } from "@web/core/registry";

const CHECKLIST = ".o_mpesa_readiness";

/**
 * An admin opens the M-PESA provider form, reads the go-live checklist, finds the
 * callback IP allow-list red, types Safaricom's addresses and sees the item turn
 * green; then asks Daraja (Run checks) and sees the consumer key and secret green.
 */
registry.category("web_tour.tours").add("mpesa_e2e_readiness_checklist", {
    steps: () => [
        {
            content: "Open the go-live checklist of the provider",
            trigger: '.o_notebook a.nav-link[name="mpesa_readiness"]',
            run: "click",
        },
        {
            content: "The callback IP allow-list is red, with what fixes it",
            trigger:
                `${CHECKLIST} li[data-item="callback_ips"][data-state="missing"]` +
                ':contains("callbacks are accepted from any sender"):contains("Fix: Callback IP Allow-list")',
        },
        {
            content: "Daraja was not asked yet: the consumer key and secret are not checked",
            trigger: `${CHECKLIST} li[data-item="oauth"][data-state="unchecked"]`,
        },
        {
            content: "Go to the credentials",
            trigger: '.o_notebook a.nav-link[name="credentials"]',
            run: "click",
        },
        {
            // Safaricom's network, and the emulator's address: here it plays Safaricom.
            content: "Type the addresses callbacks come from",
            trigger: 'div[name="mpesa_callback_ips"] input',
            run: "edit 196.201.214.0/24, 127.0.0.1",
        },
        {
            content: "Back to the checklist",
            trigger: '.o_notebook a.nav-link[name="mpesa_readiness"]',
            run: "click",
        },
        {
            content: "The allow-list item turned green at once",
            trigger:
                `${CHECKLIST} li[data-item="callback_ips"][data-state="ok"]` +
                ':contains("2 address range(s) only") .fa-check-circle.text-success',
        },
        {
            content: "Save",
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            content: "Saved",
            trigger: ".o_form_saved",
        },
        {
            content: "Ask Daraja",
            trigger: 'button[name="action_mpesa_run_checks"]',
            run: "click",
        },
        {
            content: "Safaricom accepted the consumer key and secret: green",
            trigger:
                `${CHECKLIST} li[data-item="oauth"][data-state="ok"]` +
                ':contains("Safaricom gives an access token")',
        },
        {
            content: "The allow-list stays green once saved",
            trigger: `${CHECKLIST} li[data-item="callback_ips"][data-state="ok"]`,
        },
    ],
});
