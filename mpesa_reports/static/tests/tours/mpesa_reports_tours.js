/** @odoo-module **/

import { registry } from "@web/core/registry";

// Receipt codes the Python tests give the emulator (see tests/test_tours.py).
const UNMATCHED_CODE = "QTOURUNM01";
const PORTAL_CODE = "QTOURPRT01";

function dashboardLoaded() {
    return {
        content: "The dashboard loaded its figures",
        trigger: ".o_mpesa_dashboard .o_mpesa_figures[data-loaded='1']",
    };
}

function onlyRow(code) {
    return {
        content: `The list shows ${code}, and only it`,
        trigger: `.o_list_view .o_data_row:contains(${code})`,
        run() {
            const rows = document.querySelectorAll(".o_list_view .o_data_row");
            if (rows.length !== 1) {
                throw new Error(`expected 1 receipt in the list, got ${rows.length}`);
            }
        },
    };
}

function backToDashboard() {
    return [
        {
            content: "Back to the dashboard",
            trigger: ".o_breadcrumb .breadcrumb-item a:contains(M-PESA Dashboard)",
            run: "click",
        },
        dashboardLoaded(),
    ];
}

registry.category("web_tour.tours").add("mpesa_reports_dashboard_drilldown", {
    steps: () => [
        dashboardLoaded(),
        {
            content: "Today's money: one payment of KES 1,234",
            trigger:
                ".o_mpesa_figure[data-name='received'] .o_mpesa_figure_amount:contains(1,234.00)",
        },
        {
            content: "One unmatched receipt",
            trigger: ".o_mpesa_figure[data-name='unmatched'] .o_mpesa_figure_count:contains(1 to reconcile)",
        },
        {
            content: "Open the unmatched receipts",
            trigger: ".o_mpesa_figure[data-name='unmatched']",
            run: "click",
        },
        {
            content: "The list is named after the figure",
            trigger: ".o_breadcrumb .active:contains(Unmatched M-PESA Receipts)",
        },
        onlyRow(UNMATCHED_CODE),
        ...backToDashboard(),
        {
            content: "Open today's payments from the total",
            trigger: ".o_mpesa_figure[data-name='received']",
            run: "click",
        },
        onlyRow(UNMATCHED_CODE),
        ...backToDashboard(),
        {
            content: "Open the payments of the Solar Lamp",
            trigger: ".o_mpesa_by_product a.o_mpesa_line:contains(Solar Lamp)",
            run: "click",
        },
        onlyRow(UNMATCHED_CODE),
        ...backToDashboard(),
        {
            content: "Switch to this month",
            trigger: ".o_mpesa_preset[data-preset='month']",
            run: "click",
        },
        {
            content: "The month is shown",
            trigger: ".o_mpesa_preset[data-preset='month'].active",
        },
        dashboardLoaded(),
    ],
});

registry.category("web_tour.tours").add("mpesa_reports_portal_receipt", {
    steps: () => [
        {
            content: "My M-PESA payments is on the portal home",
            trigger: "a[href='/my/mpesa']:contains(My M-PESA payments)",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "The payment is listed with its status",
            trigger: `tr.o_mpesa_receipt_row[data-receipt='${PORTAL_CODE}']:contains(Paid)`,
        },
        {
            content: "Its receipt downloads as a PDF",
            trigger: `tr[data-receipt='${PORTAL_CODE}'] a.o_mpesa_download[href$='/receipt']`,
            async run() {
                const href = this.anchor.getAttribute("href");
                if (!/^\/my\/mpesa\/\d+\/receipt$/.test(href)) {
                    throw new Error(`unexpected receipt link ${href}`);
                }
                const response = await fetch(href);
                const type = response.headers.get("Content-Type");
                if (response.status !== 200 || type !== "application/pdf") {
                    throw new Error(`receipt download: ${response.status} ${type}`);
                }
                const head = new Uint8Array(await response.arrayBuffer()).slice(0, 4);
                if (String.fromCharCode(...head) !== "%PDF") {
                    throw new Error("the receipt is not a PDF");
                }
                document.body.classList.add("o_mpesa_receipt_downloaded");
            },
        },
        {
            content: "The download was checked",
            trigger: "body.o_mpesa_receipt_downloaded",
        },
    ],
});
