"""Outgoing POSTs to the merchant (callbacks, validation, results) and their log."""

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass
class Delivery:
    """One POST attempt to a merchant URL."""

    kind: str  # stk_callback, c2b_validation, c2b_confirmation, result, timeout
    url: str
    body: bytes  # exactly the bytes sent
    payload: Any
    status: int | None = None  # None when the connection failed or timed out
    response_text: str = ""
    error: str | None = None
    sent_at: float = 0.0

    def response_json(self):
        try:
            return json.loads(self.response_text)
        except ValueError:
            return None

    def as_dict(self):
        return {
            "kind": self.kind,
            "url": self.url,
            "body": self.body.decode(),
            "status": self.status,
            "response_text": self.response_text,
            "error": self.error,
            "sent_at": self.sent_at,
        }


class Courier:
    """Posts JSON bodies and keeps a thread-safe log of every attempt."""

    def __init__(self, timeout=10.0):
        self.timeout = timeout
        self._cond = threading.Condition()
        self._log = []
        # Callbacks go to local/test URLs: never through an environment proxy.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def post(self, kind, url, body, timeout=None):
        delivery = Delivery(kind, url, body, json.loads(body), sent_at=time.time())
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with self._opener.open(request, timeout=timeout or self.timeout) as resp:
                delivery.status = resp.status
                delivery.response_text = resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            delivery.status = exc.code
            delivery.response_text = exc.read().decode("utf-8", "replace")
            delivery.error = str(exc)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            # Connection refused, timeout, bad URL: M-PESA just logs and moves on.
            delivery.error = f"{type(exc).__name__}: {exc}"
        with self._cond:
            self._log.append(delivery)
            self._cond.notify_all()
        return delivery

    def post_repeated(self, kind, url, body, repeat=1, concurrent=False):
        """Send the identical body `repeat` times, in sequence or all at once."""
        if not concurrent or repeat < 2:
            return [self.post(kind, url, body) for _ in range(repeat)]
        barrier = threading.Barrier(repeat)
        results = []

        def fire():
            barrier.wait()
            results.append(self.post(kind, url, body))

        threads = [threading.Thread(target=fire, daemon=True) for _ in range(repeat)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    @property
    def deliveries(self):
        with self._cond:
            return list(self._log)

    def clear(self):
        with self._cond:
            self._log.clear()

    def wait_for(self, count, timeout=10.0, kind=None):
        """Block until `count` deliveries (of `kind`) are logged."""

        def matching():
            return [d for d in self._log if kind is None or d.kind == kind]

        deadline = time.monotonic() + timeout
        with self._cond:
            while len(matching()) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    found = matching()
                    seen = [(d.kind, d.url, d.status) for d in found]
                    raise TimeoutError(
                        f"expected {count} {kind or 'any'} deliveries, got {seen}"
                    )
                self._cond.wait(remaining)
            return matching()


def spawn(target, *args):
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread
