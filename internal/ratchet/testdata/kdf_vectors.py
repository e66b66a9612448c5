#!/usr/bin/env python3
# Independent computation of the KDF and ENCRYPT vectors in kdf_vectors.json.
# Uses only Python's hmac/hashlib (HKDF written out per RFC 5869) and the
# "cryptography" package for AES-256-CBC. Run from this directory:
#   python3 kdf_vectors.py
import hashlib
import hmac
import json

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def hkdf(salt, ikm, info, n):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:n]


rk = bytes(range(32))
dh = bytes(range(32, 64))
ck = bytes(range(64, 96))
mk = bytes(range(96, 128))
km = bytes((128 + i) % 256 for i in range(160))
r = hkdf(rk, dh, b"PhoneX_DoubleRatchet_Root_v1", 64)
keys = hkdf(b"\0" * 32, mk, b"PhoneX_DoubleRatchet_MessageKeys_v1", 80)
pt = b"attack at dawn"
ad = b"associated data"
pad = 16 - len(pt) % 16
enc = Cipher(algorithms.AES(keys[:32]), modes.CBC(keys[64:80])).encryptor()
ct = enc.update(pt + bytes([pad]) * pad) + enc.finalize()
tag = hmac.new(keys[32:64], ad + ct, hashlib.sha256).digest()
v = {
    "_comment": "Produced independently with Python's hmac/hashlib (HKDF written out per RFC 5869) and the cryptography package for AES-256-CBC; see docs/ratchet.md.",
    "kdf_rk": {"rk": rk.hex(), "dh_out": dh.hex(), "root_key": r[:32].hex(), "chain_key": r[32:].hex()},
    "kdf_ck": {"ck": ck.hex(), "message_key": hmac.new(ck, b"\x01", hashlib.sha256).hexdigest(),
               "next_chain_key": hmac.new(ck, b"\x02", hashlib.sha256).hexdigest()},
    "encrypt": {"mk": mk.hex(), "plaintext": pt.hex(), "associated_data": ad.hex(), "sealed": (ct + tag).hex()},
    "pqxdh_kdf": {"km": km.hex(), "sk": hkdf(b"\0" * 32, b"\xff" * 32 + km, b"PhoneX_PQXDH_CURVE25519_SHA-256_ML-KEM-768", 32).hex()},
}
with open("kdf_vectors.json", "w") as f:
    json.dump(v, f, indent=1)
