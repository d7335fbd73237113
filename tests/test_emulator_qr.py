"""Dynamic QR: the documented request checks and a real PNG of the payment's QR code."""

import base64
import struct
import zlib

import pytest
from daraja_emulator.qr import qr_matrix, qr_payload

REQUEST = {
    "MerchantName": "Jua Kali Traders",
    "RefNo": "INV202600001",
    "Amount": 1250,
    "TrxCode": "PB",
    "CPI": "174379",
    "Size": "300",
}


def png_pixels(png):
    """(width, height, rows of grey bytes) of an 8-bit greyscale PNG (filter 0)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        crc = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])[0]
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, kind
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color = header[:4]
    assert (depth, color) == (8, 0)
    raw = zlib.decompress(idat)
    rows = [raw[y * (width + 1) : (y + 1) * (width + 1)] for y in range(height)]
    assert all(row[0] == 0 for row in rows)
    return width, height, [row[1:] for row in rows]


def read_modules(rows, count):
    """Sample the centre of each module of a ``count`` x ``count`` QR code."""
    size = len(rows)
    scale = size // count
    offset = (size - scale * count) // 2
    return [
        [
            rows[offset + y * scale + scale // 2][offset + x * scale + scale // 2] == 0
            for x in range(count)
        ]
        for y in range(count)
    ]


def test_generate_answers_the_documented_shape_with_a_png_of_the_payment(client):
    status, answer = client.post("/mpesa/qrcode/v1/generate", REQUEST)
    assert status == 200, answer
    assert set(answer) == {"ResponseCode", "RequestID", "ResponseDescription", "QRCode"}
    assert answer["ResponseDescription"] == "QR Code Successfully Generated."
    width, height, rows = png_pixels(base64.b64decode(answer["QRCode"]))
    assert (width, height) == (300, 300), "a square of Size pixels"
    # What a phone scanning it reads: the paybill, the account number, the amount.
    expected = qr_matrix(
        qr_payload("PB", "174379", "INV202600001", 1250, REQUEST["MerchantName"])
    )
    assert read_modules(rows, len(expected)) == expected


@pytest.mark.parametrize(
    "change, error",
    [
        ({"TrxCode": "XX"}, "Invalid TrxCode"),
        ({"CPI": ""}, "Invalid CPI"),
        ({"TrxCode": "SM", "CPI": "12"}, "Invalid CPI"),
        ({"Amount": "12.5"}, "Invalid Amount"),
        ({"Amount": 0}, "Invalid Amount"),
        ({"RefNo": " "}, "Invalid RefNo"),
        ({"MerchantName": None}, "Invalid MerchantName"),
        ({"Size": "9"}, "Invalid Size"),
    ],
)
def test_bad_requests_are_refused_with_a_400(client, change, error):
    status, answer = client.post("/mpesa/qrcode/v1/generate", {**REQUEST, **change})
    assert status == 400
    assert answer["errorCode"] == "400.002.02"
    assert error in answer["errorMessage"]


def test_a_token_is_required(emu):
    import requests

    response = requests.post(
        emu.base_url + "/mpesa/qrcode/v1/generate", json=REQUEST, timeout=5
    )
    assert response.status_code == 404
    assert response.json()["errorCode"] == "404.001.03"
