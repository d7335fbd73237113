"""B2C (Business to Customer) payment requests: money sent from a B2C shortcode to a
phone, acknowledged at once and answered later on ResultURL (or QueueTimeOutURL).

Shapes, from Safaricom's B2C page (https://developer.safaricom.co.ke/APIs/BusinessToCustomer,
endpoint /mpesa/b2c/v3/paymentrequest; v1 still seen) as integrators copy it
(Ghostscypher/php-mpesa mpesa_endpoints.md "B2C"; Jonnie254/mpesa-daraja-Integration
B2CTransactionRequest.java; go-pesa/go-pesa internal/types/b2c.go), and
/work/shared/daraja/README.md:
- request: OriginatorConversationID (v3: the caller's own id, echoed back),
  InitiatorName, SecurityCredential, CommandID (BusinessPayment, SalaryPayment or
  PromotionPayment), Amount, PartyA (the B2C shortcode), PartyB (the phone),
  Remarks, QueueTimeOutURL, ResultURL, Occassion (Daraja's spelling; "Occasion" is
  accepted too);
- acknowledgement: ConversationID, OriginatorConversationID, ResponseCode "0",
  ResponseDescription "Accept the service request successfully.";
- Result: ResultType, ResultCode, ResultDesc, OriginatorConversationID,
  ConversationID, TransactionID and ResultParameters TransactionAmount,
  TransactionReceipt, B2CRecipientIsRegisteredCustomer ("Y"),
  B2CChargesPaidAccountAvailableFunds, ReceiverPartyPublicName ("2547... - NAME"),
  TransactionCompletedDateTime ("17.07.2017 10:54:57"),
  B2CUtilityAccountAvailableFunds, B2CWorkingAccountAvailableFunds; ReferenceData
  QueueTimeoutURL.

Failures (ResultCode in the Result, after a normal acknowledgement), as listed in
Safaricom's result codes and by integrators (support.peachpayments.com "Mpesa error
codes"; paylod.dev/docs/errors):
- 2001 "The initiator information is invalid.": the SecurityCredential does not
  decrypt to the initiator's password (see orgapi.INVALID_INITIATOR);
- 1 "The balance is insufficient for the transaction.": the B2C shortcode's
  balance (``Shortcode.balance``) is below the amount;
- 2040 "Credit Party customer type (Unregistered or Registered Customer) can't be
  supported by the service.": the phone is not an M-PESA customer; magic phone
  254700002040 (emulator's choice);
- 8006 "The security credential is locked.": the initiator is locked after wrong
  passwords; magic phone 254700008006 (emulator's choice; on Daraja it is the
  initiator's state, whatever the phone);
- a queue timeout: ``emu.queue_timeouts`` as for the other initiator APIs;
- a result that never comes: ``emu.b2c_silent = True`` (acknowledged, then
  nothing on either URL), as integrators report of a busy Daraja.
"""

from . import api, helpers, orgapi
from .callbacks import spawn

COMMANDS = ("BusinessPayment", "SalaryPayment", "PromotionPayment")
INSUFFICIENT = (1, "The balance is insufficient for the transaction.")
MAGIC_PHONES = {
    "254700002040": (
        2040,
        (
            "Credit Party customer type (Unregistered or Registered Customer) "
            "can't be supported by the service."
        ),
    ),
    "254700008006": (8006, "The security credential is locked."),
}


def payment_request(emu, data, version="v3"):
    code = emu.state.find_shortcode(data.get("PartyA"))
    if code is None:
        api.bad("Invalid PartyA")
    if data.get("InitiatorName") != code.initiator:
        api.bad("Invalid InitiatorName")
    # The same decryption as the other initiator APIs (api._credential_ok).
    credential_ok = api._credential_ok(emu, code, data.get("SecurityCredential"))
    if data.get("CommandID") not in COMMANDS:
        api.bad("Invalid CommandID")
    amount = helpers.whole_number(data.get("Amount"))
    if amount is None or not 1 <= amount <= api.MAX_AMOUNT:
        api.bad("Invalid Amount")
    if not helpers.phone_ok(data.get("PartyB")):
        api.bad("Invalid PartyB")
    for key in ("ResultURL", "QueueTimeOutURL"):
        if not helpers.url_ok(data.get(key)):
            api.bad(f"Invalid {key}")
    if not helpers.text_ok(data.get("Remarks"), 100):
        api.bad("Invalid Remarks")
    originator = data.get("OriginatorConversationID")
    if version == "v3" and not helpers.text_ok(originator, 100):
        api.bad("Invalid OriginatorConversationID")
    phone = str(data["PartyB"])
    ack = {
        "ConversationID": helpers.conversation_id(helpers.kenya_now()),
        "OriginatorConversationID": originator or helpers.request_id(),
        "ResponseCode": "0",
        "ResponseDescription": orgapi.ACK,
    }

    def build(ack):
        return _result(emu, code, ack, data, phone, amount, credential_ok)

    if not getattr(emu, "b2c_silent", False):
        spawn(orgapi._send, emu, ack, data, build, emu.state.generation)
    return 200, None if emu.initiator_response_lost else ack


def _result(emu, code, ack, data, phone, amount, credential_ok):
    reference = {"Key": "QueueTimeoutURL", "Value": data["QueueTimeOutURL"]}
    receipt = emu.state.new_receipt()
    if not credential_ok:
        error = orgapi.INVALID_INITIATOR
    else:
        error = MAGIC_PHONES.get(phone)
    if error is None:
        with emu.state.lock:
            if code.balance < amount:
                error = INSUFFICIENT
            else:
                code.balance -= amount
                balance = code.balance
                _payments(emu)[receipt] = {
                    "receipt": receipt,
                    "shortcode": code.shortcode,
                    "phone": phone,
                    "amount": amount,
                    "originator": ack["OriginatorConversationID"],
                }
    if error:
        return orgapi._result(ack, *error, receipt, reference=reference)
    completed = helpers.kenya_now().strftime("%d.%m.%Y %H:%M:%S")
    return orgapi._result(
        ack,
        0,
        orgapi.SUCCESS,
        receipt,
        [
            ("TransactionAmount", amount),
            ("TransactionReceipt", receipt),
            ("B2CRecipientIsRegisteredCustomer", "Y"),
            ("B2CChargesPaidAccountAvailableFunds", 0.0),
            ("ReceiverPartyPublicName", f"{phone} - EMULATED CUSTOMER"),
            ("TransactionCompletedDateTime", completed),
            ("B2CUtilityAccountAvailableFunds", float(helpers.money(balance))),
            ("B2CWorkingAccountAvailableFunds", 0.0),
        ],
        reference,
    )


def _payments(emu):
    """B2C payments made (receipt -> details), for tests and the control API."""
    return vars(emu).setdefault("b2c_payments", {})
