#!/usr/bin/env python3
"""Independent cross-check of the STP known-answer vectors.

Reads vectors.json and keys.json (and crosscheck_inputs.json: the parties'
HPKE private key seeds, an input in the form the HPKE draft defines), and
for every recorded envelope recomputes, without the Go code:

  - the protobuf parse of the envelope and the STP message (proto2 wire
    format written out here),
  - the signed and MACed bytes (docs/message-protocol.md "Signed and MACed
    bytes": a deterministic serialisation of the listed fields, virtual
    fields filled in, in field-number order),
  - the key block: RSA-OAEP (SHA-1, MGF1-SHA-1) or HPKE base mode
    (RFC 9180 §5.1 key schedule, §5.2 single-shot open) with the KEM
    MLKEM768-X25519 (seed expanded with SHAKE256 to the ML-KEM-768 seed
    and the X25519 key; shared secret SHA3-256(ss_M || ss_X || ct_X ||
    pk_X || label), the X-Wing combiner), HKDF-SHA256, AES-256-GCM,
  - the HMAC (SHA-1 or SHA-256), the signature (RSASSA-PKCS1-v1_5 SHA-256 or
    Ed25519), and the AES-256-GCM payload.

It also builds one STPSimple v3 message of its own (Alice to Bob) for the
Go receiver to open. The ML-KEM encapsulation randomness cannot be fixed
from Python, so that envelope differs at each run: the Go test checks that
it opens to the recorded payload, not its bytes.

Only the Python standard library and the `cryptography` package are used.
Run from this directory: python3 stp_crosscheck.py > stp_crosscheck.json
"""

import base64
import hashlib
import hmac
import json
import struct
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, padding, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# ---- protobuf (proto2) wire format ----------------------------------------

VARINT, LEN = 0, 2


def varint(n):
    if n < 0:
        n += 1 << 64  # int32/int64 negatives are ten-byte two's complement
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(b, i):
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return n, i


def parse(b):
    """Fields in order as (number, wire type, value); values of LEN fields
    are bytes, of VARINT fields integers."""
    out, i = [], 0
    while i < len(b):
        key, i = read_varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == VARINT:
            v, i = read_varint(b, i)
        elif wt == LEN:
            n, i = read_varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise ValueError("unexpected wire type %d" % wt)
        out.append((num, wt, v))
    return out


def field(num, wt, v):
    if wt == VARINT:
        return varint(num << 3 | VARINT) + varint(v)
    return varint(num << 3 | LEN) + varint(len(v)) + v


def last(fields, num):
    v = None
    for n, _, x in fields:
        if n == num:
            v = x
    return v


def int32(v):
    return v - (1 << 64) if v >= 1 << 63 else v


# ---- the covered field lists (docs/message-protocol.md) -------------------

ENC_KEY, MAC_KEY, PAYLOAD, PTYPE, PVERSION = 19, 20, 21, 22, 23
SIMPLE_SIG_V1 = [22, 23, 1, 2, 3, 5, 6, 7, 8, 12, 19, 20, 21]
SIMPLE_MAC_V1 = [22, 23, 1, 2, 3, 5, 6, 7, 8, 12, 19, 20, 13, 14, 15, 16]
SIMPLE_SIG_V2 = [4] + SIMPLE_SIG_V1
SIMPLE_MAC_V2 = [4] + SIMPLE_MAC_V1
AUTH_SIG = [22, 23, 1, 2, 3, 4, 5, 6, 7, 8, 21]
GROUP_SIG_V1 = SIMPLE_SIG_V2
GROUP_SIG_V2 = SIMPLE_SIG_V2 + [13]
GROUP_MAC = [4, 22, 23, 1, 2, 3, 5, 6, 7, 8, 12, 19, 20, 13, 15, 16]


def covered(fields, numbers, virtual):
    """The deterministic serialisation of a message holding only the listed
    fields: real ones as received, virtual ones filled in."""
    out = b""
    for num in sorted(set(numbers)):
        if num in virtual:
            v = virtual[num]
            out += field(num, VARINT if isinstance(v, int) else LEN, v)
            continue
        for n, wt, v in fields:
            if n == num:  # repeated key slots keep their order
                out += field(n, wt, v)
    return out


# ---- primitives -------------------------------------------------------------


def hkdf_extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_expand(prk, info, n):
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:n]


