"""Issue 11, finding 6: every route fuzzed over real HTTP with what a hostile sender
would send (hypothesis, derandomized: the same cases every run).

Callback routes (STK, C2B validation and confirmation, API result and timeout): the
documented Daraja bodies with every field replaced by wrong types (lists, objects,
null, booleans, 5000-digit numbers, NaN and Infinity as raw JSON tokens, negative,
huge and tiny numbers, very long and odd unicode text, NUL, lone surrogates, 10000
nested arrays), fields dropped, wrapped or added, keys repeated; non-JSON, empty,
invalid UTF-8, UTF-16, oversize and chunked bodies; wrong content types. Sent to a
valid URL (the body reaches processing) and to invalid ones. The answer is a 4xx, or
a 200/400 with the body stored (one callback, the same text); never a 5xx, never a
traceback in the log, never money moved (no payment, no journal entry, no transaction
done, no receipt applied, the customer's receivable unchanged): M-PESA confirms money
before it counts, whatever a body claims.

The payment form's JSON route: hostile params answer a JSON-RPC error a customer can
read (a ValidationError, not a TypeError and its traceback), and no prompt is sent.
The portal routes: hostile page numbers, receipt ids and query arguments answer a 4xx
or a redirect, and nobody else's receipt.

Each test collects every input that broke a rule and fails with all of them (input,
how it was sent, the answer, the traceback's last line). TestRouteDefects pins, one by
one, the defects found in code this test's author could not change, and
TestOdooRequestDefects those of Odoo's own request handling that reach our routes:
each fails until its fix (in its docstring) is applied. The fuzzing does not generate
the exact triggers of the latter, so that it keeps judging our code.
"""

import codecs
import hashlib
import hmac
import itertools
import json
import logging
import re
from collections import Counter
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from odoo.tests import tagged
from odoo.tools import hmac as hmac_tool
from odoo.tools import mute_logger

from ..controllers.main import MAX_BODY_BYTES
from ..daraja.phone import PhoneError, normalize_msisdn
from .common import PHONE, SHORTCODE, MpesaHttpCommon, load_sample

_logger = logging.getLogger(__name__)


def fuzz(examples):
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,  # the same cases every run
        database=None,
        # Every failing input is collected with its answer and reported at the end:
        # shrinking would only replay HTTP requests.
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
    )


# === HOSTILE JSON === #


class Raw(str):
    """JSON text sent as is: what json.dumps cannot write (a 5000-digit number,
    10000 nested arrays) or writes only by accident (NaN, Infinity)."""


class Pairs(tuple):
    """A JSON object written with these (key, value) pairs: repeated keys too."""


class Marker(str):
    """A value known only at run time (a transaction's reference, its token)."""


def to_json(value, ascii_only=True):
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, (dict, Pairs)):
        items = value.items() if isinstance(value, dict) else value
        return (
            "{"
            + ",".join(
                f"{json.dumps(str(k), ensure_ascii=ascii_only)}:{to_json(v, ascii_only)}"
                for k, v in items
            )
            + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(to_json(v, ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)  # floats: NaN, Infinity


def encode(text):
    # An unescaped lone surrogate becomes the invalid UTF-8 a hostile sender can write.
    return text.encode("utf-8", "surrogatepass")


HUGE = "9" * 5000  # Python reads no more than 4300 digits
DEEP_ARRAYS = Raw("[" * 10000 + "]" * 10000)
DEEP_OBJECTS = Raw('{"a":' * 5000 + "0" + "}" * 5000)
RAW_NUMBERS = [
    Raw(text)
    for text in (
        HUGE,
        "-" + HUGE,
        "1" + "0" * 4300,
        "NaN",
        "Infinity",
        "-Infinity",
        "1e400",
        "-1e400",
        "1e-400",
        "-0",
        "1E+999999999",
        "123456789012345678901234567890.5",
        "0.000000000000000000000000001",
    )
]
# Long text PostgreSQL cannot compress (an index entry of it would be too big).
INCOMPRESSIBLE = "".join(hashlib.sha256(b"%d" % i).hexdigest() for i in range(100))
NASTY_TEXT = [
    "",
    " ",
    "\x00",
    "QFZ\x00XYZ",
    "\ud800",
    "x\udfffy",
    "\u202etxet",
    "\ufeff",
    "\U0001f600" * 50,
    "\u00b2\u00b3",
    "\u0661\u0662\u0665\u0660",
    "\uff11\uff12\uff15\uff10",
    "1,250.00",
    "1_250",
    "1e3",
    "0x4e2",
    "-1250",
    " 1250 ",
    "NaN",
    "Infinity",
    "null",
    "true",
    "[]",
    "' OR '1'='1",
    "<script>alert(1)</script>",
    "%s%n%x",
    "../../etc/passwd",
    "99991231235959",
    "20261399256199",
    "0" * 14,
    "A" * 30000,
    "\u03a9" * 10000,
    INCOMPRESSIBLE,
    HUGE,
    "-" + HUGE,
]
# The sweep: every field of a documented body gets wrong types from this list.
WRONG_TYPES = [
    ["a list"],
    {"an": "object"},
    None,
    True,
    Raw(HUGE),
    Raw("NaN"),
    Raw("Infinity"),
    -1,
    1e308,
    "A" * 30000,
    INCOMPRESSIBLE,
    "\u202e\U0001f600\u0661\u00b2",
    "\x00",
    "\ud800",
    DEEP_ARRAYS,
    Raw("-1e400"),
    [],
    {},
    False,
]
KEYS = [
    "Body",
    "stkCallback",
    "ResultCode",
    "CheckoutRequestID",
    "CallbackMetadata",
    "Item",
    "Name",
    "Value",
    "Amount",
    "MpesaReceiptNumber",
    "TransID",
    "TransAmount",
    "Result",
    "ResultParameters",
    "ResultParameter",
    "Key",
    "__proto__",
    "",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),  # NaN, Infinity, -0.0, 1e308, subnormals
    st.text(max_size=40),
    st.sampled_from(NASTY_TEXT),
    st.sampled_from(RAW_NUMBERS),
)
nested = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), children, max_size=4
        ),
    ),
    max_leaves=12,
)
hostile = st.one_of(
    scalars,
    nested,
    st.sampled_from([DEEP_ARRAYS, DEEP_OBJECTS, [], {}, [[]], {"": None}]),
)
# The same, without what Odoo's JSON-RPC layer cannot read (TestOdooRequestDefects).
hostile_rpc = st.one_of(
    scalars,
    nested,
    st.sampled_from([[], {}, [[]], {"": None}, Raw("[" * 500 + "]" * 500)]),
)
operations = st.one_of(
    st.tuples(st.just("set"), hostile),
    st.tuples(st.sampled_from(["drop", "in_list", "in_object", "as_text"])),
    st.tuples(st.just("add"), st.sampled_from(KEYS), hostile),
    st.tuples(st.just("repeat"), hostile),
)


def paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, (*prefix, index))


