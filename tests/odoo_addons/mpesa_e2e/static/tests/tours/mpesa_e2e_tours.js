/** @odoo-module **/

import { registry } from "@web/core/registry";

const PHONE = "0708374149";
const PHONE_CANCELS = "0700001032";
// The emulator's customer whose phone cannot be reached (1037), then pays after all.
const PHONE_UNREACHABLE_THEN_PAYS = "0700001038";
const CANCEL_REASON = "You cancelled the payment request on your phone.";

/**
 * Select M-PESA (the only option: already selected) and send the prompt to `phone`.
 *
 * @param {string} phone
 * @param {string} scope - a selector narrowing the payment form (e.g. a modal)
 */
function payWithMpesa(phone, scope = "") {
    return [
        {
            content: "Pick M-PESA",
            trigger: `${scope} input[name="o_payment_radio"][data-provider-code="mpesa"]`,
            run: "click",
        },
        {
            content: "M-PESA is selected",
            trigger: `${scope} input[name="o_payment_radio"][data-provider-code="mpesa"]:checked`,
        },
        {
            content: "Type the paying phone",
            trigger: `${scope} input[name="o_mpesa_phone"]:visible`,
            run: `edit ${phone}`,
        },
        {
            content: "Pay",
            trigger: `${scope} button[name="o_payment_submit_button"]:enabled`,
            run: "click",
            expectUnloadPage: true,
        },
    ];
}

/**
 * The status page while the prompt waits on the phone, then what it leads to.
 */
function statusPageWaitsForPhone() {
    return [
        {
            content: "The status page tells the customer to check the phone",
            trigger:
                'div[name="o_payment_status"][data-provider-code="mpesa"][data-tx-state="pending"]' +
                ':contains("Check your phone"):contains("Unlock your phone and enter your M-PESA PIN")',
            timeout: 20000,
        },
    ];
}

function shopConfirmation() {
    return [
        {
            content: "The status page polled until the callback came, then led to the order",
            trigger: '.oe_website_sale_tx_status:contains("Your M-PESA payment was received")',
            timeout: 30000,
        },
        {
            content: "The order is confirmed",
            trigger: "h5:has(i.fa-check-circle) span:contains(/^S\\d+/)",
        },
    ];
}

function shopToPayment(checkoutAsPublic) {
    const steps = [
        {
            content: "Search the KES product",
            trigger: 'form input[name="search"]',
            run: "edit Kikoi",
        },
        {
            content: "Search",
            trigger: 'form:has(input[name="search"]) .oe_search_button',
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "Open the product",
            trigger: '.oe_product_cart a:contains("Kikoi Beach Wrap")',
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "The price is in Kenyan shillings",
            trigger: '#product_details .product_price:contains("KSh"):contains("1,500.00")',
        },
        {
            content: "Add to cart",
            trigger: "#add_to_cart",
            run: "click",
        },
        {
            content: "Go to the cart",
            trigger: "a sup.my_cart_quantity:contains(/^1$/)",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "Checkout",
            trigger: 'a[href^="/shop/checkout"]',
            run: "click",
            expectUnloadPage: true,
        },
    ];
    if (checkoutAsPublic) {
        steps.push(
            {
                content: "Kenyan address",
                trigger: "select#o_country_id",
                run: "selectByLabel Kenya",
            },
            ...[
                ["name", "Otieno Odhiambo"],
                ["email", "otieno@example.com"],
                ["phone", "0722000000"],
                ["street", "Kenyatta Avenue 1"],
                ["city", "Nairobi"],
                ["zip", "00100"],
            ].map(([field, value]) => ({
                content: `Address: ${field}`,
                trigger: `form.checkout_autoformat input[name="${field}"]`,
                run: `edit ${value}`,
            })),
            {
                content: "Continue checkout",
                trigger: "#save_address",
                run: "click",
                expectUnloadPage: true,
            }
        );
    }
    steps.push({
        content: "The payment step shows the total in KES",
        trigger: '#order_total .oe_currency_value:contains("1,500.00")',
    });
    return steps;
}

registry.category("web_tour.tours").add("mpesa_e2e_shop_checkout", {
    url: "/shop",
    steps: () => [
        ...shopToPayment(true),
        ...payWithMpesa(PHONE),
        ...statusPageWaitsForPhone(),
        ...shopConfirmation(),
    ],
});

