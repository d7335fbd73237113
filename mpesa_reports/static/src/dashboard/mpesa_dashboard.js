/** @odoo-module **/

import { Component, onWillStart, useState } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { deserializeDateTime, formatDateTime } from "@web/core/l10n/dates";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { formatMonetary } from "@web/views/fields/formatters";
import { useSetupAction } from "@web/search/action_hook";
import { Layout } from "@web/search/layout";

/**
 * The M-PESA dashboard finance opens every morning. Every figure comes from one
 * server call (mpesa.dashboard.get_figures) with the domain of the records behind
 * it: a click opens those records.
 */
export class MpesaDashboard extends Component {
    static template = "mpesa_reports.MpesaDashboard";
    static components = { Layout };
    static props = ["*"];

    setup() {
        this.orm = useService("orm");
        this.actionService = useService("action");
        const previous = this.props.state || {};
        this.state = useState({
            figures: null,
            loading: true,
            preset: previous.preset || "today",
            dateFrom: previous.dateFrom || false,
            dateTo: previous.dateTo || false,
        });
        this.presetLabels = [
            ["today", _t("Today")],
            ["week", _t("This Week")],
            ["month", _t("This Month")],
        ];
        this.breakdowns = [
            ["by_product", _t("By Product / Service")],
            ["by_branch", _t("By Branch")],
            ["by_team", _t("By Department")],
            ["by_channel", _t("By Channel")],
            ["by_shortcode", _t("By Paybill / Till")],
        ];
        useSetupAction({
            getLocalState: () => ({
                preset: this.state.preset,
                dateFrom: this.state.dateFrom,
                dateTo: this.state.dateTo,
            }),
        });
        onWillStart(() => this.load(this.state.dateFrom, this.state.dateTo));
    }

    get mainCards() {
        const f = this.state.figures;
        return [
            {
                name: "received",
                title: _t("Total Received"),
                figure: f.received,
                countLabel: _t("payments"),
                showAmount: true,
                cls: "border-success",
            },
            {
                name: "unmatched",
                title: _t("Unmatched Receipts (all dates)"),
                figure: f.unmatched,
                countLabel: _t("to reconcile"),
                showAmount: true,
                cls: f.unmatched.count ? "border-warning" : "",
            },
            {
                name: "exceptions",
                title: _t("Exceptions Awaiting Review (all dates)"),
                figure: f.exceptions.total,
                countLabel: _t("open"),
                showAmount: false,
                cls: f.exceptions.total.count ? "border-danger" : "",
            },
        ];
    }

    get transactionCards() {
        const tx = this.state.figures.transactions;
        return [
            ["done", _t("Successful"), "border-success"],
            ["pending", _t("Pending"), ""],
            ["failed", _t("Failed (cancelled or error)"), ""],
        ].map(([key, title, cls]) => ({
            name: `tx_${key}`,
            title,
            figure: tx[key],
            countLabel: _t("transactions"),
            showAmount: true,
            cls,
        }));
    }

    get display() {
        return { controlPanel: {} };
    }

    async load(dateFrom, dateTo) {
        this.state.loading = true;
        const figures = await this.orm.call("mpesa.dashboard", "get_figures", [
            dateFrom || false,
            dateTo || false,
        ]);
        this.state.figures = figures;
        this.state.dateFrom = figures.date_from;
        this.state.dateTo = figures.date_to;
        this.state.loading = false;
    }

    async selectPreset(preset) {
        const range = this.state.figures.presets[preset];
        this.state.preset = preset;
        await this.load(range[0], range[1]);
    }

    async onDateChange(which, ev) {
        const value = ev.target.value;
        if (!value) {
            return;
        }
        this.state.preset = "custom";
        if (which === "from") {
            await this.load(value, this.state.dateTo < value ? value : this.state.dateTo);
        } else {
            await this.load(this.state.dateFrom > value ? value : this.state.dateFrom, value);
        }
    }

    money(amount) {
        if (amount === false || amount === undefined || amount === null) {
            return "—";
        }
        return formatMonetary(amount, { currencyId: this.state.figures.currency_id });
    }

    datetime(value) {
        return value ? formatDateTime(deserializeDateTime(value)) : _t("never checked");
    }

    open(figure) {
        if (!figure || !figure.res_model) {
            return;
        }
        return this.actionService.doAction({
            type: "ir.actions.act_window",
            name: figure.name,
            res_model: figure.res_model,
            domain: figure.domain,
            views: [
                [false, "list"],
                [false, "form"],
            ],
            target: "current",
            context: { create: false },
        });
    }
}

registry.category("actions").add("mpesa_reports.dashboard", MpesaDashboard);
