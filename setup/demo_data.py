# Demo data for ./setup/run.sh, an `odoo shell` script (`env` is provided):
#     odoo shell -c .local/odoo.conf -d DB --no-http < setup/demo_data.py
# Idempotent: every record it makes carries an external id `mpesa_demo.<name>` and is looked up
# by it first, so running it again changes nothing.
#
# It runs twice while run.sh creates the demo database:
#   1. after `-i base`, before Accounting is installed: it makes the main company Kenyan
#      (country Kenya, currency KES) and stops;
#   2. after the M-PESA addons and website_sale are installed: everything else.
#
# Why the company is made Kenyan before Accounting is installed (read from Odoo 18.0 source):
# - account/demo/account_demo.xml loads the generic chart *with demo entries* on every company
#   whose country is the US or empty; base's demo makes the main company American, so a plain
#   install leaves posted journal entries in USD, and res.company.write then refuses a currency
#   change ("some journal items already exist", account/models/company.py). The same goes for
#   account_price_include.
# - When the main company is already in Kenya, that demo call skips it, l10n_ke (auto_install
#   for Kenyan companies) is installed, and account/models/ir_module.py loads the 'ke' chart on
#   the main company (KES, 16 % VAT) with no demo entries. The shop, the admin user and the
#   default website all stay on the one main company: no second company, website or pricelist
#   to rewire. (l10n_ke's own demo adds a "KE Company"; it is archived below to keep one
#   company in the switcher.)
# Creating a separate company after a plain install would also work, but needs the website,
# users, products and pricelists moved over to it: more parts to get wrong.
import os
from datetime import timedelta

from odoo import Command, fields

MODULE = "mpesa_demo"  # module part of our external ids; not an installed addon
EMULATOR_URL = "http://127.0.0.1:" + os.environ.get("EMULATOR_PORT", "8070")
# Same values run.sh gives the Daraja emulator (its defaults; Safaricom's sandbox passkey).
CONSUMER_KEY = os.environ.get("MPESA_DEMO_CONSUMER_KEY", "emulator-key")
CONSUMER_SECRET = os.environ.get("MPESA_DEMO_CONSUMER_SECRET", "emulator-secret")
PASSKEY = os.environ.get(
    "MPESA_DEMO_PASSKEY",
    "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
)
# The emulator's private key, kept by run.sh across restarts (--key-file): the
# initiator password is encrypted with its certificate, as with Safaricom's.
EMULATOR_KEY_FILE = os.environ.get("MPESA_DEMO_EMULATOR_KEY")
INITIATOR_PASSWORD = "Safaricom999!*!"  # the emulator's default (Safaricom's sandbox)

# Customers: Kenyan numbers in the formats people really type.
CUSTOMERS = [
    ("customer_wanjiku", "Wanjiku Kamau", "0712345678", "Nairobi"),
    ("customer_otieno", "Otieno Ochieng", "+254 722 000 111", "Kisumu"),
    ("customer_amina", "Amina Hassan", "254733000222", "Mombasa"),
    ("customer_kiprop", "Kiprop Cheruiyot", "0110000333", "Eldoret"),
    ("customer_njeri", "Njeri Mwangi", "0745-000-444", "Nakuru"),
    ("customer_mamamboga", "Mama Mboga Grocers", "+254 (0) 701 000 555", "Thika"),
]
# Products: KES prices, VAT included (M-PESA takes whole shillings only).
PRODUCTS = [
    ("product_maize_flour", "Maize flour 2kg", 210, "consu", "MF-2KG"),
    ("product_cooking_oil", "Cooking oil 1L", 395, "consu", "OIL-1L"),
    ("product_solar_lantern", "Solar lantern", 2450, "consu", "SOL-LAN"),
    ("product_jiko", "Energy-saving jiko", 3200, "consu", "JIKO-01"),
    ("product_hosting", "Website hosting (monthly)", 1500, "service", "HOST-M"),
    ("product_phone_repair", "Phone screen repair", 1800, "service", "REP-SCR"),
]
# Open customer invoices: (xml id, customer, days ago, [(product, quantity)]).
INVOICES = [
    ("invoice_wanjiku", "wanjiku", 10, [("maize_flour", 5), ("cooking_oil", 2)]),
    ("invoice_otieno", "otieno", 3, [("hosting", 1)]),
    ("invoice_mamamboga", "mamamboga", 0, [("maize_flour", 20), ("solar_lantern", 2)]),
]
# Quotations: (xml id, customer, share to pay online before confirmation, lines).
QUOTATIONS = [
    ("quotation_amina", "amina", 1.0, [("solar_lantern", 1), ("maize_flour", 3)]),
    ("quotation_kiprop", "kiprop", 0.3, [("jiko", 2), ("solar_lantern", 1)]),
    ("quotation_njeri", "njeri", 1.0, [("phone_repair", 1)]),
]