registry.category("web_tour.tours").add("mpesa_e2e_shop_declined_then_retry", {
    url: "/shop",
    steps: () => [
        ...shopToPayment(false),
        ...payWithMpesa(PHONE_CANCELS),
        ...statusPageWaitsForPhone(),
        {
            content: "The status page shows why the payment failed",
            trigger:
                'div[name="o_payment_status"][data-tx-state="cancel"]' +
                `:contains("The M-PESA payment did not go through"):contains("${CANCEL_REASON}")`,
            timeout: 30000,
        },
        {
            content: "The customer goes back to try again",
            trigger: 'a.o_mpesa_retry[href^="/shop/payment"]',
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "Back on the payment step with the same cart",
            trigger: '#order_total .oe_currency_value:contains("1,500.00")',
        },
        ...payWithMpesa(PHONE),
        ...statusPageWaitsForPhone(),
        ...shopConfirmation(),
    ],
});

registry.category("web_tour.tours").add("mpesa_e2e_portal_invoice", {
    steps: () => [
        {
            content: "The invoice is due, in shillings",
            trigger: '.o_portal_sidebar h2:contains("2,500.00"):contains("KSh")',
        },
        {
            content: "Pay now",
            trigger: 'a[data-bs-target="#pay_with"]:contains("Pay Now")',
            run: "click",
        },
        ...payWithMpesa(PHONE, "#pay_with"),
        ...statusPageWaitsForPhone(),
        {
            content: "Back on the invoice, which is now paid",
            trigger: ".o_portal_sidebar .badge.text-bg-success:contains('Paid')",
            timeout: 30000,
        },
        {
            content: "And shows the M-PESA receipt of the payment",
            trigger:
                '.o_account_payment_tx_status:contains("Your M-PESA payment was received")' +
                ':contains("Paid by M-PESA, receipt")',
        },
        {
            content: "Nothing left to pay",
            trigger: 'body:not(:has(a[data-bs-target="#pay_with"]:contains("Pay Now")))',
        },
    ],
});

// 1037: the prompt did not reach the phone, yet M-PESA may still complete it.
registry.category("web_tour.tours").add("mpesa_e2e_portal_invoice_paid_late", {
    steps: () => [
        {
            content: "Pay now",
            trigger: 'a[data-bs-target="#pay_with"]:contains("Pay Now")',
            run: "click",
        },
        ...payWithMpesa(PHONE_UNREACHABLE_THEN_PAYS, "#pay_with"),
        ...statusPageWaitsForPhone(),
        {
            content: "The status page shows the failure, and that M-PESA is still checking",
            trigger:
                'div[name="o_payment_status"][data-tx-state="cancel"]' +
                ':contains("The M-PESA payment did not go through")' +
                ':contains("Your phone could not be reached")' +
                ':has(.o_mpesa_rechecking:contains("M-PESA is still checking"))',
            timeout: 30000,
        },
        {
            content: "It kept polling: the late success leads back to the invoice, paid",
            trigger: ".o_portal_sidebar .badge.text-bg-success:contains('Paid')",
            timeout: 60000,
        },
    ],
});

// Issue 13: a salesperson asks the customer at the counter to pay an invoice.
registry.category("web_tour.tours").add("mpesa_e2e_staff_collection", {
    steps: () => [
        {
            content: "Request the payment from the invoice",
            trigger: 'button[name="action_mpesa_request_payment"]',
            run: "click",
        },
        {
            content: "The dialog has the customer's phone and the amount due",
            trigger: `.modal div[name="phone"] input:value("${PHONE}")`,
        },
        {
            content: "Send the prompt to the customer's phone",
            trigger: '.modal button[name="action_send"]',
            run: "click",
        },
        {
            content: "The dialog follows the prompt, then shows it paid",
            trigger: '.modal .o_mpesa_collection_status[data-state="done"]:contains("Paid")',
            timeout: 30000,
        },
        {
            content: "With the M-PESA receipt code",
            trigger: '.modal div[name="receipt_code"]:not(:empty)',
        },
        {
            content: "Close the dialog",
            trigger: '.modal button:contains("Close")',
            run: "click",
        },
        {
            content: "Open My Collections",
            trigger: "body:not(:has(.modal))",
            run: () => {
                window.location.href = "/odoo/action-mpesa_payment.action_mpesa_collection";
            },
            expectUnloadPage: true,
        },
        {
            // The list is the action's first view. Clicking its switcher loaded the
            // groups again, and that reload could fold the group the next step opens.
            content: "The list is shown",
            trigger: ".o_switch_view.o_list.active",
        },
        {
            content: "Grouped by status: open the paid ones",
            trigger: '.o_group_header:contains("Paid (1)")',
            run: "click",
        },
        {
            content: "The request is there, paid",
            trigger: '.o_data_row:contains("INV/"):has(.badge:contains("Paid"))',
        },
    ],
});
