#!/usr/bin/env python3
"""Check the wire-format test vectors in docs/wire-format.md with Python.

An implementation independent of the Rust and JavaScript code (it uses the
`cryptography` package and the standard library only). For every vector it
derives the MAC key, encrypts the plaintext, decrypts the body, checks the MAC,
and checks that tampering with the body is caught. Prints one line per vector
and "N passed, M failed"; exits 1 on any failure.

  interop_check.py [--doc PATH]   check the vectors (default docs/wire-format.md)
  interop_check.py --generate     print the vectors, computed from fixed inputs
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import re
import sys
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAC_INFO = b"sqs-push/v1/mac"
BEGIN = "<!-- vectors:begin -->"
END = "<!-- vectors:end -->"
FIELDS = ("name", "key", "counter", "mac_key", "plaintext", "body", "mac")
U128 = 1 << 128
DEFAULT_DOC = Path(__file__).resolve().parent.parent / "docs" / "wire-format.md"


class VectorError(Exception):
    pass


# --- the wire format, with cryptography --------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, what: str) -> bytes:
    """Strict standard base64 with padding (what the spec writes)."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise VectorError(f"{what} is not standard base64: {exc}") from None
    if b64(data) != text:
        raise VectorError(f"{what} is not canonical padded base64")
    return data


def parse_counter(text: str) -> int:
    if not re.fullmatch(r"0|[1-9][0-9]*", text):
        raise VectorError(f"counter {text!r} is not a decimal integer without leading zeros")
    value = int(text)
    if value >= U128:
        raise VectorError("counter does not fit in 128 bits")
    return value


def mac_key_of(key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=MAC_INFO).derive(key)


def ctr_xor(key: bytes, counter: int, data: bytes) -> bytes:
    block = counter.to_bytes(16, "big")
    ctx = Cipher(algorithms.AES(key), modes.CTR(block)).encryptor()
    return ctx.update(data) + ctx.finalize()


def encrypt_body(key: bytes, counter: int, plaintext: str) -> str:
    return f"{counter}|{b64(ctr_xor(key, counter, plaintext.encode('utf-8')))}"


def decrypt_body(key: bytes, body: str) -> str:
    counter_text, sep, ct_text = body.partition("|")
    if not sep:
        raise VectorError("body has no '|'")
    ct = unb64(ct_text, "body ciphertext")
    return ctr_xor(key, parse_counter(counter_text), ct).decode("utf-8")


def mac_of(mac_key: bytes, body: str) -> str:
    return b64(hmac.new(mac_key, body.encode("utf-8"), hashlib.sha256).digest())


# --- second opinions, from first principles -----------------------------------


def hkdf_by_hand(key: bytes) -> bytes:
    """RFC 5869 with the default salt (HashLen zero bytes) and L = 32 (one block)."""
    prk = hmac.new(b"\x00" * 32, key, hashlib.sha256).digest()
    return hmac.new(prk, MAC_INFO + b"\x01", hashlib.sha256).digest()


def ctr_by_hand(key: bytes, counter: int, data: bytes) -> bytes:
    """AES-ECB on counter, counter+1, ... (mod 2^128), XORed into the data."""
    n_blocks = (len(data) + 15) // 16
    blocks = b"".join(((counter + i) % U128).to_bytes(16, "big") for i in range(n_blocks))
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    stream = ecb.update(blocks) + ecb.finalize()
    return bytes(a ^ b for a, b in zip(data, stream))


# --- checking ------------------------------------------------------------------


