/** @odoo-module **/

import { registry } from "@web/core/registry";
import { stepUtils } from "@web_tour/tour_service/tour_utils";

// A shop's cashier (a plain M-PESA user of the Westlands branch) opens the M-PESA
// receipts from the menu: the shop's payment is there, the other shop's is not.
registry.category("web_tour.tours").add("mpesa_branch_receipts", {
    steps: () => [
        ...stepUtils.goToAppSteps("account.menu_finance", "Open the app of the M-PESA menu"),
        {
            content: "Open the M-PESA menu",
            trigger: ".o_main_navbar button[data-menu-xmlid='mpesa_payment.menu_mpesa_root']",
            run: "click",
        },
        {
            content: "Open the receipts",
            trigger: ".dropdown-item[data-menu-xmlid='mpesa_payment.menu_mpesa_receipt']",
            run: "click",
        },
        {
            content: "The Westlands payment is listed",
            trigger: ".o_list_view .o_data_row:contains('SKLWEST001')",
        },
        {
            content: "and it is the only one: Mombasa Road's is not",
            trigger:
                ".o_list_view:not(:has(.o_data_row:contains('SKLCOAST01'))) .o_data_row:contains('SKLWEST001')",
        },
        {
            content: "Open it",
            trigger: ".o_data_row:contains('SKLWEST001') .o_data_cell[name='name']",
            run: "click",
        },
        {
            content: "Its form shows the shop's branch",
            trigger: ".o_form_view .o_field_widget[name='branch_id']:contains('Westlands Shop')",
        },
    ],
});