def _apply(parent, key, op):
    original = parent[key]
    action = op[0]
    if action == "set":
        parent[key] = op[1]
    elif action == "drop":
        if isinstance(parent, list) and len(parent) == 1 and key == 0:
            parent[key] = Raw("")  # the whole body: an empty one
        else:
            del parent[key]
    elif action == "in_list":
        parent[key] = [original]
    elif action == "in_object":
        parent[key] = {"Value": original}
    elif action == "as_text":
        wrapped = isinstance(original, (dict, list))
        parent[key] = to_json(original) if wrapped else str(original)
    elif action == "add" and isinstance(original, dict):
        original[op[1]] = op[2]
    elif action == "repeat" and isinstance(original, dict) and original:
        # The same key twice: Python keeps the last, other readers the first.
        first = next(iter(original))
        parent[key] = Pairs([*original.items(), (first, op[1])])


def mutate(body, ops):
    """Apply ``ops`` [(path, operation)] to a copy of ``body``: each path names a
    field of the documented shape (an earlier operation may have removed it)."""
    root = [json.loads(json.dumps(body))]
    for path, op in ops:
        parent, key = root, 0
        for step in path:
            child = parent[key]
            if (isinstance(child, dict) and step in child) or (
                isinstance(child, list) and isinstance(step, int) and step < len(child)
            ):
                parent, key = child, step
            else:
                break
        else:
            _apply(parent, key, op)
    return root[0]


JUNK = [
    b"",
    b" ",
    b"null",
    b"true",
    b"0",
    b"-1",
    b"[]",
    b"{}",
    b'""',
    b"not json",
    b"{",
    b"}",
    b'{"Body":',
    b"\x00",
    b"\x00" * 64,
    b"\xff\xfe\xfd",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"[" * 10000 + b"]" * 10000,
    b"[" * 30000,
    b'{"a":' * 5000 + b"0" + b"}" * 5000,
    b"[" * MAX_BODY_BYTES,  # exactly the limit: read, and refused as JSON
    b"A" * (MAX_BODY_BYTES + 1),  # one byte too many
    b"NaN",
    b"Infinity",
    b'{"Body": NaN}',
    HUGE.encode(),
    b"a=1&b=2",
    b'--XYZ\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--XYZ--\r\n',
]
# Without the nesting Odoo's JSON-RPC layer cannot read (TestOdooRequestDefects).
JUNK_RPC = [j for j in JUNK if j.count(b"[") + j.count(b"{") < 1000]
# Odoo reads a form (urlencoded or multipart) before any controller: its body is gone
# by then (TestRouteDefects.test_form_content_type_loses_the_body).
FORM_TYPES = [
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "multipart/form-data; boundary=XYZ",
]
CONTENT_TYPES = [
    "application/json",
    "application/json",
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=utf-16",
    "text/plain",
    "application/octet-stream",
    *FORM_TYPES,
    "",
    None,  # no Content-Type header at all
]


def bodies(shape):
    """A recipe for one hostile body: ("mutate", operations, ascii_only) applied to the
    documented shape at run time, or ("raw", bytes, variant)."""
    field_paths = list(paths(shape))
    return st.one_of(
        st.tuples(
            st.just("mutate"),
            st.lists(
                st.tuples(st.sampled_from(field_paths), operations),
                min_size=1,
                max_size=3,
            ),
            st.booleans(),
        ),
        st.tuples(
            st.just("raw"),
            st.one_of(st.sampled_from(JUNK), st.binary(max_size=200)),
            st.just(""),
        ),
        st.tuples(
            st.just("raw"),
            st.just(b""),
            st.sampled_from(["bom", "utf-16", "utf-32", "trailing", "twice"]),
        ),
    )


def sweep(shape, per_field=2):
    """Every field of ``shape`` (and the whole body) replaced by wrong types in turn:
    recipes for realize(), the brief's list without the luck of the draw."""
    recipes = []
    for index, path in enumerate(paths(shape)):
        for turn in range(per_field):
            wrong = WRONG_TYPES[(index + turn * 7) % len(WRONG_TYPES)]
            recipes.append(("mutate", [(path, ("set", wrong))], turn == 0))
    return recipes


def plausible(path, values):
    """Recipes setting the field at ``path`` to values of the right type but the
    wrong content (another amount, another code): money still needs M-PESA's word."""
    return [("mutate", [(path, ("set", value))], True) for value in values]


def realize(recipe, base):
    kind, what, extra = recipe
    if kind == "mutate":
        return encode(to_json(mutate(base, what), ascii_only=extra))
    sample = json.dumps(base)
    variants = {
        "bom": codecs.BOM_UTF8 + sample.encode(),
        "utf-16": sample.encode("utf-16"),
        "utf-32": sample.encode("utf-32"),
        "trailing": sample.encode() + b" trailing",
        "twice": sample.encode() * 2,
    }
    return variants[extra] if extra else what


def describe(recipe):
    """What a recipe did to the documented body, for the report."""
    kind, what, extra = recipe
    if kind == "raw":
        return f"raw body {extra}".strip()
    return "; ".join(
        f"{'.'.join(map(str, path)) or '<body>'} {op[0]} {show(op[1:], 40)}"
        for path, op in what
    )


