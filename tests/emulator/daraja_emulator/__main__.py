"""Run the emulator: python -m daraja_emulator --port 8070 [--manual]."""

import argparse
import signal
import threading

from .credentials import KeyPair
from .emulator import DEFAULT_INITIATOR_PASSWORD, DEFAULT_PASSKEY, DarajaEmulator


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="daraja_emulator", description="Local Safaricom Daraja API emulator"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8070)
    parser.add_argument(
        "--manual",
        action="store_true",
        help="STK prompts wait for the virtual phone (/phone)",
    )
    parser.add_argument("--prompt-timeout", type=float, default=90.0)
    parser.add_argument(
        "--production",
        action="store_true",
        help="apply production rules to C2B URL registration",
    )
    parser.add_argument("--consumer-key")
    parser.add_argument("--consumer-secret")
    parser.add_argument("--shortcode")
    parser.add_argument("--passkey")
    parser.add_argument(
        "--initiator-password",
        default=DEFAULT_INITIATOR_PASSWORD,
        help="what a SecurityCredential must decrypt to (default: %(default)s)",
    )
    parser.add_argument(
        "--fixed-credentials",
        action="store_true",
        help="also accept the fixed test credential 'emulator-credential' (by "
        "default only credentials encrypted with the emulator's certificate, GET "
        "/emulator/certificate, are accepted, as on Daraja)",
    )
    parser.add_argument(
        "--strict-credentials",
        action="store_true",
        help="the default; kept for older scripts",
    )
    parser.add_argument(
        "--key-file",
        help="keep the emulator's private key in this file (made if missing), so "
        "that credentials encrypted with its certificate stay valid across restarts",
    )
    parser.add_argument(
        "--till",
        action="append",
        default=[],
        metavar="STORE:TILL:PASSKEY",
        help="also a Buy Goods till: its store number (the shortcode Daraja knows), "
        "till number and passkey (repeatable)",
    )
    parser.add_argument(
        "--balance",
        action="append",
        default=[],
        metavar="SHORTCODE=AMOUNT",
        help="a shortcode's opening balance (its Utility Account), e.g. what the "
        "books already hold (repeatable)",
    )
    args = parser.parse_args(argv)

    emu = DarajaEmulator(
        args.host,
        args.port,
        auto_complete=not args.manual,
        production=args.production,
        prompt_timeout=args.prompt_timeout,
        fixed_credentials=args.fixed_credentials,
        key_pair=KeyPair.from_file(args.key_file) if args.key_file else None,
    )
    if args.consumer_key or args.consumer_secret:
        if not (args.consumer_key and args.consumer_secret):
            parser.error("--consumer-key and --consumer-secret go together")
        emu.add_app(args.consumer_key, args.consumer_secret)
    for code in emu.state.shortcodes.values():
        code.initiator_password = args.initiator_password
    if args.shortcode:
        emu.add_shortcode(
            args.shortcode,
            args.passkey or DEFAULT_PASSKEY,
            initiator_password=args.initiator_password,
        )

    for spec in args.till:
        store, _, rest = spec.partition(":")
        till, _, passkey = rest.partition(":")
        if not (store and till):
            parser.error(f"--till {spec}: STORE:TILL[:PASSKEY]")
        emu.add_shortcode(
            store,
            passkey or DEFAULT_PASSKEY,
            kind="till",
            till=till,
            initiator_password=args.initiator_password,
        )
    for spec in args.balance:
        shortcode, _, amount = spec.partition("=")
        code = emu.state.find_shortcode(shortcode, till_ok=True)
        try:
            balance = float(amount)
        except ValueError:
            parser.error(f"--balance {spec}: SHORTCODE=AMOUNT")
        if code is None:
            parser.error(f"--balance {spec}: no such shortcode")
        code.balance = code.initial_balance = balance

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    emu.start()
    mode = "manual" if args.manual else "auto-complete"
    print(
        f"Daraja emulator on {emu.base_url} ({mode}); virtual phone at "
        f"{emu.base_url}/phone; certificate for SecurityCredential at "
        f"{emu.base_url}/emulator/certificate",
        flush=True,
    )
    while not stop.wait(0.5):
        pass
    emu.stop()
    print("Daraja emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