XWING_LABEL = b"\\.//^\\"
KEM_ID, KDF_ID, AEAD_ID = 0x647A, 0x0001, 0x0002
SUITE = b"HPKE" + struct.pack(">HHH", KEM_ID, KDF_ID, AEAD_ID)
INFO = b"PhoneX STP key block"
CT_M, CT_X = 1088, 32


def labeled_extract(salt, label, ikm):
    return hkdf_extract(salt, b"HPKE-v1" + SUITE + label + ikm)


def labeled_expand(prk, label, info, n):
    return hkdf_expand(prk, struct.pack(">H", n) + b"HPKE-v1" + SUITE + label + info, n)


def key_schedule(shared):
    """RFC 9180 §5.1, mode_base, no PSK."""
    psk_id_hash = labeled_extract(b"", b"psk_id_hash", b"")
    info_hash = labeled_extract(b"", b"info_hash", INFO)
    ctx = bytes([0]) + psk_id_hash + info_hash
    secret = labeled_extract(shared, b"secret", b"")
    return labeled_expand(secret, b"key", ctx, 32), labeled_expand(secret, b"base_nonce", ctx, 12)


def kem_keys(seed):
    e = hashlib.shake_256(seed).digest(96)
    m = mlkem.MLKEM768PrivateKey.from_seed_bytes(e[:64])
    x = x25519.X25519PrivateKey.from_private_bytes(e[64:])
    pk_x = x.public_key().public_bytes_raw()
    return m, x, m.public_key().public_bytes_raw() + pk_x


def combine(ss_m, ss_x, ct_x, pk_x):
    return hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + XWING_LABEL).digest()


def hpke_open(seed, block):
    m, x, pk = kem_keys(seed)
    ct_m, ct_x, ct = block[:CT_M], block[CT_M:CT_M + CT_X], block[CT_M + CT_X:]
    ss_m = m.decapsulate(ct_m)
    ss_x = x.exchange(x25519.X25519PublicKey.from_public_bytes(ct_x))
    key, nonce = key_schedule(combine(ss_m, ss_x, ct_x, pk[-32:]))
    return AESGCM(key).decrypt(nonce, ct, b"")  # sequence number 0


def hpke_seal(pk, eph_x, msg):
    pk_m, pk_x = pk[:-32], pk[-32:]
    ss_m, ct_m = mlkem.MLKEM768PublicKey.from_public_bytes(pk_m).encapsulate()
    e = x25519.X25519PrivateKey.from_private_bytes(eph_x)
    ct_x = e.public_key().public_bytes_raw()
    ss_x = e.exchange(x25519.X25519PublicKey.from_public_bytes(pk_x))
    key, nonce = key_schedule(combine(ss_m, ss_x, ct_x, pk_x))
    return ct_m + ct_x + AESGCM(key).encrypt(nonce, msg, b"")


# ---- parties ----------------------------------------------------------------


def load_parties():
    keys = json.load(open("keys.json"))
    seeds = json.load(open("crosscheck_inputs.json"))["kem_seed"]
    parties = {}
    for name, k in keys.items():
        rsa_key = serialization.load_der_private_key(base64.b64decode(k["rsa_pkcs8"]), None)
        ed = ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(k["ed25519_seed"]))
        parties[name] = {"address": k["address"], "rsa": rsa_key, "ed": ed, "kem_seed": bytes.fromhex(seeds[name])}
    return parties


def unwrap(version, party, block):
    if version == 1:
        keys = party["rsa"].decrypt(block, padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None))
    elif version == 2:
        keys = hpke_open(party["kem_seed"], block)
    else:
        raise ValueError("key block version %d" % version)
    assert len(keys) == 64
    return keys[:32], keys[32:]


def verify_sig(sig_version, signer, data, sig):
    try:
        if sig_version == 1:
            signer["rsa"].public_key().verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            signer["ed"].public_key().verify(sig, data)
        return True
    except Exception:
        return False


def check_mac(mac_version, key, data, tag):
    h = hashlib.sha1 if mac_version == 1 else hashlib.sha256
    return hmac.compare_digest(hmac.new(key, data, h).digest(), tag)


