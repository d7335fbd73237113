/** @odoo-module **/

import { _t } from "@web/core/l10n/translation";
import { rpc, RPCError } from "@web/core/network/rpc";
import paymentForm from "@payment/js/payment_form";

paymentForm.include({
    /**
     * M-PESA is a direct flow: the inline form only asks for the paying phone.
     *
     * @override
     */
    async _prepareInlineForm(providerId, providerCode, paymentOptionId, paymentMethodCode, flow) {
        if (providerCode !== "mpesa") {
            return this._super(...arguments);
        }
        this._setPaymentFlow("direct");
    },

    /**
     * Send the STK push through our route, then let the status page poll.
     *
     * @override
     */
    async _processDirectFlow(providerCode, paymentOptionId, paymentMethodCode, processingValues) {
        if (providerCode !== "mpesa") {
            return this._super(...arguments);
        }
        const radio = document.querySelector('input[name="o_payment_radio"]:checked');
        const inlineForm = this._getInlineForm(radio);
        const phoneInput = inlineForm?.querySelector('input[name="o_mpesa_phone"]');
        try {
            await rpc("/payment/mpesa/stk_push", {
                reference: processingValues.reference,
                access_token: processingValues.mpesa_access_token,
                phone: phoneInput ? phoneInput.value : "",
            });
            window.location = "/payment/status";
        } catch (error) {
            if (error instanceof RPCError) {
                this._displayErrorDialog(_t("M-PESA payment request failed"), error.data.message);
                this._enableButton();
            } else {
                throw error;
            }
        }
    },
});