def stored_text(raw):
    """How mpesa.callback keeps a body: UTF-8 text exactly; what text cannot hold
    (invalid UTF-8, NUL) as visible escapes."""
    return raw.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def show(raw, limit=160):
    """An input, short enough for a report and exact enough to replay."""
    if isinstance(raw, bytes) and len(raw) > limit:
        head = raw[: limit // 2]
        tail = raw[-limit // 4 :]
        return f"{head!r} ... {tail!r} ({len(raw)} bytes)"
    text = repr(raw)
    return text if len(text) <= limit * 2 else f"{text[:limit]}... ({len(text)} chars)"


# The generic branch of mpesa.callback._process records repr(error): an exception the
# payload checks did not foresee (TypeError(...), NumericValueOutOfRange(...)).
UNFORESEEN = re.compile(r"^[A-Za-z_][\w.]*\(")
# What a caller can read and act on; not an internal error (TypeError, KeyError...).
ALLOWED_RPC_ERRORS = {
    "odoo.exceptions.ValidationError",
    "odoo.exceptions.UserError",
    "odoo.exceptions.AccessError",
    "odoo.exceptions.MissingError",
    "werkzeug.exceptions.BadRequest",
}
BAD_TOKENS = [
    "x",
    "1.2.3",
    "1.2",
    "...",
    "-1.-1.-1",
    "0.0.",
    "1.9999999999.abc",
    "nan.inf.x",
    "9" * 4000 + ".1.a",
    "1." + "9" * 4000 + ".a",
    "1.2.3.4",
    "\x00",
    "%00",
    "..%2f..%2fetc",
    "\u202e",
    "A" * 5000,
]
tokens = st.one_of(
    st.sampled_from(BAD_TOKENS),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/"),
        min_size=1,
        max_size=60,
    ),
)


class CaptureLogs(mute_logger):
    """Keeps the log quiet (thousands of refused bodies) and every record, so that a
    traceback logged while handling a request is a finding."""

    def __init__(self, *loggers):
        super().__init__(*loggers)
        self.records = []

    def emit(self, record):
        self.records.append(record)


# What handles a request; not the tests' own loggers (their results are logged there).
LOGGERS = (
    "odoo.http",
    "odoo.sql_db",
    "odoo.models",
    "odoo.fields",
    "odoo.service",
    "odoo.osv",
    "odoo.addons.base",
    "odoo.addons.http_routing",
    "odoo.addons.portal",
    "odoo.addons.payment",
    "odoo.addons.account",
    "odoo.addons.mpesa_payment.models",
    "odoo.addons.mpesa_payment.controllers",
    "odoo.addons.mpesa_payment.daraja",
    "odoo.addons.mpesa_reconciliation.models",
    "odoo.addons.mpesa_reports.controllers",
    "odoo.addons.mpesa_reports.models",
    "werkzeug",
)


class RouteFuzzCommon(MpesaHttpCommon):
    """Sending hostile requests and judging the answers."""

    def setUp(self):
        super().setUp()
        # Prompts stay open on the phone: a success any body claims is never confirmed
        # by M-PESA, so it must never count.
        self.emulator.auto_complete = False
        self._seq = itertools.count(1)
        self.problems = {}
        self.outcomes = Counter()
        self.logs = CaptureLogs(*LOGGERS)
        self.logs.__enter__()
        self.addCleanup(self.logs.__exit__)
        with self._db_lock():
            self.mpesa.write(
                {
                    "mpesa_push_limit_document": 0,
                    "mpesa_push_limit_phone": 0,
                    "mpesa_push_limit_address": 0,
                }
            )
            self.invoice = self._invoice(self.amount)
            self.env.flush_all()

    # === FINDINGS === #

    def _problem(self, route, what, raw, response=None, detail="", sent=""):
        key = (route, what, detail[:120])
        if key in self.problems:
            self.problems[key][1] += 1
            return
        answer = ""
        if response is not None:
            answer = f"HTTP {response.status_code} {response.text[:200]!r}"
        self.problems[key] = [
            f"{route}: {what}\n    input: {show(raw)}"
            + (f"\n    sent: {sent}" if sent else "")
            + f"\n    answer: {answer}"
            + (f"\n    {detail}" if detail else ""),
            1,
        ]

    def _assert_no_problems(self):
        _logger.info("outcomes of the bodies stored: %s", dict(self.outcomes))
        if self.problems:
            report = "\n".join(
                f"{text}\n    ({count} such inputs)"
                for text, count in self.problems.values()
            )
            self.fail(f"{len(self.problems)} kinds of hostile input broke:\n{report}")

    def _tracebacks(self, mark):
        lines = []
        for record in self.logs.records[mark:]:
            if record.levelno >= logging.ERROR or record.exc_info:
                last = ""
                if record.exc_info and record.exc_info[1] is not None:
                    error = record.exc_info[1]
                    last = f"{type(error).__name__}: {str(error)[:150]}"
                lines.append(f"{record.name}: {record.getMessage()[:150]} {last}")
        return lines

    # === MONEY === #

    def _money(self, books=True):
        """What a payment would change (read while the server is kept out).
        ``books``: the M-PESA journal too (mpesa_reconciliation feeds it a statement
        line per receipt M-PESA confirmed)."""
        self.env.invalidate_all()
        env = self.env(su=True)
        applied = env["mpesa.receipt"].search(
            ["|", ("state", "=", "applied"), ("applied_amount", "!=", 0)]
        )
        partner = self.partner.commercial_partner_id.with_company(
            self.invoice.company_id
        )
        money = {
            "payments": env["account.payment"].search_count([]),
            "transactions done": env["payment.transaction"].search_count(
                [("state", "=", "done")]
            ),
            "receipts applied": sorted((r.name, r.applied_amount) for r in applied),
            "receivable": partner.credit,
            "invoice due": self.invoice.amount_residual,
        }
        if books:
            money["posted entries"] = env["account.move"].search_count(
                [("state", "=", "posted")]
            )
            money["statement lines"] = env["account.bank.statement.line"].search_count(
                []
            )
        return money

    # === SENDING === #

    def _post(self, path, raw, content_type="application/json", chunked=False):
        headers = {} if content_type is None else {"Content-Type": content_type}
        data = iter([raw]) if chunked and raw else raw
        return self.opener.post(
            self.base_url() + path,
            data=data,
            headers=headers,
            timeout=60,
            allow_redirects=False,
        )

    def _callback(self, route, path, raw, valid, kind, target=(), **how):
        """Send one hostile body to a callback route; note what went wrong.
        ``how``: content_type, chunked, books (see _money)."""
        content_type = how.get("content_type", "application/json")
        chunked = how.get("chunked", False)
        books = how.get("books", True)
        route = f"{route} ({'valid' if valid else 'invalid'} URL)"
        sent = f"POST {show(path, 60)} Content-Type={content_type!r}" + (
            " chunked" if chunked else ""
        )
        if how.get("recipe"):
            sent += f"\n    body: {describe(how['recipe'])}"
        with self._db_lock():
            last = (
                self.env["mpesa.callback"].sudo().search([], limit=1, order="id desc")
            )
            money = self._money(books)
        mark = len(self.logs.records)
        response = self._post(path, raw, content_type, chunked)
        self._apply_inbox()  # the job each stored body wakes

        def problem(what, detail=""):
            self._problem(route, what, raw, response, detail, sent)

        status = response.status_code
        if status >= 500:
            problem(f"HTTP {status}")
        elif status != 200 and not 400 <= status < 500:
            problem(f"unexpected HTTP {status}")
        for line in self._tracebacks(mark):
            problem("traceback logged", line)
        with self._db_lock():
            self.env.invalidate_all()
            stored = (
                self.env["mpesa.callback"]
                .sudo()
                .search([("id", ">", last.id or 0), ("kind", "=", kind), *target])
            )
            self._judge_stored(problem, raw, status, valid, stored)
            after = self._money(books)
        if after != money:
            changed = sorted(k for k in money if money[k] != after[k])
            problem("money moved", f"changed: {', '.join(changed)}")
        return response

    def _judge_stored(self, problem, raw, status, valid, stored):
        text = stored_text(raw)
        if not valid:
            if status == 200:
                problem("accepted from an invalid URL")
            if any(cb.body == text for cb in stored):
                problem("stored from an invalid URL")
        elif len(raw) > MAX_BODY_BYTES:
            if status != 413:
                problem("oversize body not refused")
            if stored:
                problem("oversize body stored")
        elif not stored and 400 <= status < 500 and status != 400:
            self.outcomes[f"refused {status}"] += 1  # refused whole, before reading
        elif len(stored) != 1:
            problem(f"{len(stored)} callbacks stored, not 1")
        else:
            self.outcomes[stored.state] += 1
            if stored.body != text:
                problem(
                    "stored body differs from the one received",
                    f"stored: {show(stored.body, 40)}",
                )
            if status not in (200, 400):
                problem(f"stored, yet HTTP {status}")
            if stored.state == "received":
                problem("processing crashed")
            if stored.state == "error" and UNFORESEEN.match(stored.error or ""):
                problem(
                    "processing raised an unforeseen exception",
                    (stored.error or "")[:200],
                )

    def _assert_deep(self, sent, minimum):
        """The fuzzing reached the money paths, not only the parsers."""
        self.assertGreater(sent.count("valid"), minimum, "most bodies reach processing")
        reached = self.outcomes["processed"] + self.outcomes["duplicate"]
        reached += self.outcomes["unmatched"]
        self.assertTrue(reached, f"no body got past the parsers: {self.outcomes}")
        self.assertTrue(self.outcomes["error"], "no body was refused as malformed")

    # === FIXTURES === #

    @staticmethod
    def _stk_body(tx, success, receipt):
        """An STK callback for ``tx`` as Daraja documents it (its items too)."""
        cb = {
            "MerchantRequestID": tx.mpesa_merchant_request_id,
            "CheckoutRequestID": tx.mpesa_checkout_request_id,
            "ResultCode": 0 if success else 1032,
            "ResultDesc": "The service request is processed successfully."
            if success
            else "Request cancelled by user",
        }
        if success:
            cb["CallbackMetadata"] = {
                "Item": [
                    {"Name": "Amount", "Value": tx.amount},
                    {"Name": "MpesaReceiptNumber", "Value": receipt},
                    {"Name": "Balance"},
                    {"Name": "TransactionDate", "Value": 20261128101500},
                    {"Name": "PhoneNumber", "Value": int(PHONE)},
                ]
            }
        return {"Body": {"stkCallback": cb}}

    def _pushed_tx(self, n):
        """A prompt really sent, still open on the phone (call under _db_lock): the
        last one while no body changed it, else a new one."""
        tx = getattr(self, "_open_tx", None)
        if tx:
            tx.invalidate_recordset()
        if not (
            tx
            and tx.state == "pending"
            and not tx.mpesa_receipt_code
            and not tx.mpesa_needs_review
        ):
            tx = self._create_mpesa_tx(reference=f"FUZZ-STK-{n}")
            tx._mpesa_send_stk_push(PHONE)
            self.env.flush_all()
            self._open_tx = tx
        return tx

    @staticmethod
    def _result_body(kind, code):
        """An initiator API Result, as the documentation's sample (a balance carries
        AccountBalance instead)."""
        body = load_sample("transaction_status_result.json")
        result = body["Result"]
        result["TransactionID"] = code
        params = result["ResultParameters"]["ResultParameter"]
        for param in params:
            if param["Key"] == "DebitPartyName":
                param["Value"] = f"{PHONE} - John Doe"
            if param["Key"] == "ReceiptNo":
                param["Value"] = code
        if kind == "balance":
            result["ResultParameters"]["ResultParameter"] = [
                {
                    "Key": "AccountBalance",
                    "Value": "Working Account|KES|700000.00|700000.00|0.00|0.00"
                    "&Utility Account|KES|228037.00|228037.00|0.00|0.00",
                },
                {"Key": "BOCompletedTime", "Value": 20261128101500},
            ]
        return body

    def _api_request(self, kind, code):
        """A request M-PESA was asked (its Result arrives on our URL)."""
        return (
            self.env["mpesa.api.request"]
            .sudo()
            .with_context(tracking_disable=True)
            .create(
                {
                    "kind": kind,
                    "provider_id": self.mpesa.id,
                    "receipt_code": code if kind != "balance" else False,
                    "amount": 10.0 if kind == "reversal" else 0.0,
                }
            )
        )

    def _c2b_path(self, kind, signature=None, provider_id=None):
        if signature is None:
            with self._db_lock():  # M-PESA's answers may be arriving on the server
                signature = self.mpesa._mpesa_c2b_signature()
        provider_id = self.mpesa.id if provider_id is None else provider_id
        return f"/payment/daraja/c2b/{provider_id}/{quote(signature, safe='')}/{kind}"

    def _draft_tx_and_token(self, reference):
        with self._db_lock():
            tx = self._create_mpesa_tx(reference=reference)
            access_token = hmac_tool(
                self.env(su=True),
                "generate_access_token",
                f"{tx.reference}|{tx.amount}",
            )
            self.env.flush_all()
        return tx, access_token

    def _rpc(self, params):
        return json.dumps({"jsonrpc": "2.0", "method": "call", "params": params})

    def _pushes(self):
        return [
            r
            for r in self.emulator.request_log
            if r[1].endswith("/stkpush/v1/processrequest")
        ]


@tagged("post_install", "-at_install")
class TestRouteFuzz(RouteFuzzCommon):
    # === STK CALLBACK === #

    def test_stk_callback_route(self):
        shape_tx = self.env["payment.transaction"].new(
            {"mpesa_merchant_request_id": "m", "mpesa_checkout_request_id": "c"}
        )
        shapes = {s: self._stk_body(shape_tx, s, "R") for s in (True, False)}
        sent = []

        def send(success, recipe, url, content_type, chunked, draw_token=None):
            n = next(self._seq)
            with self._db_lock():
                tx = self._pushed_tx(n)
                token = {
                    "valid": lambda: self.mpesa._mpesa_make_token("stk", tx.id),
                    "expired": lambda: self.mpesa._mpesa_make_token(
                        "stk", tx.id, days=-1
                    ),
                    "gone": lambda: self.mpesa._mpesa_make_token("stk", 10**9 + n),
                    "other scope": lambda: self.mpesa._mpesa_make_token(
                        "result", tx.id
                    ),
                    "garbage": draw_token,
                }[url]()
                raw = realize(recipe, self._stk_body(tx, success, f"QFZS{n:06d}"))
                self.env.flush_all()
            sent.append(url)
            self._callback(
                "STK callback",
                f"/payment/daraja/stk/{quote(token, safe='')}",
                raw,
                url in ("valid", "expired", "gone"),  # a URL we signed: kept
                "stk",
                content_type=content_type,
                chunked=chunked,
                recipe=recipe,
            )
            with self._db_lock():
                self.env.invalidate_all()
                if tx.state == "done":
                    self._problem("STK callback", "transaction done", raw)

        for success, per_field in ((True, 2), (False, 1)):
            for recipe in sweep(shapes[success], per_field):
                send(success, recipe, "valid", "application/json", False)
        amount = ("Body", "stkCallback", "CallbackMetadata", "Item", 0, "Value")
        code = ("Body", "stkCallback", "ResultCode")
        for recipe in plausible(amount, [0, 1, 1249, 1250.4, "1,250.00", "1e3"]):
            send(True, recipe, "valid", "application/json", False)
        for recipe in plausible(code, ["0", 0.0, 1, 2001, 1037, 10**17]):
            send(True, recipe, "valid", "application/json", False)
        for junk in JUNK:
            send(True, ("raw", junk, ""), "valid", "application/json", False)

        @fuzz(40)
        @given(st.data())
        def run(data):
            success = data.draw(st.booleans(), label="success shape")
            recipe = data.draw(bodies(shapes[success]), label="body")
            url = data.draw(
                st.sampled_from(
                    ["valid"] * 5 + ["expired", "gone", "other scope", "garbage"]
                ),
                label="url",
            )
            send(
                success,
                recipe,
                url,
                data.draw(st.sampled_from(CONTENT_TYPES), label="type"),
                data.draw(st.sampled_from([False] * 5 + [True]), label="chunked"),
                lambda: data.draw(tokens, label="token"),
            )

        run()
        self._assert_no_problems()
        self._assert_deep(sent, 80)

    # === C2B === #

    def test_c2b_routes(self):
        shape = self._c2b_body("QFZC000000", "1250.00", "INV/1")
        sent = []
        with self._db_lock():
            secret = (self.mpesa.sudo().mpesa_c2b_secret or "").encode()

        def send(kind, recipe, url, content_type, chunked, draw=None):
            n = next(self._seq)
            path = self._c2b_path(kind)
            if url == "signature":
                path = self._c2b_path(kind, signature=draw(tokens))
            elif url == "provider":
                provider_id = draw(
                    st.sampled_from([0, -1, self.mpesa.id + 1000, 2**31, 2**63, 10**40])
                )
                path = self._c2b_path(kind, provider_id=provider_id)
            elif url == "kind":
                path = self._c2b_path(
                    draw(st.sampled_from(["VALIDATION", "confirm", "x.json", "x"]))
                )
            elif url == "signature of another id":
                other = f"c2b:{self.mpesa.id + 1}".encode()
                path = self._c2b_path(
                    kind, hmac.new(secret, other, hashlib.sha256).hexdigest()[:40]
                )
            with self._db_lock():
                # A payment of the invoice, as the customer's phone would report it.
                base = self._c2b_body(
                    f"QFZC{n:06d}", f"{self.amount:.2f}", self.invoice.name
                )
            sent.append(url)
            self._callback(
                f"C2B {kind}",
                path,
                realize(recipe, base),
                url == "valid",
                f"c2b_{kind}",
                [("provider_id", "=", self.mpesa.id)],
                content_type=content_type,
                chunked=chunked,
                recipe=recipe,
            )

        for index, recipe in enumerate(sweep(shape)):
            kind = ("confirmation", "validation")[index % 2]
            send(kind, recipe, "valid", "application/json", False)
        amounts = ["0", "1", "1249.00", "1250", "1,250.00", "250000", "1e3"]
        for recipe in plausible(("TransAmount",), amounts):
            send("confirmation", recipe, "valid", "application/json", False)
        for junk in JUNK[::2]:
            send("confirmation", ("raw", junk, ""), "valid", "application/json", False)

        @fuzz(40)
        @given(st.data())
        def run(data):
            send(
                data.draw(
                    st.sampled_from(["validation", "confirmation"]), label="kind"
                ),
                data.draw(bodies(shape), label="body"),
                data.draw(
                    st.sampled_from(
                        ["valid"] * 5
                        + ["signature", "provider", "kind", "signature of another id"]
                    ),
                    label="url",
                ),
                data.draw(st.sampled_from(CONTENT_TYPES), label="type"),
                data.draw(st.sampled_from([False] * 5 + [True]), label="chunked"),
                data.draw,
            )

        run()
        self._assert_no_problems()
        self._assert_deep(sent, 50)

    # === INITIATOR API RESULTS === #

    def test_result_and_timeout_routes(self):
        sent = []
        shapes = {k: self._result_body(k, "QFZR000000") for k in ("status", "balance")}

        def send(api_kind, route, recipe, url, content_type, draw_token=None):
            n = next(self._seq)
            code = f"QFZR{n:06d}"
            with self._db_lock():
                request = self._api_request(api_kind, code)
                token = {
                    "valid": lambda: self.mpesa._mpesa_make_token("result", request.id),
                    "expired": lambda: self.mpesa._mpesa_make_token(
                        "result", request.id, days=-1
                    ),
                    "gone": lambda: self.mpesa._mpesa_make_token("result", 10**9 + n),
                    "other scope": lambda: self.mpesa._mpesa_make_token(
                        "stk", request.id
                    ),
                    "garbage": draw_token,
                }[url]()
                self.env.flush_all()
            shape = "balance" if api_kind == "balance" else "status"
            sent.append(url)
            self._callback(
                f"API {route}",
                f"/payment/daraja/{route}/{quote(token, safe='')}",
                realize(recipe, self._result_body(shape, code)),
                url in ("valid", "expired", "gone"),  # a URL we signed: kept
                route,
                [("api_request_id", "=", False if url == "gone" else request.id)],
                content_type=content_type,
                recipe=recipe,
                # A Result on our signed URL is M-PESA's own word: a receipt it reports
                # enters the M-PESA journal (unapplied); nothing may pay with it.
                books=False,
            )

        for index, recipe in enumerate(sweep(shapes["status"], per_field=1)):
            api_kind = ("status", "reversal")[index % 2]
            send(api_kind, "result", recipe, "valid", "application/json")
        for recipe in sweep(shapes["balance"], per_field=1):
            send("balance", "result", recipe, "valid", "application/json")
        amount = ("Result", "ResultParameters", "ResultParameter", 10, "Value")
        for recipe in plausible(amount, [0, 1250, "1,250.00", -1, "1e400"]):
            send("status", "result", recipe, "valid", "application/json")

        @fuzz(40)
        @given(st.data())
        def run(data):
            api_kind = data.draw(st.sampled_from(["status", "reversal", "balance"]))
            shape = "balance" if api_kind == "balance" else "status"
            send(
                api_kind,
                data.draw(st.sampled_from(["result", "timeout"]), label="route"),
                data.draw(bodies(shapes[shape]), label="body"),
                data.draw(
                    st.sampled_from(
                        ["valid"] * 5 + ["expired", "gone", "other scope", "garbage"]
                    ),
                    label="url",
                ),
                data.draw(st.sampled_from(CONTENT_TYPES), label="type"),
                lambda: data.draw(tokens, label="token"),
            )

        run()
        self._assert_no_problems()
        self._assert_deep(sent, 60)

    # === JSON-RPC: THE PAYMENT FORM'S PROMPT === #

    def _rpc_check(self, raw, content_type, tx):
        """Send one hostile call; False once a prompt went out (the caller then
        needs a new draft transaction)."""
        pushes_before = self._pushes()
        mark = len(self.logs.records)
        response = self._post("/payment/mpesa/stk_push", raw, content_type)

        def problem(what, detail=""):
            sent = f"Content-Type={content_type!r}"
            self._problem("JSON-RPC stk_push", what, raw, response, detail, sent)

        status = response.status_code
        if status >= 500:
            problem(f"HTTP {status}")
        elif status == 200:
            try:
                answer = response.json()
            except ValueError:
                answer = None
            if not isinstance(answer, dict):
                problem("not a JSON-RPC answer")
            elif "error" not in answer:
                problem("hostile params accepted")
            else:
                data = answer["error"].get("data") or {}
                name = data.get("name")
                self.outcomes[name] += 1
                if name not in ALLOWED_RPC_ERRORS:
                    debug = (data.get("debug") or "").strip().splitlines()
                    problem(f"JSON-RPC error {name}", debug[-1][:200] if debug else "")
                elif not (data.get("message") or "").strip():
                    problem("error without a message")
        elif not 400 <= status < 500:
            problem(f"unexpected HTTP {status}")
        for line in self._tracebacks(mark):
            problem("traceback logged", line)
        if self._pushes() != pushes_before:
            problem("a prompt was sent")
        with self._db_lock():
            self.env.invalidate_all()
            if tx.state != "draft" or tx.mpesa_checkout_request_id:
                problem(f"transaction {tx.state}")
                return False
        return True

    @staticmethod
    def _not_a_phone(value):
        """What a customer could mean as their phone number is not hostile."""
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            return True
        try:
            normalize_msisdn(value)
        except PhoneError:
            return True
        return False

    def test_stk_push_json_route(self):
        tx, access_token = self._draft_tx_and_token("FUZZ-PUSH")
        good = {"reference": tx.reference, "access_token": access_token, "tx": tx}
        good_phone = "0708374149"
        ref, token = Marker("reference"), Marker("access_token")

        def substitute(value):
            """The current payment's reference and token where the markers are."""
            if isinstance(value, Marker):
                return good[str(value)]
            if isinstance(value, dict):
                return {k: substitute(v) for k, v in value.items()}
            if isinstance(value, list):
                return [substitute(v) for v in value]
            return value

        def check(raw, content_type):
            if not self._rpc_check(raw, content_type, good["tx"]):
                # A prompt went out (a finding): the next calls get a new payment.
                tx, access_token = self._draft_tx_and_token(
                    f"FUZZ-PUSH-{next(self._seq)}"
                )
                good.update(reference=tx.reference, access_token=access_token, tx=tx)

        def wrapped(value):
            return st.sampled_from(
                [[value], {"value": value}, [[value]], {"": [value]}, [value, value]]
            )

        # Text of the wrong content: nothing a customer could mean as a phone number.
        phones = hostile_rpc.filter(self._not_a_phone)
        # One param at a time is hostile, the others right, so that each is checked
        # (a right phone with a hostile reference or token must not reach M-PESA).
        wrong = {
            "reference": st.one_of(
                hostile_rpc, wrapped(ref), st.sampled_from(NASTY_TEXT[:30])
            ),
            "access_token": st.one_of(
                hostile_rpc, wrapped(token), st.sampled_from(NASTY_TEXT[:30])
            ),
            "phone": st.one_of(phones, wrapped(good_phone)),
        }
        extras = st.dictionaries(
            st.sampled_from(["amount", "provider_id", "partner_id", "Phone", "ref"]),
            hostile_rpc,
            max_size=2,
        )
        reached = Counter()

        @fuzz(120)
        @given(st.data())
        def run(data):
            scenario = data.draw(
                st.sampled_from(
                    ["reference", "access_token", "phone"] * 3
                    + ["missing", "envelope", "raw"]
                ),
                label="scenario",
            )
            content_type = data.draw(
                st.sampled_from(["application/json"] * 24 + CONTENT_TYPES),
                label="type",
            )
            if scenario == "raw":
                raw = data.draw(
                    st.one_of(st.sampled_from(JUNK_RPC), st.binary(max_size=120))
                )
                check(raw, content_type)
                return
            params = {
                "reference": good["reference"],
                "access_token": good["access_token"],
                "phone": good_phone,
            }
            if scenario in wrong:
                params[scenario] = data.draw(wrong[scenario], label=scenario)
                if scenario != "phone":
                    # a right phone, or a wrong one too
                    params["phone"] = data.draw(
                        st.one_of(st.just(good_phone), phones), label="phone"
                    )
            elif scenario == "missing":
                dropped = data.draw(
                    st.lists(st.sampled_from(list(params)), min_size=1, unique=True),
                    label="missing",
                )
                params = {k: v for k, v in params.items() if k not in dropped}
            params.update(data.draw(extras, label="extra params"))
            envelope = {"jsonrpc": "2.0", "method": "call", "params": params}
            if scenario == "envelope":
                params["phone"] = data.draw(phones, label="phone")
                envelope = data.draw(
                    st.one_of(
                        st.dictionaries(
                            st.sampled_from(["jsonrpc", "method", "id"]), hostile_rpc
                        ),
                        st.fixed_dictionaries(
                            {"params": st.just(params)}, optional={"id": hostile_rpc}
                        ),
                    ),
                    label="envelope",
                )
            ascii_only = data.draw(st.booleans(), label="ascii")
            raw = encode(to_json(substitute(envelope), ascii_only))
            reached[scenario] += 1
            check(raw, content_type)

        run()
        self._assert_no_problems()
        self.assertGreater(min(reached[s] for s in wrong), 15, reached)

    # === PORTAL === #

    def test_portal_routes(self):
        reports = self.env["ir.module.module"]._get("mpesa_reports")
        if reports.state != "installed":
            self.skipTest("the portal pages come with mpesa_reports")
        with self._db_lock():
            Receipt = self.env["mpesa.receipt"].sudo()
            values = {
                "provider_id": self.mpesa.id,
                "company_id": self.mpesa.company_id.id,
                "shortcode": SHORTCODE,
                "amount": 100.0,
            }
            mine = Receipt.create(
                {**values, "name": "QFZP000001", "partner_id": self.portal_partner.id}
            )
            other = Receipt.create(
                {**values, "name": "QFZP000002", "partner_id": self.partner.id}
            )
            self.env.flush_all()
        self.authenticate(self.portal_user.login, self.portal_user.login)
        numbers = [
            "0",
            "1",
            "2",
            "-1",
            "-0",
            "007",
            "2147483647",
            "2147483648",
            "9" * 10,
            "9" * 19,
            "9" * 40,
            "9" * 4300,
            "9" * 4301,
            HUGE,
            "1e3",
            "1.5",
            "abc",
            "%2e%2e",
            "\u0661",
            "\u00b2",
            "\uff11",
            " 1",
            "MINE",
            "OTHER",
        ]

        def send(where, seg, args):
            seg = {"MINE": str(mine.id), "OTHER": str(other.id)}.get(seg, seg)
            path = {
                "list": "/my/mpesa",
                "page": f"/my/mpesa/page/{quote(seg, safe='%')}",
                "receipt": f"/my/mpesa/{quote(seg, safe='%')}/receipt",
            }[where]
            query = urlencode(args, errors="surrogatepass")  # lone surrogates too
            url = path + (f"?{query}" if args else "")
            mark = len(self.logs.records)
            response = self.opener.get(
                self.base_url() + url, timeout=60, allow_redirects=False
            )
            status = response.status_code
            route = f"portal {where}"
            self.outcomes[status] += 1
            if status >= 500:
                self._problem(route, f"HTTP {status}", url, response)
            elif status == 200 and where == "receipt" and seg != str(mine.id):
                self._problem(route, "another receipt shown", url, response)
            elif not (status in (200, 303) or 400 <= status < 500):
                self._problem(route, f"unexpected HTTP {status}", url, response)
            for line in self._tracebacks(mark):
                self._problem(route, "traceback logged", url, response, line)

        # A NUL in the path ends in Odoo's 404 fallback (TestOdooRequestDefects); in
        # a query argument it is ours to read.
        for seg in numbers:
            send("page", seg, [])
            send("receipt", seg, [("download", seg)])
            send("list", "", [("page", seg)])
        send("list", "", [("page", "\x00"), ("download", "\x00")])
        send("receipt", "MINE", [("download", "\x00"), ("access_token", "\x00")])

        # Within what a URL can carry (a front proxy refuses longer request lines).
        arg_values = st.one_of(
            st.sampled_from(numbers),
            st.sampled_from([t for t in NASTY_TEXT if len(t) <= 4300]),
            st.text(max_size=20),
        )
        keys = [
            "page",
            "download",
            "access_token",
            "report_type",
            "receipt_id",
            "sortby",
            "filterby",
            "search",
            "kw",
            "",
        ]

        @fuzz(50)
        @given(
            st.sampled_from(["list", "page", "receipt"]),
            st.one_of(
                st.sampled_from(numbers),
                st.integers(min_value=-(10**20), max_value=10**20).map(str),
            ),
            st.lists(st.tuples(st.sampled_from(keys), arg_values), max_size=4),
        )
        def run(where, seg, args):
            send(where, seg, args)

        run()
        self._assert_no_problems()
        self.assertTrue(self.outcomes[200] and self.outcomes[404], self.outcomes)


@tagged("post_install", "-at_install")
class TestRouteDefects(RouteFuzzCommon):
    """Defects the fuzzing found in code this test's author could not change: each
    test fails until its fix (in its docstring) is applied."""

    def _last_callback(self):
        with self._db_lock():
            self.env.invalidate_all()
            return self.env["mpesa.callback"].sudo().search([], limit=1)

    def _rpc_error(self, params):
        answer = self._post("/payment/mpesa/stk_push", self._rpc(params).encode())
        self.assertEqual(answer.status_code, 200)
        error = answer.json().get("error")
        self.assertTrue(error, f"{params!r} was accepted: {answer.text[:300]}")
        return error["data"]

    def test_form_content_type_loses_the_body(self):
        """controllers/main.py: for a urlencoded or multipart body Odoo fills
        request.params from the form before the controller runs, which drains the
        stream: _read_body() then reads b"", the callback is stored with an empty
        body (answered 400 Malformed JSON, or 200 for a validation) and the body is
        lost. Fix: in _read_body(), refuse a form content type before reading, e.g.
        ``if request.httprequest.mimetype in ("application/x-www-form-urlencoded",
        "multipart/form-data"): raise UnsupportedMediaType()`` (415: Daraja always
        sends application/json); or keep the raw bytes in an ir.http._pre_dispatch
        hook for these routes, which runs before the form is parsed."""
        body = json.dumps(self._c2b_body("QFZD000001", "10.00", "X")).encode()
        for content_type in FORM_TYPES:
            before = self._last_callback()
            response = self._post(self._c2b_path("confirmation"), body, content_type)
            stored = self._last_callback()
            if 400 <= response.status_code < 500 and stored == before:
                continue  # refused whole: fine
            self.assertNotEqual(stored, before, content_type)
            self.assertEqual(stored.body, body.decode(), f"{content_type}: body lost")

    def test_stk_push_without_its_params_is_a_type_error(self):
        """controllers/main.py: mpesa_stk_push(self, reference, access_token, phone)
        has no defaults: a call without one of them is a TypeError ("missing 1
        required positional argument: 'phone'"), answered as an Odoo Server Error
        with its traceback and logged as an ERROR. Fix: ``def mpesa_stk_push(self,
        reference=None, access_token=None, phone=None)`` and refuse a reference or
        token that is not text with the same ValidationError as a wrong one."""
        tx, token = self._draft_tx_and_token("FUZZ-MISSING")
        for params in (
            {},
            {"reference": tx.reference},
            {"reference": tx.reference, "access_token": token},
            {"access_token": token, "phone": "0708374149"},
        ):
            with self.subTest(params=list(params)):
                error = self._rpc_error(params)
                self.assertEqual(error["name"], "odoo.exceptions.ValidationError")
        self.assertFalse(self._pushes())

    def test_stk_push_reference_that_is_not_text(self):
        """controllers/main.py: the reference goes to search() as it came.
        reference=["<ref>"] is read by Odoo as "in" (logging a warning): the payment
        is found and its prompt sent although the reference is not text; a NUL in
        it ("QFZ\\x00XYZ") reaches PostgreSQL: ValueError "A string literal cannot
        contain NUL (0x00) characters", an Odoo Server Error with its traceback.
        Fix: refuse ``not isinstance(reference, str) or "\\x00" in reference`` with
        the "not valid anymore" ValidationError before searching."""
        tx, token = self._draft_tx_and_token("FUZZ-REFLIST")
        for reference in ([tx.reference], "QFZ\x00XYZ", tx.reference + "\x00"):
            with self.subTest(reference=reference):
                error = self._rpc_error(
                    {"reference": reference, "access_token": token, "phone": PHONE}
                )
                self.assertEqual(error["name"], "odoo.exceptions.ValidationError")
                self.assertFalse(self._pushes(), "no prompt for this reference")

    def test_non_ascii_url_signature_is_a_500(self):
        """models/payment_provider.py: _mpesa_check_c2b_signature() and
        _mpesa_check_token() compare the URL's signature with odoo.tools.consteq
        (hmac.compare_digest), which raises TypeError "comparing strings with
        non-ASCII characters is not supported" for a non-ASCII str: a 500 on every
        callback route for a URL such as /payment/daraja/c2b/<id>/%C3%A9/validation
        or /payment/daraja/stk/1.2.%C3%A9. Fix: compare bytes,
        ``consteq(expected.encode(), (signature or "").encode())``, or refuse a
        signature that is not ASCII first."""
        with self._db_lock():
            request = self._api_request("status", "QFZD000002")
            self.env.flush_all()
        for path in (
            self._c2b_path("validation", signature="\u00e9"),
            self._c2b_path("confirmation", signature="\u00e9" * 40),
            f"/payment/daraja/stk/{quote('1.2.é')}",
            f"/payment/daraja/result/{quote(f'{request.id}.9999999999.é')}",
        ):
            with self.subTest(path=path):
                response = self._post(path, b"{}")
                self.assertEqual(response.status_code, 403)

    def test_non_ascii_access_token_is_a_type_error(self):
        """models/payment_transaction.py: _mpesa_check_access_token() passes any str
        to payment.utils.check_access_token, whose consteq raises TypeError for
        non-ASCII text (access_token "１２５０"): an Odoo Server Error with its
        traceback instead of "This payment link is not valid anymore". Fix:
        ``isinstance(token, str) and token.isascii() and check_access_token(...)``."""
        tx, _token = self._draft_tx_and_token("FUZZ-UNITOKEN")
        for token in ("\uff11\uff12\uff15\uff10", "\u00e9" * 64):
            with self.subTest(token=token):
                error = self._rpc_error(
                    {"reference": tx.reference, "access_token": token, "phone": PHONE}
                )
                self.assertEqual(error["name"], "odoo.exceptions.ValidationError")

    def test_phone_in_a_list_or_object_sends_a_prompt(self):
        """models/payment_transaction.py: _mpesa_normalize_phone() turns a list or
        an object into its repr ("['0708374149']"), in which phonenumbers finds the
        number: phone=["0708374149"] or {"value": "0708374149"} sends a real prompt.
        Fix: refuse a phone that is neither text nor an integer (booleans excluded)
        with the "Enter the M-PESA phone number that will pay." ValidationError,
        instead of str(phone)."""
        for phone in (["0708374149"], {"value": "0708374149"}, [["0708374149"]]):
            with self.subTest(phone=phone):
                tx, token = self._draft_tx_and_token(f"FUZZ-PHONE-{next(self._seq)}")
                error = self._rpc_error(
                    {"reference": tx.reference, "access_token": token, "phone": phone}
                )
                self.assertEqual(error["name"], "odoo.exceptions.ValidationError")
                self.assertFalse(self._pushes(), "a prompt was sent")
                self.assertFalse(self.emulator.prompts)

    def test_stk_success_of_another_amount_is_booked_unconfirmed(self):
        """models/payment_transaction.py: _mpesa_apply_success() verifies a
        success with the STK query only when its amount matches. A callback on a
        valid URL claiming KES 10 (or 0) for a KES 1,250 prompt still open on the
        phone registers its receipt at once (right: the ledger shows it, the payment
        awaits review), but with the default verification "verified", so that
        mpesa_reconciliation books it: a posted entry and a statement line in the
        M-PESA journal that M-PESA never confirmed (a forged success of another
        amount enters the books; one of the right amount does not). Fix: register
        that receipt unconfirmed (verification "pending", booked by _mpesa_feed()
        once the STK query or Transaction Status confirms it: the paybill
        confirmation job must then know an STK receipt from a paybill one), or query
        before registering it (test_amount_mismatch_is_never_paid expects the
        receipt at once, so it would change)."""
        with self._db_lock():
            tx = self._pushed_tx(next(self._seq))
            token = self.mpesa._mpesa_make_token("stk", tx.id)
            body = self._stk_body(tx, True, "QFZD000004")
            body["Body"]["stkCallback"]["CallbackMetadata"]["Item"][0]["Value"] = 10
            before = self._money()
        response = self._post(f"/payment/daraja/stk/{token}", json.dumps(body).encode())
        self.assertEqual(response.status_code, 200)
        with self._db_lock():
            self.assertEqual(self._money(), before, "nothing booked unconfirmed")

    def test_c2b_provider_id_of_5000_digits_is_a_500(self):
        """controllers/main.py: the C2B route's <int:provider_id> (Odoo's signed int
        converter) turns a path segment of more than 4300 digits into a ValueError
        ("Exceeds the limit (4300 digits) for integer string conversion") while
        matching the URL: a 500 before any controller runs. Fix: read the segment
        as text, as mpesa_reports' portal routes now do:
        ``<string(maxlength=10):provider_id>`` and ``int(provider_id)`` when it is
        ASCII digits, else NotFound; or an ir.http._get_converters override whose
        "int" converter raises werkzeug.routing.ValidationError on that ValueError."""
        body = json.dumps(self._c2b_body("QFZD000003", "10.00", "X")).encode()
        response = self._post(self._c2b_path("validation", provider_id=HUGE), body)
        self.assertIn(response.status_code, (403, 404))


@tagged("post_install", "-at_install")
class TestOdooRequestDefects(RouteFuzzCommon):
    """Odoo's own request handling breaks on these before any code of ours runs; each
    fix is a server-wide hook an addon can add (in the docstrings). They fail until
    one is."""

    def test_param_named_self_is_a_500(self):
        """odoo/http.py route_wrapper: filter_kwargs() keeps a parameter named
        "self" (every controller method has one) and calls ``endpoint(self, **params)``:
        TypeError "got multiple values for argument 'self'". A query string
        ?self=1 on a callback URL is a 500 and its body is not stored; params
        {"self": 1} on the JSON route an Odoo Server Error. Fix: an ir.http override
        ``_dispatch(cls, endpoint)`` that does ``request.params.pop("self", None)``
        before super()."""
        with self._db_lock():
            tx = self._pushed_tx(next(self._seq))
            token = self.mpesa._mpesa_make_token("stk", tx.id)
        response = self._post(f"/payment/daraja/stk/{token}?self=1", b"{}")
        self.assertLess(response.status_code, 500, "callback URL with ?self=1")
        draft, access_token = self._draft_tx_and_token("FUZZ-SELF")
        answer = self._post(
            "/payment/mpesa/stk_push",
            self._rpc(
                {
                    "reference": draft.reference,
                    "access_token": access_token,
                    "phone": "x",
                    "self": 1,
                }
            ).encode(),
        ).json()
        self.assertEqual(
            answer["error"]["data"]["name"], "odoo.exceptions.ValidationError"
        )

    def test_json_rpc_body_odoo_cannot_read(self):
        """odoo/http.py JsonRPCDispatcher.dispatch: the body is parsed catching only
        ValueError and AttributeError, and params is passed to dict() unchecked:
        10000 nested arrays are a RecursionError, params null/a list/a string a
        TypeError or ValueError, all answered as Odoo Server Errors with their
        traceback (and logged as ERROR). Fix: a JsonRPCDispatcher subclass (same
        routing_type "json": Odoo then uses it for every JSON route) whose
        dispatch() parses the body first and, as core does for a ValueError,
        ``werkzeug.exceptions.abort(Response("Invalid JSON data", status=400))`` for
        a RecursionError and "Invalid JSON-RPC data" when params is not an object,
        then calls super()."""
        for raw in (
            b'{"jsonrpc":"2.0","method":"call","params":'
            + b"[" * 10000
            + b"]" * 10000
            + b"}",
            b'{"jsonrpc":"2.0","method":"call","params":null}',
            b'{"jsonrpc":"2.0","method":"call","params":[1, 2]}',
            b'{"jsonrpc":"2.0","method":"call","params":"ab"}',
        ):
            with self.subTest(raw=show(raw, 60)):
                response = self._post("/payment/mpesa/stk_push", raw)
                if response.status_code == 200:
                    name = response.json()["error"]["data"]["name"]
                    self.assertIn(name, ALLOWED_RPC_ERRORS)
                else:
                    self.assertEqual(response.status_code, 400)

    def test_nul_in_a_portal_path_is_a_500(self):
        """addons/http_routing/models/ir_http.py _handle_error: a 404 or 403 on a
        website=True route (the portal's), or a path no route matches, is looked up
        as an attachment URL by ir.http._serve_fallback(), and a NUL in the path
        (/my/mpesa/page/%00: our route answers 404) reaches PostgreSQL: ValueError
        "A string literal cannot contain NUL (0x00) characters", a 500. Fix: an
        ir.http override of _serve_fallback() returning None (the 404 page) when
        "\\x00" is in request.httprequest.path."""
        self.authenticate(self.portal_user.login, self.portal_user.login)
        for path in ("/my/mpesa/page/%00", "/my/mpesa/%00/receipt", "/my/%00"):
            with self.subTest(path=path):
                response = self.opener.get(
                    self.base_url() + path, allow_redirects=False
                )
                self.assertLess(response.status_code, 500)
