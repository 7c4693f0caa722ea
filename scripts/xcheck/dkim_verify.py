#!/usr/bin/env python3
"""DKIM round-trip cross-check (RFC 6376, RFC 8463) with dkimpy, independent of mailzone.

    python dkim_verify.py --private-key PEM_FILE --selector S --domain D --txt "TXT VALUE"

Signs a short RFC 5322 message (From: test@D) with the private key (PKCS#8 or traditional
PEM; RSA signs rsa-sha256, Ed25519 signs ed25519-sha256), then verifies the signature
with dkimpy against the given TXT value, as if DNS had answered it at
`S._domainkey.D`. No DNS is used.

--txt takes the record value either joined ("v=DKIM1; k=rsa; p=...") or in zone-file
form, as one or more quoted character-strings ("v=DKIM1; k=rsa; p=MIIB" "IjAN..."),
which are unescaped and concatenated as a DNS client would.

Exit status: 0 when the signature verifies, 1 when it does not (or the key cannot be
used), 2 on a usage error. Prints one line saying what happened.
"""

import argparse
import base64
import logging
import sys

try:
    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
except ImportError as e:  # pragma: no cover - environment problem
    print(f"dkim_verify: missing Python module ({e}); run scripts/test to build .venv-test")
    sys.exit(1)


def parse_txt(value: str) -> bytes:
    """The TXT RDATA as one byte string: zone-file quoted strings are joined."""
    raw = value.strip().encode("utf-8")
    if not raw.startswith(b'"'):
        return raw
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c in b" \t\r\n":
            i += 1
            continue
        if c != ord('"'):
            raise ValueError(f"unexpected character {chr(c)!r} outside quotes at offset {i}")
        i += 1
        while True:
            if i >= n:
                raise ValueError("unterminated quoted string")
            c = raw[i]
            if c == ord('"'):
                i += 1
                break
            if c == ord("\\"):
                # RFC 1035 §5.1: \DDD is a decimal byte, \X is X.
                if i + 3 < n and raw[i + 1 : i + 4].isdigit():
                    out.append(int(raw[i + 1 : i + 4]))
                    i += 4
                    continue
                if i + 1 >= n:
                    raise ValueError("dangling backslash")
                out.append(raw[i + 1])
                i += 2
                continue
            out.append(c)
            i += 1
    return bytes(out)


def load_key(path: str):
    """(signature_algorithm, privkey in the form dkimpy expects)."""
    with open(path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        # dkimpy passes it to nacl.signing.SigningKey(..., encoder=Base64Encoder).
        return b"ed25519-sha256", base64.b64encode(raw)
    if isinstance(key, rsa.RSAPrivateKey):
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        return b"rsa-sha256", pem
    raise ValueError(f"unsupported key type {type(key).__name__} (want RSA or Ed25519)")


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        # dkimpy logs the parsed signature at DEBUG and the reason for a failure above it.
        if record.levelno > logging.DEBUG:
            self.messages.append(record.getMessage())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--private-key", required=True, help="PEM file with the private key")
    ap.add_argument("--selector", required=True)
    ap.add_argument("--domain", required=True)
    ap.add_argument("--txt", required=True, help="TXT value published for the selector")
    args = ap.parse_args()

    domain = args.domain.rstrip(".").encode("idna")
    selector = args.selector.encode("ascii")
    expected_name = selector + b"._domainkey." + domain + b"."

    try:
        txt = parse_txt(args.txt)
        algorithm, privkey = load_key(args.private_key)
    except (OSError, ValueError, TypeError) as e:
        print(f"dkim_verify: FAIL: {e}")
        return 1

    message = (
        b"From: Test <test@" + domain + b">\r\n"
        b"To: someone@example.com\r\n"
        b"Subject: mailzone DKIM cross-check\r\n"
        b"Date: Thu, 26 Nov 2026 12:00:00 +0000\r\n"
        b"Message-ID: <dkim-verify@" + domain + b">\r\n"
        b"\r\n"
        b"Signed by scripts/xcheck/dkim_verify.py.\r\n"
    )

    log = logging.getLogger("dkim_verify")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    collected = Collect()
    log.addHandler(collected)

    try:
        signature = dkim.sign(
            message,
            selector,
            domain,
            privkey,
            signature_algorithm=algorithm,
            include_headers=[b"From", b"To", b"Subject", b"Date", b"Message-ID"],
            logger=log,
        )
    except dkim.DKIMException as e:
        print(f"dkim_verify: FAIL: cannot sign with {args.private_key}: {e}")
        return 1

    queried = []

    def dnsfunc(name, timeout=5):
        queried.append(name)
        return txt if name.lower() == expected_name.lower() else None

    ok = dkim.verify(signature + message, logger=log, dnsfunc=dnsfunc)
    what = f"{algorithm.decode()} signature by {args.private_key} for {expected_name.decode()}"
    if ok:
        print(f"dkim_verify: OK: {what} verifies against the TXT value")
        return 0
    reason = "; ".join(m for m in collected.messages if m) or (
        "the signature does not match the public key in the TXT value"
    )
    if queried and all(q.lower() != expected_name.lower() for q in queried):
        reason = f"looked up {queried[0].decode()!r}, expected {expected_name.decode()!r}"
    print(f"dkim_verify: FAIL: {what} does not verify: {reason}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
