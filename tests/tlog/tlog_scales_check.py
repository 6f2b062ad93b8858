#!/usr/bin/env python3
"""A third party's reading of vanthu's log: tlog-scales (PyPI, a C2SP
tlog-tiles reader by another author) fetches the checkpoint and the tiles
under URL/log, checks the log key's signature and recomputes the root from
the tiles; computes from the tiles the inclusion proof of LEAF_INDEX and the
consistency proof from OLD_SIZE (for tests/it/tlog.rs to compare byte for
byte with the server's); and checks the server's own proofs, read from
stdin as JSON {"inclusion": {...}, "consistency": {...}, "old_root": b64},
with its RFC 9162 verification.

  tlog_scales_check.py URL VKEY LEAF_INDEX OLD_SIZE < server-proofs.json
"""

import base64
import json
import sys

from tlog_scales import backend, tiles
from tlog_scales.reader import TilesReader
from tlog_scales.signing import Vkey
from tlog_scales.tlog import ConsistencyProof, InclusionProof


def main(url, vkey, index, old_size):
    server = json.load(sys.stdin)
    reader = TilesReader(backend.make_backend(url.rstrip("/") + "/log"))
    cp = reader.get_checkpoint()
    key = Vkey.from_string(vkey)
    if not any(key.match(s) for s in cp.signatures):
        raise SystemExit("no signature by the log key")
    cp.verify(key)  # raises on a bad signature
    root = reader.calculate_root_hash()
    if root != cp.root_hash:
        raise SystemExit("the tiles do not hash to the checkpoint's root")
    b64 = lambda hashes: [base64.b64encode(h).decode() for h in hashes]
    unb64 = lambda hashes: [base64.b64decode(h) for h in hashes]
    # The server's proofs, checked by tlog-scales' RFC 9162 verification.
    inc = server["inclusion"]
    InclusionProof(index, cp.size, unb64(inc["hashes"])).check(
        base64.b64decode(inc["leaf_hash"]), cp.root_hash
    )
    con = server["consistency"]
    ConsistencyProof(old_size, cp.size, unb64(con["hashes"])).check(
        base64.b64decode(server["old_root"]), cp.root_hash
    )
    print(json.dumps({
        "size": cp.size,
        "root": base64.b64encode(root).decode(),
        "inclusion": b64(reader.get_inclusion_proof(index, cp.size).node_hashes),
        "consistency": b64(reader.get_consistency_proof(old_size, cp.size).node_hashes),
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
