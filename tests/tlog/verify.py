#!/usr/bin/env python3
"""An independent verifier of vanthu's transparency log, written from the
texts of C2SP signed-note, tlog-checkpoint, tlog-tiles, tlog-proof and
RFC 9162 section 2.1 alone (no code of vanthu's). The Rust tests run it
against a live server (tests/it/tlog.rs).

  verify.py tree URL VKEY          checkpoint signature; the root recomputed
                                   from every level-0 tile; each full tile's
                                   hash in the level above
  verify.py consistency URL VKEY OLD_CHECKPOINT_FILE
                                   the server's consistency proof from the old
                                   checkpoint to the current one
  verify.py bundle BUNDLE_FILE VKEY
                                   every record's tlog-proof in a bundle

--flip checkpoint|tile|proof flips one bit of that input after reading it:
the check must then fail. Prints a JSON summary; exits 1 on any failure.
"""

import base64
import hashlib
import json
import struct
import sys
import urllib.request

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FLIP = None


class Fail(Exception):
    pass


def flip(kind, data):
    if FLIP != kind:
        return data
    b = bytearray(data)
    b[len(b) // 2] ^= 0x01
    return bytes(b)


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def sha256(b):
    return hashlib.sha256(b).digest()


def leaf_hash(entry):
    return sha256(b"\x00" + entry)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def mth(hashes):
    """RFC 6962 2.1 over already-hashed leaves."""
    n = len(hashes)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(mth(hashes[:k]), mth(hashes[k:]))


def parse_vkey(vkey):
    name, key_id, key = vkey.strip().split("+", 2)
    raw = base64.b64decode(key)
    if raw[0] != 0x01 or len(raw) != 33:
        raise Fail("not an Ed25519 verifier key")
    if sha256(name.encode() + b"\n" + raw)[:4].hex() != key_id:
        raise Fail("the verifier key's id does not match its name and key")
    return name, bytes.fromhex(key_id), Ed25519PublicKey.from_public_bytes(raw[1:])


def open_checkpoint(note, vkey):
    """signed-note: text, blank line, signature lines; then tlog-checkpoint."""
    name, key_id, public = parse_vkey(vkey)
    text = note.decode("utf-8")
    i = text.rfind("\n\n")
    if i < 0 or not text.endswith("\n"):
        raise Fail("not a signed note")
    body, sigs = text[: i + 1], text[i + 2 :]
    verified = False
    for line in sigs[:-1].split("\n"):
        if not line.startswith("\u2014 "):
            raise Fail("a signature line does not start with an em dash")
        signer, blob = line[2:].split(" ")
        blob = base64.b64decode(blob)
        if signer != name or blob[:4] != key_id:
            continue
        try:
            public.verify(blob[4:], body.encode())
        except InvalidSignature:
            raise Fail("the log's signature on the checkpoint is invalid")
        verified = True
    if not verified:
        raise Fail("no signature by the log key")
    lines = body[:-1].split("\n")
    if len(lines) < 3 or lines[0] != name:
        raise Fail("the checkpoint's origin is not the key's name")
    size = lines[1]
    if not size.isdigit() or (len(size) > 1 and size[0] == "0"):
        raise Fail("bad tree size")
    root = base64.b64decode(lines[2])
    if len(root) != 32:
        raise Fail("bad root hash")
    return int(size), root


def tile_path(level, index, width):
    s = "%03d" % (index % 1000)
    index //= 1000
    while index > 0:
        s = "x%03d/%s" % (index % 1000, s)
        index //= 1000
    p = "%s/%s" % (level, s)
    if width < 256:
        p += ".p/%d" % width
    return p


def tile(url, level, index, width):
    data = flip("tile", get("%s/log/tile/%s" % (url, tile_path(level, index, width))))
    if len(data) != 32 * width:
        raise Fail("tile %d/%d has %d bytes, not %d" % (level, index, len(data), 32 * width))
    return [data[i : i + 32] for i in range(0, len(data), 32)]


def check_tree(url, vkey):
    note = flip("checkpoint", get(url + "/log/checkpoint"))
    size, root = open_checkpoint(note, vkey)
    leaves = []
    for index in range((size + 255) // 256):
        width = min(256, size - index * 256)
        leaves.extend(tile(url, 0, index, width))
    if mth(leaves) != root:
        raise Fail("the root recomputed from the level-0 tiles is not the checkpoint's")
    # Level l >= 1: hash i is the MTH of full tile i of level l-1.
    below, level, checked = leaves, 1, 0
    while len(below) >= 256:
        count = len(below) // 256
        above = []
        for index in range((count + 255) // 256):
            above.extend(tile(url, level, index, min(256, count - index * 256)))
        for i, h in enumerate(above):
            if mth(below[i * 256 : (i + 1) * 256]) != h:
                raise Fail("tile hash %d/%d is not the root of the tile below" % (level, i))
            checked += 1
        below, level = above, level + 1
    return {"size": size, "root": base64.b64encode(root).decode(), "upper_hashes": checked}


def verify_inclusion(index, size, leaf, proof, root):
    """RFC 9162 2.1.3.2."""
    if index >= size:
        raise Fail("index beyond the tree")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise Fail("proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn & 1 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or r != root:
        raise Fail("inclusion proof does not verify")


def verify_consistency(m, n, old_root, new_root, proof):
    """RFC 9162 2.1.4.2."""
    if m == n:
        if proof or old_root != new_root:
            raise Fail("equal sizes need equal roots and no proof")
        return
    if m == 0 or m > n or not proof:
        raise Fail("bad sizes or empty proof")
    if m & (m - 1) == 0:
        proof = [old_root] + proof
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            raise Fail("proof too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn & 1 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise Fail("consistency proof does not verify")


def check_consistency(url, vkey, old_file):
    old_size, old_root = open_checkpoint(open(old_file, "rb").read(), vkey)
    new_size, new_root = open_checkpoint(get(url + "/log/checkpoint"), vkey)
    body = json.loads(get("%s/v1/log/proof/consistency?from=%d&to=%d" % (url, old_size, new_size)))
    proof = [base64.b64decode(flip("proof", h.encode())) for h in body["hashes"]]
    verify_consistency(old_size, new_size, old_root, new_root, proof)
    return {"from": old_size, "to": new_size, "hashes": len(proof)}


def check_bundle(path, vkey):
    bundle = json.load(open(path))
    n = 0
    for r in bundle["log"]["records"]:
        text = r["proof"]
        lines = text.split("\n")
        if lines[0] != "c2sp.org/tlog-proof@v1":
            raise Fail("not a tlog-proof")
        i = 1
        if lines[i].startswith("extra "):
            i += 1
        if not lines[i].startswith("index "):
            raise Fail("no index line")
        index = int(lines[i][6:])
        i += 1
        proof = []
        while lines[i] != "":
            proof.append(base64.b64decode(flip("proof", lines[i].encode())))
            i += 1
        note = "\n".join(lines[i + 1 :]).encode()
        size, root = open_checkpoint(flip("checkpoint", note), vkey)
        if index != r["position"] - 1:
            raise Fail("the proof's index is not the record's")
        verify_inclusion(index, size, leaf_hash(r["record"].encode()), proof, root)
        n += 1
    if n == 0:
        raise Fail("no records")
    return {"records": n}


def main(argv):
    global FLIP
    if "--flip" in argv:
        i = argv.index("--flip")
        FLIP = argv[i + 1]
        del argv[i : i + 2]
    cmd, args = argv[1], argv[2:]
    try:
        if cmd == "tree":
            out = check_tree(args[0], args[1])
        elif cmd == "consistency":
            out = check_consistency(args[0], args[1], args[2])
        elif cmd == "bundle":
            out = check_bundle(args[0], args[1])
        else:
            raise Fail("unknown command " + cmd)
    except (Fail, ValueError, KeyError, IndexError) as e:
        print(json.dumps({"ok": False, "error": str(e)}))
        return 1
    out["ok"] = True
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
