#!/usr/bin/env python3
"""Known-answer vectors for internal/filecrypt, computed independently of
the Go code with the Python `cryptography` package (X25519, ML-KEM-768,
HKDF-SHA256, AES-256-GCM, Ed25519) and the standard library (SHA-256, HMAC).

It builds one whole file the way docs/files.md describes it: metadata block,
header core, a key wrapped to a half-key slot, the sender's signature, and
the STREAM content; plus the slot proof and STREAM vectors at chunk edges.
ML-KEM encapsulation takes its randomness inside the library, so the
ciphertext and shared secret are recorded; the Go test decapsulates them
with the key derived from the fixed seed. The own-device wrap (HPKE) is not
covered: the library has no HPKE.

Regenerate (needs a cryptography release with ML-KEM; made with 48.0.0):
    python3 internal/filecrypt/testdata/vectors.py > internal/filecrypt/testdata/vectors.json
"""
import hashlib
import hmac
import json
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import serialization

CHUNK = 64 * 1024
RAW = serialization.Encoding.Raw


def fixed(label, n):
    """Deterministic test bytes: SHA-256 counter mode over a label."""
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(label.encode() + struct.pack(">I", i)).digest()
        i += 1
    return out[:n]


def s16(b):
    return struct.pack(">H", len(b)) + b


def hkdf(ikm, salt, info, n=32):
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=salt, info=info).derive(ikm)


def stream_seal(key, pt):
    a = AESGCM(key)
    chunks = [pt[i:i + CHUNK] for i in range(0, len(pt), CHUNK)] or [b""]
    out = b""
    for i, c in enumerate(chunks):
        last = 1 if i == len(chunks) - 1 else 0
        out += a.encrypt(i.to_bytes(11, "big") + bytes([last]), c, None)
    return out


def plaintext(n):
    return (bytes(range(251)) * (n // 251 + 1))[:n]


def main():
    v = {}

    # Slot proof and its stored hash.
    slot_id = fixed("slot id", 16)
    nonce1 = fixed("nonce1", 32)
    nonce2 = fixed("nonce2", 32)
    proof = hmac.new(nonce1, b"phonex/v1/file/slot-proof\x00" + slot_id, hashlib.sha256).digest()
    proof_hash = hashlib.sha256(b"phonex/v1/file/slot-proof-hash\x00" + slot_id + proof).digest()
    v["slot_id"], v["nonce1"], v["nonce2"] = slot_id.hex(), nonce1.hex(), nonce2.hex()
    v["proof"], v["proof_hash"] = proof.hex(), proof_hash.hex()

    # The slot's keys and the sender's key shares.
    slot_x = fixed("slot x25519", 32)
    slot_seed = fixed("slot ml-kem seed", 64)
    eph = fixed("sender ephemeral x25519", 32)
    xk = x25519.X25519PrivateKey.from_private_bytes(slot_x)
    ek_priv = mlkem.MLKEM768PrivateKey.from_seed_bytes(slot_seed)
    ek = ek_priv.public_key().public_bytes_raw()
    ek_key = ek_priv.public_key()
    ss_kem, kem_ct = ek_key.encapsulate()
    assert ek_priv.decapsulate(kem_ct) == ss_kem
    ephk = x25519.X25519PrivateKey.from_private_bytes(eph)
    eph_pub = ephk.public_key().public_bytes(RAW, serialization.PublicFormat.Raw)
    slot_pub = xk.public_key().public_bytes(RAW, serialization.PublicFormat.Raw)
    ss_x = ephk.exchange(xk.public_key())
    v["slot_x25519"], v["slot_seed"], v["ephemeral"] = slot_x.hex(), slot_seed.hex(), eph.hex()
    v["slot_mlkem_sha256"] = hashlib.sha256(ek).hexdigest()
    v["kem_ciphertext"], v["ss_kem"], v["ss_x25519"] = kem_ct.hex(), ss_kem.hex(), ss_x.hex()

    sender = "alpha@localhost/laptop"
    recipient = "bravo@localhost/phone"
    file_key = fixed("file key", 32)
    file_id = fixed("file id", 16)
    created = 1_800_000_120
    size = 150_000
    content = plaintext(size)
    v.update(sender=sender, recipient=recipient, contact="alpha@localhost",
             slot_expires=1_802_592_000, file_key=file_key.hex(), file_id=file_id.hex(),
             created=created, size=size)

    # Metadata block.
    name, mtype, dur_ms = "Zprávy.ogg", "audio/ogg", 4321
    m = bytes([1]) + s16(name.encode()) + struct.pack(">Q", size) + s16(mtype.encode())
    m += hashlib.sha256(content).digest() + struct.pack(">I", dur_ms)
    pad = (256 - (len(m) + 2) % 256) % 256
    m += s16(bytes(pad))
    meta_key = hkdf(file_key, file_id, b"phonex/v1/file/metadata\x00")
    meta_block = AESGCM(meta_key).encrypt(bytes(12), m, b"PXFM\x01" + file_id)
    v.update(meta_name=name, meta_type=mtype, meta_duration_ms=dur_ms,
             meta_plain=m.hex(), meta_block=meta_block.hex())

    # Header core and its hash.
    sender_cert = fixed("sender certificate", 32)
    core = b"PXFH" + bytes([1, 1]) + file_id + struct.pack(">Q", created) + s16(sender.encode())
    core += sender_cert + struct.pack(">QII", size, CHUNK, len(meta_block))
    core += hashlib.sha256(meta_block).digest()
    core_hash = hashlib.sha256(b"phonex/v1/file/header-core\x00" + core).digest()
    v["header_core"], v["core_hash"] = core.hex(), core_hash.hex()

    # The file key wrapped to the slot.
    t = b"phonex/v1/file/wrap-transcript\x00" + s16(sender.encode()) + s16(recipient.encode())
    t += slot_id + core_hash + slot_pub + hashlib.sha256(ek).digest() + eph_pub + kem_ct
    transcript = hashlib.sha256(t).digest()
    kek = hkdf(ss_kem + ss_x, nonce1 + nonce2, b"phonex/v1/file/wrap-key\x00" + transcript)
    wrapped = AESGCM(kek).encrypt(bytes(12), file_key, transcript)
    v["transcript"], v["kek"], v["wrapped"] = transcript.hex(), kek.hex(), wrapped.hex()

    # Signed header.
    wraps = bytes([1, 1]) + s16(recipient.encode()) + slot_id + eph_pub + kem_ct + wrapped
    sig_seed = fixed("sender ed25519", 32)
    sk = ed25519.Ed25519PrivateKey.from_private_bytes(sig_seed)
    sig = sk.sign(b"phonex/v1/file/header-sig\x00" + core + wraps)
    header = core + wraps + bytes([1]) + s16(sig)
    v["sender_ed25519_seed"], v["header"] = sig_seed.hex(), header.hex()

    # Content.
    content_key = hkdf(file_key, file_id, b"phonex/v1/file/content\x00" + core_hash)
    ct = stream_seal(content_key, content)
    v["content_key"] = content_key.hex()
    v["content_sha256"] = hashlib.sha256(ct).hexdigest()
    v["content_len"] = len(ct)

    # STREAM at the chunk edges under a fixed key.
    skey = fixed("stream key", 32)
    v["stream_key"] = skey.hex()
    v["stream"] = []
    for n in (0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK):
        c = stream_seal(skey, plaintext(n))
        e = {"size": n, "len": len(c), "sha256": hashlib.sha256(c).hexdigest()}
        if n <= 1:
            e["ciphertext"] = c.hex()
        v["stream"].append(e)

    print(json.dumps(v, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