def log(msg):
    print(f"[demo_data] {msg}")


def ensure(env, name, model, values):
    """Return the record with external id mpesa_demo.<name>, creating it if absent."""
    record = env.ref(f"{MODULE}.{name}", raise_if_not_found=False)
    if record:
        return record
    record = env[model].create(values)
    env["ir.model.data"].create(
        {
            "module": MODULE,
            "name": name,
            "model": model,
            "res_id": record.id,
            "noupdate": True,
        }
    )
    log(f"created {model} {MODULE}.{name}")
    return record


def setup_company(env):
    company = env.ref("base.main_company")
    kes = env.ref("base.KES")
    kes.active = True
    if company.currency_id != kes:
        if "account.move.line" in env and env["account.move.line"].search_count(
            [("company_id", "=", company.id)], limit=1
        ):
            raise SystemExit(
                f"demo_data: {company.name} already has journal items in "
                f"{company.currency_id.name}, so its currency cannot become KES. Let "
                "./setup/run.sh create the database (it sets the company up before "
                "Accounting is installed): MPESA_DEMO_RESET=1 ./setup/run.sh"
            )
        company.currency_id = kes
    company.write(
        {
            "name": "Jua Kali Traders Ltd",
            "country_id": env.ref("base.ke").id,
            "street": "Kimathi Street 12",
            "city": "Nairobi",
            "zip": "00100",
            "phone": "+254 20 000 0000",
            "email": "info@juakali.example.com",
            "website": "https://juakali.example.com",
        }
    )
    env.ref("base.user_admin").tz = "Africa/Nairobi"
    return company


def setup_accounting_and_shop(env, company):
    if company.chart_template != "ke":
        log(f"WARNING: the main company has chart {company.chart_template!r}, not 'ke'")
    # l10n_ke's demo company: keep a single company in the switcher.
    ke_demo_company = env.ref("base.demo_company_ke", raise_if_not_found=False)
    if ke_demo_company and ke_demo_company.active:
        env["res.users"].with_context(active_test=False).search(
            [("company_id", "=", ke_demo_company.id)]
        ).company_id = company
        ke_demo_company.active = False
    # Kenyan shop prices include 16 % VAT; refused once invoicing has started.
    if company.account_price_include != "tax_included":
        company.account_price_include = "tax_included"
    website = env.ref("website.default_website", raise_if_not_found=False)
    if website:
        website.write(
            {
                "name": "Jua Kali Traders",
                "company_id": company.id,
                "show_line_subtotals_tax_selection": "tax_included",
            }
        )


def create_documents(env, company):
    kenya = env.ref("base.ke")
    customers = {}
    for xmlid, name, phone, city in CUSTOMERS:
        customers[xmlid.removeprefix("customer_")] = ensure(
            env,
            xmlid,
            "res.partner",
            {
                "name": name,
                "phone": phone,
                "email": name.lower().replace(" ", ".") + "@example.com",
                "city": city,
                "country_id": kenya.id,
                "is_company": xmlid == "customer_mamamboga",
            },
        )
    products = {}
    for sequence, (xmlid, name, price, product_type, code) in enumerate(PRODUCTS, 1):
        template = ensure(
            env,
            xmlid,
            "product.template",
            {
                "name": name,
                "list_price": price,
                "type": product_type,
                "default_code": code,
                "sale_ok": True,
                "is_published": True,
                "website_sequence": sequence,  # first in the shop, before Odoo's demo products
                "taxes_id": [Command.set(company.account_sale_tax_id.ids)],
            },
        )
        products[xmlid.removeprefix("product_")] = template.product_variant_id

    today = fields.Date.context_today(env.user)
    for xmlid, partner, days_ago, items in INVOICES:
        move = ensure(
            env,
            xmlid,
            "account.move",
            {
                "move_type": "out_invoice",
                "partner_id": customers[partner].id,
                "company_id": company.id,
                "invoice_date": today - timedelta(days=days_ago),
                "invoice_line_ids": [
                    Command.create({"product_id": products[p].id, "quantity": qty})
                    for p, qty in items
                ],
            },
        )
        if move.state == "draft":
            move.action_post()
        move._portal_ensure_token()  # run.sh prints the customer's payment link
    for xmlid, partner, prepayment, items in QUOTATIONS:
        order = ensure(
            env,
            xmlid,
            "sale.order",
            {
                "partner_id": customers[partner].id,
                "company_id": company.id,
                "require_signature": False,  # "Accept & Pay": straight to the payment form
                "require_payment": True,
                "prepayment_percent": prepayment,
                "order_line": [
                    Command.create(
                        {"product_id": products[p].id, "product_uom_qty": qty}
                    )
                    for p, qty in items
                ],
            },
        )
        order._portal_ensure_token()


