#!/usr/bin/env python3
# Independent check of pqxdh_vector.json: recompute the PQXDH responder side
# and the first Double Ratchet step from Bob's private keys with Python's
# "cryptography" package (X25519, ML-KEM-768, AES-256-CBC) and hmac/hashlib,
# decrypt the first message, and record the result in pqxdh_crosscheck.json.
# Run from this directory: python3 pqxdh_crosscheck.py
import hashlib
import hmac
import json
import struct

from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives import serialization


def hkdf(salt, ikm, info, n):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:n]


def raw(pub):
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


v = json.load(open("pqxdh_vector.json"))
h = lambda k: bytes.fromhex(v[k])
msg = h("first_message")

# Ratchet message: version, flags, initial message, header, body.
assert msg[0] == 1 and msg[1] == 1
(n,) = struct.unpack(">H", msg[2:4])
im = msg[4:4 + n]
header = msg[4 + n:4 + n + 40]
body = msg[4 + n + 40:]
prefix = msg[:4 + n + 40]

# Initial message.
assert im[0] == 1
one_time = im[1] & 1
encode_ik_a = im[2:132]
assert encode_ik_a[0] == 0x05 and encode_ik_a[33] == 0x06
ik_a = x25519.X25519PublicKey.from_public_bytes(encode_ik_a[1:33])
assert im[132] == 0x05
ek_a = x25519.X25519PublicKey.from_public_bytes(im[133:165])
ct = im[177:]

ik_b = x25519.X25519PrivateKey.from_private_bytes(h("bob_identity_dh"))
spk_b = x25519.X25519PrivateKey.from_private_bytes(h("bob_signed_prekey"))
opk_b = x25519.X25519PrivateKey.from_private_bytes(h("bob_one_time"))
pq_b = mlkem.MLKEM768PrivateKey.from_seed_bytes(h("bob_pq_seed"))

km = spk_b.exchange(ik_a) + ik_b.exchange(ek_a) + spk_b.exchange(ek_a)
if one_time:
    km += opk_b.exchange(ek_a)
km += pq_b.decapsulate(ct)
sk = hkdf(b"\0" * 32, b"\xff" * 32 + km, b"PhoneX_PQXDH_CURVE25519_SHA-256_ML-KEM-768", 32)

encode_ik_b = b"\x05" + raw(ik_b.public_key()) + b"\x06" + h("bob_identity_sig") + h("bob_binding")
ad = encode_ik_a + encode_ik_b

# RatchetInitBob, then DHRatchet on the first header and KDF_CK.
dh_a = x25519.X25519PublicKey.from_public_bytes(header[:32])
pn, nn = struct.unpack(">II", header[32:40])
assert pn == 0 and nn == 0
r = hkdf(sk, spk_b.exchange(dh_a), b"PhoneX_DoubleRatchet_Root_v1", 64)
ckr = r[32:]
mk = hmac.new(ckr, b"\x01", hashlib.sha256).digest()

keys = hkdf(b"\0" * 32, mk, b"PhoneX_DoubleRatchet_MessageKeys_v1", 80)
assoc = struct.pack(">I", len(ad)) + ad + struct.pack(">I", 0) + prefix
ctext, tag = body[:-32], body[-32:]
assert hmac.compare_digest(hmac.new(keys[32:64], assoc + ctext, hashlib.sha256).digest(), tag), "tag mismatch"
dec = Cipher(algorithms.AES(keys[:32]), modes.CBC(keys[64:80])).decryptor()
padded = dec.update(ctext) + dec.finalize()
pt = padded[:-padded[-1]]

with open("pqxdh_crosscheck.json", "w") as f:
    json.dump({"_comment": "Written by pqxdh_crosscheck.py from pqxdh_vector.json.",
               "first_message": msg.hex(), "sk": sk.hex(), "plaintext": pt.hex()}, f, indent=1)
print("decrypted:", pt)
