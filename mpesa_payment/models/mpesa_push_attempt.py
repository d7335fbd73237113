import hashlib
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..daraja.phone import mask_msisdn

# The limits on the provider count prompts over this window.
LIMIT_WINDOW = timedelta(hours=1)
# Attempts older than this serve no limit any more.
KEEP_ATTEMPTS = timedelta(days=2)


def _lock_key(key):
    """A 64-bit advisory lock key for a push lock key ("account.move,7")."""
    digest = hashlib.blake2b(f"mpesa_push:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class MpesaPushAttempt(models.Model):
    """One STK prompt we let through to Daraja: what the per-document, per-phone and
    per-address limits count. Written in its own transaction, so that a push that
    fails afterwards (Daraja refused, timeout) still counts."""

    _name = "mpesa.push.attempt"
    _description = "M-PESA Payment Prompt Sent"
    _order = "id desc"

    provider_id = fields.Many2one(
        "payment.provider", required=True, ondelete="cascade", index=True
    )
    transaction_id = fields.Many2one("payment.transaction", ondelete="set null")
    document = fields.Char(
        index=True, help="model,id of each document paid, e.g. 'account.move,7'."
    )
    msisdn = fields.Char(index=True)
    client_address = fields.Char(index=True)
    user_id = fields.Many2one(
        "res.users", index="btree_not_null", help="The staff member who asked."
    )

    @api.model
    def _documents_of(self, tx):
        """The documents a transaction pays, else the transaction itself."""
        documents = []
        for fname in ("invoice_ids", "sale_order_ids"):
            if fname in tx._fields:
                documents += list(tx[fname])
        return documents or [tx]

    @api.model
    def _lock_for_push(self, tx, msisdn):
        """Take the push locks of this transaction's documents and of the phone until
        the request's transaction ends; refuse at once while another push for one of
        them is being sent. The phone's lock makes its limit exact under concurrency;
        the client address is not locked (many customers share one address on
        Kenyan mobile networks), so its limit may be passed by a concurrent few.

        An advisory lock refuses the concurrent push without waiting (a row lock on
        the invoice itself would block every write on the invoice during the Daraja
        call). Then the key's row in mpesa.push.lock is touched: if a push for the
        same key committed after this request's snapshot was taken, that update is a
        serialization failure, and Odoo retries the whole request on a snapshot
        that sees the earlier push (and counts it)."""
        documents = sorted(self._documents_of(tx), key=lambda d: (d._name, d.id))
        locks = [(f"{doc._name},{doc.id}", doc.display_name) for doc in documents]
        locks.append((f"phone,{msisdn}", mask_msisdn(msisdn)))
        for key, label in locks:
            self.env.cr.execute(
                "SELECT pg_try_advisory_xact_lock(%s)", [_lock_key(key)]
            )
            if not self.env.cr.fetchone()[0]:
                raise ValidationError(
                    self.env._(
                        "A payment request for %(what)s is being sent right now. "
                        "Check the phone, and wait a minute before trying again.",
                        what=label,
                    )
                )
            self.env.cr.execute(
                """
                INSERT INTO mpesa_push_lock (document, pushed_at)
                VALUES (%s, now() at time zone 'UTC')
                ON CONFLICT (document) DO UPDATE SET pushed_at = EXCLUDED.pushed_at
                """,
                [key],
            )

    @api.model
    def _admit(self, tx, msisdn, client_address, requested_by=None):
        """Refuse a push over the provider's limits; else count it. Runs under the
        push locks."""
        provider = tx.provider_id.sudo()
        since = fields.Datetime.now() - LIMIT_WINDOW
        keys = [f"{doc._name},{doc.id}" for doc in self._documents_of(tx)]
        checks = [
            (
                provider.mpesa_push_limit_document,
                [("document", "in", keys)],
                "document",
            ),
            (provider.mpesa_push_limit_phone, [("msisdn", "=", msisdn)], "phone"),
            (
                provider.mpesa_push_limit_address,
                [("client_address", "=", client_address)],
                "address",
            ),
        ]
        if requested_by:
            checks.append(
                (
                    provider.mpesa_push_limit_user,
                    [("user_id", "=", requested_by.id)],
                    "user",
                )
            )
        for limit, domain, what in checks:
            if what == "address" and not client_address:
                continue
            sent = self.sudo().search_count(
                [("provider_id", "=", provider.id), ("create_date", ">=", since)]
                + domain,
                limit=limit or 1,
            )
            if limit and sent >= limit:
                raise ValidationError(self._limit_message(what, msisdn))
        # One row per prompt (keyed on its first document), so phones and
        # addresses count prompts, not documents.
        self.sudo().create(
            {
                "provider_id": provider.id,
                "transaction_id": tx.id,
                "document": keys[0],
                "msisdn": msisdn,
                "client_address": client_address,
                "user_id": requested_by.id if requested_by else False,
            }
        )

    def _limit_message(self, what, msisdn):
        texts = {
            "document": self.env._(
                "Too many payment requests for this document in the last hour. "
                "Please try again later, or pay by paybill."
            ),
            "phone": self.env._(
                "Too many payment requests were sent to %(phone)s in the last hour. "
                "Please try again later, or pay by paybill.",
                phone=mask_msisdn(msisdn),
            ),
            "address": self.env._(
                "Too many payment requests from your connection in the last hour. "
                "Please try again later."
            ),
            "user": self.env._(
                "You sent too many payment requests in the last hour. Send the "
                "customer a payment link instead, or try again later."
            ),
        }
        return texts[what]

    @api.autovacuum
    def _gc_old_attempts(self):
        self.sudo().search(
            [("create_date", "<", fields.Datetime.now() - KEEP_ATTEMPTS)]
        ).unlink()


class MpesaPushLock(models.Model):
    """One row per document or phone ever prompted for: the row a push updates under
    its lock (see MpesaPushAttempt._lock_for_push)."""

    _name = "mpesa.push.lock"
    _description = "M-PESA Payment Prompt Document Lock"
    _log_access = False

    document = fields.Char(required=True, help="'account.move,7' or 'phone,2547...'")
    pushed_at = fields.Datetime()

    _sql_constraints = [
        ("document_unique", "UNIQUE(document)", "One lock row per document."),
    ]
