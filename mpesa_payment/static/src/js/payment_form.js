/** @odoo-module **/

import { _t } from "@web/core/l10n/translation";
import { ConnectionLostError, rpc, RPCError } from "@web/core/network/rpc";
import paymentForm from "@payment/js/payment_form";
import paymentPostProcessing from "@payment/js/post_processing";

// The page the customer paid from, to come back to after a failed prompt.
const RETRY_URL_KEY = "mpesa_payment.retry_url";
// Outcomes of a prompt the customer must see (and can retry) rather than be sent away from.
const FAILED_STATES = new Set(["cancel", "error"]);

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
            try {
                window.sessionStorage.setItem(
                    RETRY_URL_KEY,
                    window.location.pathname + window.location.search
                );
            } catch {
                // Storage unavailable (private mode): the retry link falls back to the document.
            }
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

paymentPostProcessing.include({
    /**
     * Keep the customer on the status page when the prompt failed, with the reason and a way to
     * try again, instead of sending them to the document where the reason is not shown.
     *
     * @override
     */
    async start() {
        if (this._isMpesa() && FAILED_STATES.has(this.el.dataset.txState)) {
            this._setMpesaRetryUrl();
        }
        return this._super(...arguments);
    },

    /**
     * @override
     */
    _poll() {
        if (!this._isMpesa()) {
            return this._super(...arguments);
        }
        this._updateTimeout();
        setTimeout(async () => {
            let values;
            try {
                values = await rpc("/payment/status/poll", { csrf_token: odoo.csrf_token });
            } catch (error) {
                const isRetryError = error instanceof RPCError && error.data.message === "retry";
                if (isRetryError || error instanceof ConnectionLostError) {
                    this._poll();
                }
                if (!isRetryError) {
                    throw error;
                }
                return;
            }
            const { provider_code: providerCode, state, landing_route: landingRoute } = values;
            if (FAILED_STATES.has(state)) {
                // Render the failure (reason and retry link) unless it is already shown.
                if (this.el.dataset.txState !== state) {
                    window.location.reload();
                } else if (values.mpesa_rechecking) {
                    // Unreachable, yet M-PESA may still complete it: show the success if so.
                    this._poll();
                }
            } else if (this._getFinalStates(providerCode).has(state)) {
                window.location = landingRoute;
            } else {
                this._poll();
            }
        }, this.timeout);
    },

    _isMpesa() {
        return this.el.dataset.providerCode === "mpesa";
    },

    _setMpesaRetryUrl() {
        let url = null;
        try {
            url = window.sessionStorage.getItem(RETRY_URL_KEY);
        } catch {
            return;
        }
        // Only a path of this site: never follow a stored absolute or protocol-relative URL.
        if (!url || !url.startsWith("/") || url.startsWith("//")) {
            return;
        }
        for (const link of this.el.querySelectorAll("a.o_mpesa_retry")) {
            link.setAttribute("href", url);
        }
    },
});
