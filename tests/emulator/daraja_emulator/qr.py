"""Dynamic QR: POST /mpesa/qrcode/v1/generate answers a QR code as a base64 PNG.

Shapes from Safaricom's Dynamic QR page (developer.safaricom.co.ke/apis/DynamicQRCode,
as mirrored in github.com/JacksCodeVault/mpesa-daraja-mcp
daraja_docs_v3/docs/DynamicQRCode.md) and the mpesa-rust client
(docs.rs/crate/mpesa, src/services/dynamic_qr.rs):
request {"MerchantName", "RefNo", "Amount" (numeric), "TrxCode" (BG Buy Goods,
WA Withdraw at agent till, PB Paybill, SM Send Money to a phone, SB Send to
Business), "CPI" (credit party: till, paybill, agent or phone), "Size" (pixels, the
image is square)}; answer {"ResponseCode", "RequestID", "ResponseDescription",
"QRCode" (base64 PNG)}. Safaricom's sample ResponseCode looks like
"AG_20191219_000043fdf61864fe9ff5" with "QR Code Successfully Generated.".

What Safaricom encodes in the QR is not documented: the emulator encodes
``MPESA|<TrxCode>|<CPI>|<RefNo>|<Amount>|<MerchantName>`` so a test can read back
what a phone scanning it would have filled in (``qr_payload``).
"""

import base64
import secrets
import struct
import zlib

import qrcode

from . import helpers
from .api import bad

TRX_CODES = ("BG", "WA", "PB", "SM", "SB")
SIZE_MIN, SIZE_MAX = 50, 1000
MAX_AMOUNT = 250000


def generate(emu, data):
    """The route: check the request as Daraja would, answer the QR image."""
    if not helpers.text_ok(data.get("MerchantName"), 100):
        bad("Invalid MerchantName")
    if not helpers.text_ok(data.get("RefNo"), 100):
        bad("Invalid RefNo")
    amount = helpers.whole_number(data.get("Amount"))
    if amount is None or not 1 <= amount <= MAX_AMOUNT:
        bad("Invalid Amount")
    code = data.get("TrxCode")
    if code not in TRX_CODES:
        bad("Invalid TrxCode")
    cpi = helpers.code_str(data.get("CPI"))
    if (
        not cpi
        or not cpi.isdigit()
        or (code in ("SM", "SB") and not helpers.phone_ok(cpi))
    ):
        bad("Invalid CPI")
    size = helpers.whole_number(data.get("Size", "300"))
    if size is None or not SIZE_MIN <= size <= SIZE_MAX:
        bad("Invalid Size")
    payload = qr_payload(code, cpi, data["RefNo"], amount, data["MerchantName"])
    now = helpers.kenya_now()
    return 200, {
        "ResponseCode": f"AG_{now:%Y%m%d}_{secrets.token_hex(10)}",
        "RequestID": helpers.request_id(),
        "ResponseDescription": "QR Code Successfully Generated.",
        "QRCode": base64.b64encode(qr_png(payload, size)).decode(),
    }


def qr_payload(trx_code, cpi, ref_no, amount, merchant_name):
    return f"MPESA|{trx_code}|{cpi}|{ref_no}|{amount}|{merchant_name}"


def qr_matrix(text):
    """The QR modules of ``text`` (True = dark), quiet zone included."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(text)
    code.make(fit=True)
    return code.get_matrix()


def qr_png(text, size):
    """A ``size`` x ``size`` greyscale PNG of the QR code of ``text``, centred."""
    matrix = qr_matrix(text)
    scale = max(1, size // len(matrix))
    offset = (size - scale * len(matrix)) // 2
    rows = []
    white = b"\xff" * size
    for y in range(size):
        my = (y - offset) // scale
        if y < offset or my >= len(matrix):
            rows.append(b"\x00" + white)
            continue
        line = bytearray(white)
        for mx, dark in enumerate(matrix[my]):
            if dark:
                start = offset + mx * scale
                line[start : start + scale] = b"\x00" * scale
        rows.append(b"\x00" + bytes(line[:size]))
    return _png(size, size, b"".join(rows))


def _png(width, height, raw):
    def chunk(kind, body):
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )
