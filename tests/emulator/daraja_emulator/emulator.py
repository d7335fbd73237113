"""DarajaEmulator: the public, in-process API used by tests and the CLI."""

import json
import threading

from . import c2b, helpers
from .callbacks import Courier
from .credentials import KeyPair, LazyKeyPair
from .scenario import ACTION_CODES, Scenario
from .server import EmulatorHTTPServer
from .state import Shortcode, State

DEFAULT_CONSUMER_KEY = "emulator-key"
DEFAULT_CONSUMER_SECRET = "emulator-secret"
DEFAULT_SHORTCODE = "174379"
DEFAULT_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
DEFAULT_INITIATOR = "testapi"
# The initiator password the emulator's shortcodes expect by default (the one
# Safaricom's sandbox test credentials give "testapi").
DEFAULT_INITIATOR_PASSWORD = "Safaricom999!*!"
# A fixed credential, accepted as is only with fixed_credentials=True (an explicit
# choice, for a quick manual trial): by default, as on Daraja, only the initiator
# password encrypted with emu.certificate_pem is accepted, and this string is refused.
DEFAULT_SECURITY_CREDENTIAL = "emulator-credential"


class DarajaEmulator:
    def __init__(
        self,
        host="127.0.0.1",
        port=0,
        auto_complete=True,
        production=False,
        prompt_timeout=90.0,
        validation_timeout=8.0,
        expires_in_as_string=False,
        token_lifetime=3599,
        callback_timeout=10.0,
        result_delay=0.05,
        fixed_credentials=False,
        key_pair=None,
    ):
        self.host, self.port = host, port
        # False (the default): only the initiator password encrypted with this
        # emulator's certificate (certificate_pem) is accepted, as on Daraja; True:
        # a shortcode's fixed security_credential string is accepted as well.
        self.fixed_credentials = fixed_credentials
        self._key_pair = key_pair or LazyKeyPair()
        self.auto_complete = auto_complete
        self.production = production
        self.prompt_timeout = prompt_timeout
        self.validation_timeout = validation_timeout
        self.expires_in_as_string = expires_in_as_string
        self.result_delay = result_delay
        self.queue_timeouts = False  # True: initiator APIs answer on QueueTimeOutURL
        # True (with queue_timeouts): the Result still follows the queue timeout, as
        # integrators report of a busy Daraja (community reports, not Safaricom's pages).
        self.result_after_timeout = False
        # True: an initiator API (status, reversal, balance, B2C) takes the request and
        # later POSTs its Result, but its acknowledgement never reaches the caller (the
        # connection drops), like the STK scenario's response_lost.
        self.initiator_response_lost = False
        # True: the Result of a status, reversal or balance request is POSTed (and
        # answered) before the acknowledgement is returned. Safaricom documents no
        # order between the two; the Result usually follows within moments, so the
        # caller may not have committed its request yet when it arrives.
        self.result_before_ack = False
        # True: an initiator API's Result (after its queue timeout, with
        # queue_timeouts and result_after_timeout) is made when M-PESA would send it
        # (the money moves, the receipt code is given) but kept back, unchanged,
        # until release_results(): a Result that comes late, on demand.
        self.hold_results = False
        self._held = []
        self.state = State(token_lifetime)
        self.courier = Courier(callback_timeout)
        self._request_log = []
        self._stopping = threading.Event()
        self._server = self._thread = None
        self.add_app(DEFAULT_CONSUMER_KEY, DEFAULT_CONSUMER_SECRET)
        self.add_shortcode(DEFAULT_SHORTCODE, DEFAULT_PASSKEY)

    # -- lifecycle ------------------------------------------------------------
    def start(self):
        self._stopping.clear()
        self._server = EmulatorHTTPServer((self.host, self.port), self)
        # A short poll interval makes stop() (and test teardown) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(0.05,),
            name="daraja-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()
        with self.state.lock:
            for prompt in self.state.prompts.values():
                prompt.event.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = self._thread = None

    def __enter__(self):
        return self.start() if self._server is None else self

    def __exit__(self, *exc):
        self.stop()

    @property
    def base_url(self):
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- security credentials -------------------------------------------------------
    @property
    def key_pair(self):
        """The emulator's RSA key pair (made on first use, never on disk)."""
        pair = self._key_pair
        return pair if isinstance(pair, KeyPair) else pair.get()

    @property
    def certificate_pem(self):
        """The certificate to encrypt initiator passwords with (plays Safaricom's
        SandboxCertificate.cer); also at GET /emulator/certificate."""
        return self.key_pair.certificate_pem

    def security_credential(self, password=DEFAULT_INITIATOR_PASSWORD):
        """``password`` encrypted with the emulator's certificate, as a client would."""
        return self.key_pair.encrypt(password)

    # Workers call these to stay quiet after stop() or reset().
    def pause(self, seconds):
        """Sleep; False if the emulator stopped meanwhile."""
        return not self._stopping.wait(seconds or 0)

    def alive(self, generation):
        return not self._stopping.is_set() and generation == self.state.generation

    # -- configuration ----------------------------------------------------------
    def add_app(self, consumer_key, consumer_secret):
        with self.state.lock:
            self.state.apps[consumer_key] = consumer_secret

    def add_shortcode(
        self,
        shortcode,
        passkey=None,
        kind="paybill",
        till=None,
        external_validation=True,
        initiator=DEFAULT_INITIATOR,
        security_credential=DEFAULT_SECURITY_CREDENTIAL,
        balance=0.0,
        organization_name="Emulator Merchant",
        initiator_password=DEFAULT_INITIATOR_PASSWORD,
    ):
        if kind not in ("paybill", "till"):
            raise ValueError("kind must be 'paybill' or 'till'")
        code = Shortcode(
            str(shortcode),
            passkey,
            kind,
            str(till) if till else None,
            external_validation,
            initiator,
            security_credential,
            float(balance),
            organization_name,
            initial_balance=float(balance),
            initiator_password=initiator_password,
        )
        with self.state.lock:
            self.state.shortcodes[code.shortcode] = code
        return code

    def set_scenario(self, phone, **fields):
        scenario = Scenario(**fields)
        with self.state.lock:
            self.state.scenarios[str(phone)] = scenario
        return scenario

    def set_default_scenario(self, **fields):
        with self.state.lock:
            self.state.default_scenario = Scenario(**fields)
        return self.state.default_scenario

    def set_clock(self, moment=None):
        """Make M-PESA's clock read ``moment`` (Kenya time if naive) and run on from
        there, so payments made now carry that date; None: back to the real time. The
        clock is process-wide (one per emulator process, as the CLI runs it)."""
        helpers.set_clock(moment)

    def reset(self):
        """Forget prompts, deliveries, scenarios, URLs and payments; keep apps. The
        clock is the real one again."""
        helpers.set_clock(None)
        self.state.reset()
        with self.state.lock:
            self._held.clear()
        self.courier.clear()
        self._request_log.clear()

    def invalidate_tokens(self):
        self.state.invalidate_tokens()

    # -- inspection -------------------------------------------------------------
    @property
    def deliveries(self):
        return self.courier.deliveries

    def wait_for_deliveries(self, count, timeout=10.0, kind=None):
        return self.courier.wait_for(count, timeout, kind)

    @property
    def prompts(self):
        with self.state.lock:
            return dict(self.state.prompts)

    @property
    def payments(self):
        with self.state.lock:
            return {k: dict(v) for k, v in self.state.payments.items()}

    @property
    def request_log(self):
        return list(self._request_log)

    @property
    def held_results(self):
        """The Results kept back by ``hold_results``, oldest first: (url, body as
        a dict), the body exactly as it will be POSTed."""
        with self.state.lock:
            return [(url, json.loads(body)) for url, body in self._held]

    def hold_result(self, url, body):
        with self.state.lock:
            self._held.append((url, body))

    def release_results(self):
        """POST the Results kept back (oldest first) to their ResultURL, now;
        returns their deliveries."""
        with self.state.lock:
            held, self._held = self._held, []
        return [self.courier.post("result", url, body) for url, body in held]

    def log_request(self, method, path, body):
        self._request_log.append((method, path, body))

    def balance(self, shortcode=DEFAULT_SHORTCODE):
        return self.state.find_shortcode(shortcode, till_ok=True).balance

    # -- actions ----------------------------------------------------------------
    def resolve_prompt(self, checkout_request_id, action):
        """Answer an open prompt like the customer would: approve/decline/timeout."""
        if action not in ACTION_CODES:
            raise ValueError(f"action must be one of {sorted(ACTION_CODES)}")
        with self.state.lock:
            prompt = self.state.prompts[checkout_request_id]
            if prompt.status != "open" or prompt.decision or prompt.forced_code:
                raise ValueError(f"prompt {checkout_request_id} is not open")
            prompt.decision = action
            prompt.event.set()
        return prompt

    def c2b_pay(
        self,
        shortcode,
        msisdn,
        amount,
        bill_ref,
        msisdn_style=None,
        api_version="v2",
        trans_id=None,
        first_name="JOHN",
    ):
        return c2b.pay(
            self,
            shortcode,
            msisdn,
            amount,
            bill_ref,
            msisdn_style,
            api_version,
            trans_id,
            first_name,
        )

    def add_payment(
        self,
        amount,
        phone="254708374149",
        shortcode=DEFAULT_SHORTCODE,
        bill_ref="",
        time=None,
        receipt=None,
        source="c2b",
        first_name="JOHN",
    ):
        """Seed the ledger (for status, reversal, balance and pull tests)."""
        code = self.state.find_shortcode(shortcode, till_ok=True)
        if code is None:
            raise ValueError(f"unknown shortcode {shortcode!r}")
        moment = time or helpers.kenya_now()
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=helpers.KENYA)
        receipt = receipt or self.state.new_receipt()
        self.state.record_payment(
            code,
            receipt,
            amount,
            phone,
            bill_ref,
            moment.astimezone(helpers.KENYA),
            source,
            first_name,
        )
        return receipt

    def reverse_payment(self, receipt, shortcode=DEFAULT_SHORTCODE):
        """Reverse a payment outside Daraja, as the organisation's portal does: a
        later reversal request gets R000001, a status query says "Reversed", and
        neither names this reversal's TransactionID, which is returned."""
        code = self.state.find_shortcode(shortcode, till_ok=True)
        payment = self.state.payments[receipt]
        reversal = self.state.new_receipt()
        self.state.reverse_payment(code, payment, reversal)
        return reversal

    def scenario_for(self, phone):
        """The scenario that applies to a paying phone (set, magic or default)."""
        return self.state.scenario_for(phone)
