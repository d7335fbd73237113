"""The README's pictures, taken from the running demo with headless Chromium.

    ./setup/run.sh                         # in another terminal: the demo
    .venv/bin/python setup/screenshots.py  # writes docs/*.png

As the accountant on a laptop-sized screen: the reconciliation screen with the ranked
M-PESA suggestions of a waiting payment, the exception queue, the analysis and the
dashboard; then the customer flow on a phone-sized screen (an invoice, Pay Now, M-PESA,
the phone number, the prompt approved on the emulator's virtual phone, the paid invoice
with its receipt code). Each step waits for what the picture must show and fails if
it does not come: the script is also a check that these screens have figures.

It pays one new invoice of the demo customer Wanjiku Kamau (made for the purpose).
Options: --odoo URL (http://localhost:8069), --phone URL (http://localhost:8070),
--db NAME (mpesa_demo), --out DIR (docs).
"""

import argparse
import base64
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import websocket
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "setup"))

from demo_history import Odoo

PHONE_SIZE = (390, 844)  # a common phone, in CSS pixels
LAPTOP_SIZE = (1366, 768)
CUSTOMER_PHONE = "0799 123 456"  # a number the replayed history did not prompt


class ScreenshotError(RuntimeError):
    pass


class Chromium:
    """Headless Chromium driven over the DevTools protocol (one page)."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="mpesa-shots-")
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        if not binary:
            raise ScreenshotError("Chromium is not installed (setup/install.sh)")
        self.process = subprocess.Popen(
            [
                binary,
                "--headless=new",
                "--no-sandbox",  # root in a container has no user namespace
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile, "DevToolsActivePort")
        self._wait(port_file.exists, "Chromium to start")
        port = port_file.read_text().split()[0]
        pages = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(p for p in pages if p["type"] == "page")
        self.ws = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True
        )
        self._id = 0

    def _wait(self, predicate, what, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise ScreenshotError(f"timed out waiting for {what}")

    def send(self, method, **params):
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise ScreenshotError(f"{method}: {message['error']}")
                return message["result"]

    def size(self, width, height, mobile):
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=mobile,
        )

    def cookie(self, url, name, value):
        self.send("Network.setCookie", url=url, name=name, value=value)

    def clear_cookies(self):
        self.send("Network.clearBrowserCookies")

    def js(self, expression):
        result = self.send(
            "Runtime.evaluate",
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            raise ScreenshotError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression, what, timeout=30):
        self._wait(lambda: self.js(f"!!({expression})"), what, timeout)

    def wait_for_text(self, selector, text, timeout=30):
        expression = (
            f"[...document.querySelectorAll({json.dumps(selector)})]"
            f".some(e => e.offsetParent !== null && "
            f"e.textContent.includes({json.dumps(text)}))"
        )
        self.wait_for(expression, f"{selector} showing {text!r}", timeout)

    def goto(self, url):
        self.send("Page.navigate", url=url)
        time.sleep(0.3)
        self.wait_for("document.readyState === 'complete'", f"{url} to load")

    def click(self, selector):
        self.wait_for(
            f"document.querySelector({json.dumps(selector)})", f"{selector} to click"
        )
        self.js(f"document.querySelector({json.dumps(selector)}).click()")

    def type(self, selector, text):
        """Type as a person does: focus the field, then keystrokes (events fire)."""
        element = f"document.querySelector({json.dumps(selector)})"
        self.wait_for(element, f"{selector} to type in")
        self.js(f"{element}.focus(); {element}.value = ''")
        self.send("Input.insertText", text=text)

    def shot(self, path):
        """A PNG of the viewport, reduced to a palette (small files for the README)."""
        time.sleep(0.5)  # let animations (modals, fades) settle
        data = base64.b64decode(
            self.send("Page.captureScreenshot", format="png")["data"]
        )
        image = Image.open(io.BytesIO(data)).convert("RGB")
        image = image.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
        image.save(path, optimize=True)
        print(f"[screenshots] {path} ({path.stat().st_size // 1024} KB)")

    def close(self):
        self.ws.close()
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)


def customer_flow(browser, odoo, phone_url, out):
    """Wanjiku pays a new invoice from her phone."""
    invoice_id = odoo(
        "account.move",
        "create",
        {
            "move_type": "out_invoice",
            "partner_id": odoo.ref("mpesa_demo.customer_wanjiku"),
            "invoice_line_ids": [
                (0, 0, {"product_id": variant(odoo, "solar_lantern"), "quantity": 1}),
                (0, 0, {"product_id": variant(odoo, "maize_flour"), "quantity": 2}),
            ],
        },
    )
    odoo("account.move", "action_post", [invoice_id])
    portal_url = odoo.url + odoo("account.move", "get_portal_url", [invoice_id])
    browser.size(*PHONE_SIZE, mobile=True)
    browser.goto(portal_url)
    browser.wait_for_text('a[data-bs-target="#pay_with"]', "Pay Now")
    browser.shot(out / "customer-1-invoice.png")
    open_payment_dialog(browser)
    browser.click('#pay_with input[name="o_payment_radio"][data-provider-code="mpesa"]')
    browser.wait_for(
        "document.querySelector('#pay_with input[name=\"o_mpesa_phone\"]')"
        ".offsetParent",
        "the M-PESA phone field",
    )
    browser.type('#pay_with input[name="o_mpesa_phone"]', CUSTOMER_PHONE)
    browser.shot(out / "customer-2-mpesa.png")
    browser.click('#pay_with button[name="o_payment_submit_button"]')
    browser.wait_for_text('div[name="o_payment_status"]', "Check your phone")
    browser.shot(out / "customer-3-check-phone.png")
    page = browser.js("location.href")

    browser.goto(phone_url + "/phone")
    browser.wait_for("document.querySelector('button.approve')", "the prompt")
    browser.shot(out / "customer-4-virtual-phone.png")
    browser.click("button.approve")
    browser.goto(page)
    browser.wait_for_text(".o_account_payment_tx_status", "Paid by M-PESA, receipt", 60)
    browser.js(
        "document.querySelector('.o_account_payment_tx_status').scrollIntoView()"
    )
    browser.shot(out / "customer-5-paid.png")


def open_payment_dialog(browser):
    """Pay Now, once the page's scripts listen (a click before is lost)."""
    shown = "document.querySelector('#pay_with.show')"
    for _attempt in range(5):
        browser.click('a[data-bs-target="#pay_with"]')
        try:
            browser.wait_for(shown, "the payment dialog", timeout=6)
            return
        except ScreenshotError:
            continue
    raise ScreenshotError("Pay Now does not open the payment dialog")


