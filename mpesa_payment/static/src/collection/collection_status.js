import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { standardFieldProps } from "@web/views/fields/standard_field_props";
import { Component, onWillDestroy, useEffect } from "@odoo/owl";

// How often the dialog asks the server whether the customer answered.
const POLL_MS = 2000;
const LABELS = {
    draft: _t("To send"),
    pending: _t("Waiting for the customer"),
    done: _t("Paid"),
    failed: _t("Failed"),
    exception: _t("In exception"),
};
const COLORS = {
    draft: "text-bg-300",
    pending: "text-bg-info",
    done: "text-bg-success",
    failed: "text-bg-danger",
    exception: "text-bg-warning",
};

/**
 * The state of a staff payment request, followed live: while the prompt waits on the
 * customer's phone, the server is asked every two seconds (mpesa_poll, which books
 * a confirmed payment) and the record reloaded, until it is paid, failed or in
 * exception (the callback changes it on the server).
 */
export class MpesaCollectionStatus extends Component {
    static template = "mpesa_payment.CollectionStatus";
    static props = { ...standardFieldProps };

    setup() {
        this.orm = useService("orm");
        let timer = null;
        const stop = () => {
            clearInterval(timer);
            timer = null;
        };
        useEffect(
            (state) => {
                if (state === "pending" && !timer) {
                    timer = setInterval(() => this.poll(), POLL_MS);
                } else if (state !== "pending") {
                    stop();
                }
                if (state === "done" && this.props.record.resId) {
                    // Paid between two polls: book it now rather than by the job.
                    this.orm.call("mpesa.collection", "mpesa_poll", [[this.props.record.resId]]);
                }
            },
            () => [this.state]
        );
        onWillDestroy(stop);
    }

    async poll() {
        const { resId } = this.props.record;
        await this.orm.call("mpesa.collection", "mpesa_poll", [[resId]]);
        await this.props.record.load();
    }

    get state() {
        return this.props.record.data[this.props.name];
    }

    get label() {
        return LABELS[this.state] || this.state;
    }

    get color() {
        return COLORS[this.state] || "text-bg-300";
    }
}

registry.category("fields").add("mpesa_collection_status", {
    component: MpesaCollectionStatus,
    supportedTypes: ["selection"],
});