def open_vector(v, parties):
    env = parse(bytes.fromhex(v["envelope"]))
    ptype, pversion, payload = last(env, 1), last(env, 2), last(env, 4)
    m = parse(payload)
    to = parties[v["to"][0]]
    sender = next(p for p in parties.values() if p["address"] == last(m, 6).decode())
    virtual = {PTYPE: ptype, PVERSION: pversion}
    out = {"name": v["name"]}
    if ptype == 4:  # STPSimpleAuth: signed only, payload in the clear
        sig_version = int32(last(m, 10) or 1)
        signed = covered(m, AUTH_SIG, virtual)
        out.update(payload=last(m, 21).hex(), signed=signed.hex(), maced="",
                   signature_ok=verify_sig(sig_version, sender, signed, last(m, 9)), mac_ok=True)
        return out
    if ptype == 2:
        sig_version = {1: 1, 2: 1, 3: 2}[pversion]
        mac_version = {1: 1, 2: 1, 3: 2}[pversion]
        key_version = {1: 1, 2: 1, 3: 2}[pversion]
        enc_key, mac_key = unwrap(key_version, to, last(m, 13))
        sig_list, mac_list = (SIMPLE_SIG_V1, SIMPLE_MAC_V1) if pversion == 1 else (SIMPLE_SIG_V2, SIMPLE_MAC_V2)
    elif ptype == 3:
        sig_version = int32(last(m, 10) or 1)
        mac_version = int32(last(m, 18) or 2)
        slot = next(parse(s) for n, _, s in m if n == 13 and last(parse(s), 1).decode() == to["address"])
        enc_key, mac_key = unwrap(int32(last(slot, 2) or 1), to, last(slot, 3))
        sig_list, mac_list = (GROUP_SIG_V1 if pversion == 1 else GROUP_SIG_V2), GROUP_MAC
    else:
        raise ValueError("protocol type %d" % ptype)
    iv, block = last(m, 12), last(m, 15)
    assert block[:12] == iv, "iv differs from the block's prefix"
    plain = AESGCM(enc_key).decrypt(iv, block[12:], b"")
    virtual.update({ENC_KEY: enc_key, MAC_KEY: mac_key, PAYLOAD: plain})
    signed, maced = covered(m, sig_list, virtual), covered(m, mac_list, virtual)
    out.update(payload=plain.hex(), signed=signed.hex(), maced=maced.hex(), enc_key=enc_key.hex(), mac_key=mac_key.hex(),
               signature_ok=verify_sig(sig_version, sender, signed, last(m, 9)),
               mac_ok=check_mac(mac_version, mac_key, maced, last(m, 17)))
    return out


def build_v3(parties):
    """An STPSimple v3 message from Alice to Bob, every byte chosen here
    (fixed keys, IV and nonce; only the ML-KEM encapsulation is random)."""
    alice, bob = parties["alice"], parties["bob"]
    h = lambda label: hashlib.sha256(b"stp crosscheck " + label).digest()
    enc_key, mac_key, iv, eph = h(b"enc"), h(b"mac"), h(b"iv")[:12], h(b"eph")
    body = b"built by the Python cross-check"
    sent = 1700000000000
    _, _, bob_pk = kem_keys(bob["kem_seed"])
    easym = hpke_seal(bob_pk, eph, enc_key + mac_key)
    esym = iv + AESGCM(enc_key).encrypt(iv, body, b"")
    real = [(1, VARINT, 1), (2, VARINT, 2), (3, VARINT, 5), (4, VARINT, sent), (5, VARINT, 0x01020304),
            (6, LEN, alice["address"].encode()), (7, LEN, bob["address"].encode()),
            (10, VARINT, 2), (11, LEN, b"ed25519"), (12, LEN, iv), (13, LEN, easym), (14, VARINT, 2),
            (15, LEN, esym), (16, VARINT, 1), (18, VARINT, 2)]
    virtual = {PTYPE: 2, PVERSION: 3, ENC_KEY: enc_key, MAC_KEY: mac_key, PAYLOAD: body}
    sig = alice["ed"].sign(covered(real, SIMPLE_SIG_V2, virtual))
    real.append((9, LEN, sig))
    tag = hmac.new(mac_key, covered(real, SIMPLE_MAC_V2, virtual), hashlib.sha256).digest()
    real.append((17, LEN, tag))
    stp = b"".join(field(n, wt, v) for n, wt, v in sorted(real))
    env = field(1, VARINT, 2) + field(2, VARINT, 3) + field(4, LEN, stp)
    return {"envelope": env.hex(), "payload": body.hex(), "sent_ms": sent, "sender": alice["address"], "to": "bob"}


def main():
    parties = load_parties()
    vectors = json.load(open("vectors.json"))
    out = {"vectors": [open_vector(v, parties) for v in vectors], "built_v3": build_v3(parties)}
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