def variant(odoo, product):
    template = odoo.ref(f"mpesa_demo.product_{product}")
    return odoo.read_one("product.template", template, ["product_variant_id"])[
        "product_variant_id"
    ][0]


def accountant_screens(browser, odoo, out):
    browser.size(*LAPTOP_SIZE, mobile=False)
    browser.cookie(odoo.url, "session_id", odoo.session.cookies["session_id"])
    reconciliation(browser, odoo, out)
    exception_queue(browser, odoo, out)
    analysis(browser, odoo, out)
    browser.goto(f"{odoo.url}/odoo/mpesa-dashboard")
    browser.wait_for(
        "document.querySelector(\".o_mpesa_figures[data-loaded='1'] "
        ".o_mpesa_figure[data-name='unmatched']\")",
        "the dashboard's figures",
    )
    browser.js(
        "[...document.querySelectorAll('button')]"
        ".find(b => b.textContent.trim() === 'This Month').click()"
    )
    time.sleep(1)
    browser.wait_for(
        "document.querySelector(\".o_mpesa_figures[data-loaded='1']\")",
        "this month's figures",
    )
    browser.shot(out / "dashboard.png")


def reconciliation(browser, odoo, out):
    """The M-PESA journal's waiting lines; one opened on its ranked suggestions."""
    suggestions = odoo(
        "mpesa.match.suggestion",
        "search_read",
        [("statement_line_id.is_reconciled", "=", False)],
        ["statement_line_id", "score"],
    )
    if not suggestions:
        raise ScreenshotError("no waiting M-PESA line has a suggestion")
    ranked = {}  # the line with the most candidates shows the ranking best
    for suggestion in suggestions:
        count, best = ranked.get(suggestion["statement_line_id"][0], (0, 0))
        ranked[suggestion["statement_line_id"][0]] = (
            count + 1,
            max(best, suggestion["score"]),
        )
    line_id = max(ranked, key=lambda line: (ranked[line], -line))
    line = odoo.read_one(
        "account.bank.statement.line", line_id, ["journal_id", "payment_ref"]
    )
    action = odoo.ref("account_reconcile_oca.action_bank_statement_line_reconcile")
    browser.goto(f"{odoo.url}/odoo/action-{action}?active_id={line['journal_id'][0]}")
    code = line["payment_ref"].split()[0]
    browser.wait_for_text(".o_kanban_record", code)
    browser.js(
        "[...document.querySelectorAll('.o_kanban_record')]"
        f".find(e => e.textContent.includes({json.dumps(code)})).click()"
    )
    browser.wait_for_text("a.nav-link", "M-PESA Suggestions")
    browser.js(
        "[...document.querySelectorAll('a.nav-link')]"
        ".find(e => e.textContent.includes('M-PESA Suggestions')).click()"
    )
    browser.wait_for(
        "document.querySelector('.o_mpesa_suggestions .o_data_row')",
        "the ranked suggestions",
    )
    browser.shot(out / "reconciliation.png")