def emulator_certificate():
    """The certificate of the demo emulator's key pair (the key file is made if
    missing; the emulator started by run.sh reads the same file)."""
    if not EMULATOR_KEY_FILE:
        raise SystemExit(
            "demo_data: MPESA_DEMO_EMULATOR_KEY is not set (run.sh sets it)"
        )
    from daraja_emulator import KeyPair

    return KeyPair.from_file(EMULATOR_KEY_FILE).certificate_pem


def setup_provider(env, company):
    """The M-PESA provider in test mode, talking to the local Daraja emulator."""
    provider = env.ref("mpesa_payment.payment_provider_mpesa", raise_if_not_found=False)
    if not provider:
        raise SystemExit(
            "demo_data: record mpesa_payment.payment_provider_mpesa not found: "
            "is mpesa_payment installed, and does it define that provider record?"
        )
    values = {
        "mpesa_consumer_key": CONSUMER_KEY,
        "mpesa_consumer_secret": CONSUMER_SECRET,
        "mpesa_shortcode": "174379",
        "mpesa_shortcode_type": "paybill",
        "mpesa_passkey": PASSKEY,
        "mpesa_initiator_name": "testapi",
        "mpesa_certificate": emulator_certificate(),
        "mpesa_api_url": EMULATOR_URL,
        # Invoices and orders print Daraja's QR code (the emulator makes one).
        "mpesa_dynamic_qr": True,
    }
    missing = [name for name in values if name not in provider._fields]
    if missing:
        raise SystemExit(
            f"demo_data: payment.provider has no field(s) {', '.join(missing)}: "
            "mpesa_payment must define them (models/payment_provider.py)"
        )
    method = env.ref("payment.payment_method_mpesa").with_context(active_test=False)
    # Each shortcode its own bank journal (readme/CONFIGURE.md), not the company's Bank.
    journal = ensure(
        env,
        "journal_mpesa_paybill",
        "account.journal",
        {
            "name": "M-PESA Paybill",
            "code": "MPPB",
            "type": "bank",
            "company_id": company.id,
        },
    )
    values.update(
        company_id=company.id,
        journal_id=journal.id,
        payment_method_ids=[Command.link(method.id)],
    )
    provider.write(values)
    # State first, then the password: switching state clears the credential, and
    # the password is encrypted with the certificate of the state's environment
    # (here the emulator's, set above). Only the encrypted result is kept.
    provider.write({"state": "test", "is_published": True})
    provider.write({"mpesa_initiator_password": INITIATOR_PASSWORD})
    # Core refuses to activate a method that no enabled provider offers: after the provider.
    method.active = True
    log(f"provider {provider.name}: state {provider.state}, API {EMULATOR_URL}")


def main(env):
    company = setup_company(env)
    if "account.move" not in env:
        env.cr.commit()
        log("company set up (Kenya, KES); run again once the addons are installed")
        return
    setup_accounting_and_shop(env, company)
    create_documents(env, company)
    setup_provider(env, company)
    env["ir.config_parameter"].set_param("mpesa_demo.ready", fields.Datetime.now())
    env.cr.commit()
    log("done")


main(env)  # noqa: F821 (env is provided by odoo shell)