def check_vector(v: dict) -> list[str]:
    """Problems found with one vector (empty when it passes)."""
    problems: list[str] = []
    missing = [f for f in FIELDS if not isinstance(v.get(f), str)]
    if missing:
        return [f"missing or non-string field(s): {', '.join(missing)}"]

    key = unb64(v["key"], "key")
    if len(key) != 32:
        return [f"key is {len(key)} bytes, want 32"]
    counter = parse_counter(v["counter"])
    plaintext = v["plaintext"]
    try:
        json.loads(plaintext)
    except ValueError as exc:
        problems.append(f"plaintext is not JSON: {exc}")

    mac_key = mac_key_of(key)
    if mac_key != hkdf_by_hand(key):
        problems.append("HKDF from cryptography and by hand disagree")
    if b64(mac_key) != v["mac_key"]:
        problems.append(f"mac_key: derived {b64(mac_key)}, vector says {v['mac_key']}")

    body = encrypt_body(key, counter, plaintext)
    if body != v["body"]:
        problems.append(f"body: encrypted to {body}, vector says {v['body']}")
    pt_bytes = plaintext.encode("utf-8")
    if ctr_xor(key, counter, pt_bytes) != ctr_by_hand(key, counter, pt_bytes):
        problems.append("AES-CTR from cryptography and by hand (128-bit counter) disagree")

    try:
        decrypted = decrypt_body(key, v["body"])
        if decrypted != plaintext:
            problems.append(f"decrypting the body gave {decrypted!r}")
    except (VectorError, UnicodeDecodeError) as exc:
        problems.append(f"decrypting the body failed: {exc}")

    mac = mac_of(mac_key, v["body"])
    if not hmac.compare_digest(mac, v["mac"]):
        problems.append(f"mac: computed {mac}, vector says {v['mac']}")

    # Tampering: a flipped ciphertext bit, a changed counter, a dropped byte.
    counter_text, _, ct_text = v["body"].partition("|")
    ct = bytearray(base64.b64decode(ct_text))
    ct[len(ct) // 2] ^= 0x01
    tampered = [
        f"{counter_text}|{b64(bytes(ct))}",
        f"{(int(counter_text) + 1) % U128}|{ct_text}",
        f"{counter_text}|{b64(base64.b64decode(ct_text)[:-1])}",
    ]
    for t in tampered:
        if hmac.compare_digest(mac_of(mac_key, t), v["mac"]):
            problems.append(f"tampered body {t[:40]}... still matches the mac")
    return problems


def read_vectors(doc: Path) -> list[dict]:
    text = doc.read_text(encoding="utf-8")
    lines = text.splitlines()
    try:
        start = lines.index(BEGIN)
        end = lines.index(END, start)
    except ValueError:
        raise VectorError(f"{doc}: no '{BEGIN}' ... '{END}' section") from None
    section = lines[start + 1 : end]
    while section and not section[0].strip():
        section.pop(0)
    while section and not section[-1].strip():
        section.pop()
    if len(section) < 2 or section[0].strip() != "```json" or section[-1].strip() != "```":
        raise VectorError(f"{doc}: the vectors section must be exactly one ```json fenced block")
    body = "\n".join(section[1:-1])
    if "```" in body:
        raise VectorError(f"{doc}: more than one fenced block between the markers")
    try:
        vectors = json.loads(body)
    except ValueError as exc:
        raise VectorError(f"{doc}: vectors are not valid JSON: {exc}") from None
    if not isinstance(vectors, list) or not all(isinstance(v, dict) for v in vectors):
        raise VectorError(f"{doc}: vectors must be a JSON array of objects")
    return vectors


def run_check(doc: Path) -> int:
    try:
        vectors = read_vectors(doc)
    except (OSError, VectorError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    passed = failed = 0
    for i, v in enumerate(vectors):
        name = v.get("name") if isinstance(v.get("name"), str) else f"vector #{i}"
        try:
            problems = check_vector(v)
        except VectorError as exc:
            problems = [str(exc)]
        if problems:
            failed += 1
            print(f"FAIL {name}: " + "; ".join(problems))
        else:
            passed += 1
            print(f"ok   {name}")
    if not vectors:
        print("error: no vectors found", file=sys.stderr)
        failed += 1
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


# --- generating (fixed inputs, so the output never changes) --------------------


def fixed_key(label: str) -> bytes:
    return hashlib.sha256(f"sqs-push/test-vector/{label}".encode()).digest()


def compact(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def generate() -> list[dict]:
    cases = [
        (
            "hello user",
            bytes(range(32)),
            int.from_bytes(bytes(range(0xF0, 0x100)), "big"),
            compact({"message": "Hello User", "userId": 200, "messageId": "m-1"}),
        ),
        (
            "low 64 bits of the counter wrap mid-message (carry into the high 64 bits)",
            fixed_key("carry"),
            (0x0123456789ABCDEF << 64) | 0xFFFFFFFFFFFFFFFE,
            compact(
                {
                    "message": "Hello Account",
                    "accountId": 100,
                    "messageId": "m-2",
                    "note": "the third block's counter is 0x0123456789abcdf00000000000000000",
                }
            ),
        ),
        (
            "counter 2^128-1 (the whole block wraps to 0)",
            fixed_key("wrap"),
            U128 - 1,
            compact({"message": "Hello Everyone", "messageId": "m-3", "seq": 1234567}),
        ),
        (
            "non-ASCII text is encrypted as UTF-8",
            fixed_key("utf8"),
            0x5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A,
            compact({"message": "Grüße 👋", "userId": 200, "messageId": "m-4"}),
        ),
        (
            "counter 0, plaintext exactly 3 blocks",
            fixed_key("zero"),
            0,
            compact({"message": "Hi", "userId": 7, "messageId": "m-0005"}),
        ),
    ]
    out = []
    for name, key, counter, plaintext in cases:
        mac_key = mac_key_of(key)
        body = encrypt_body(key, counter, plaintext)
        out.append(
            {
                "name": name,
                "key": b64(key),
                "counter": str(counter),
                "mac_key": b64(mac_key),
                "plaintext": plaintext,
                "body": body,
                "mac": mac_of(mac_key, body),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--doc", type=Path, default=DEFAULT_DOC, help="markdown file with the vectors")
    parser.add_argument("--generate", action="store_true", help="print freshly computed vectors as JSON")
    args = parser.parse_args(argv)
    if args.generate:
        sys.stdout.reconfigure(encoding="utf-8")
        print(json.dumps(generate(), indent=2, ensure_ascii=False))
        return 0
    return run_check(args.doc)


if __name__ == "__main__":
    sys.exit(main())