def exception_queue(browser, odoo, out):
    action = odoo.ref("mpesa_reconciliation.action_mpesa_exception")
    browser.goto(f"{odoo.url}/odoo/action-{action}")
    browser.wait_for("document.querySelector('.o_data_row')", "the exception queue")
    # The open ones by default; without the filter, the resolved ones and how.
    browser.click(".o_searchview_facet .o_facet_remove")
    browser.wait_for_text(".o_data_row", "Allocated")
    browser.shot(out / "exceptions.png")


def analysis(browser, odoo, out):
    """The analysis (pivot by day and channel, this month by default): real rows,
    not the sample data Odoo shows on an empty view; pictured as its chart."""
    action = odoo.ref("mpesa_reports.action_mpesa_receipt_report")
    browser.goto(f"{odoo.url}/odoo/action-{action}")
    browser.wait_for(
        "document.querySelector('.o_pivot .o_pivot_cell_value') && "
        "!document.querySelector('.o_view_sample_data')",
        "the analysis's figures",
    )
    # All sixty days (not only this month), as a chart by day and channel.
    browser.js(
        "[...document.querySelectorAll('.o_searchview_facet')]"
        ".find(f => f.textContent.includes('Paid On'))"
        ".querySelector('.o_facet_remove').click()"
    )
    time.sleep(1)
    browser.click("button.o_switch_view.o_graph")
    browser.wait_for(
        "document.querySelector('.o_graph_renderer canvas') && "
        "!document.querySelector('.o_view_sample_data')",
        "the analysis chart",
    )
    browser.shot(out / "analysis.png")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--odoo", default="http://localhost:8069")
    parser.add_argument("--phone", default="http://localhost:8070")
    parser.add_argument("--db", default="mpesa_demo")
    parser.add_argument("--out", default=str(ROOT / "docs"))
    parser.add_argument(
        "--only", choices=["customer", "accountant"], help="one part of the pictures"
    )
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    odoo = Odoo(args.odoo, args.db)
    browser = Chromium()
    try:
        # The accountant first: the dashboard's M-PESA balance (the last query, at the
        # end of the demo build) then still agrees with the books; the customer's
        # payment comes after it.
        if args.only != "customer":
            accountant_screens(browser, odoo, out)
        if args.only != "accountant":
            browser.clear_cookies()  # the customer is not the logged-in accountant
            customer_flow(browser, odoo, args.phone, out)
    finally:
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
