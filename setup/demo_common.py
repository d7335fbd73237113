"""What the demo's history scripts share (demo_history.py, demo_story.py,
demo_check.py): the demo's M-PESA numbers and customers, logging and waiting."""

import time

PAYBILL = "174379"
TILL_STORE, TILL = "600100", "600200"  # Buy Goods: store number and till number
TILL_PASSKEY = "demo-till-passkey"
# The demo customers (setup/demo_data.py) as M-PESA knows their numbers.
PHONES = {
    "wanjiku": "254712345678",
    "otieno": "254722000111",
    "amina": "254733000222",
    "kiprop": "254110000333",
    "njeri": "254745000444",
    "mamamboga": "254701000555",
}
FIRST_NAMES = {
    "wanjiku": "WANJIKU",
    "otieno": "OTIENO",
    "amina": "AMINA",
    "kiprop": "KIPROP",
    "njeri": "NJERI",
    "mamamboga": "GRACE",
}


class DemoError(RuntimeError):
    pass


def log(message):
    print(f"[demo_history] {message}", flush=True)


def wait_until(predicate, what, timeout=30.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise DemoError(f"timed out waiting for {what}")
