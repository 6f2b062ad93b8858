#!/usr/bin/env python3
"""No secret and no document content in any log line of a test run.

Usage: no_secrets.py LOG_DIR SOURCE_DIR... [--min-files N]

Every test server writes its log lines (JSON, `info,vanthu=debug`) to a file
in LOG_DIR (tests/it/helpers.rs). This reads them all and fails, naming the
file, line and what was found, if any holds:
  - a token or compact JWS (three base64url parts, the first a JSON header),
    or an Authorization header value;
  - PEM key material;
  - a document title or file content the tests send (string literals taken
    from SOURCE_DIR: the `"title": "..."` values and the contents passed to
    `blob(...)`).
It also fails when LOG_DIR holds fewer than N files or no access line, so
that a run whose logs went elsewhere cannot pass by having nothing to read.
"""

import pathlib
import re
import sys

TOKEN = re.compile(r"eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]{20,}")
BEARER = re.compile(r"Bearer\s+\S{8,}", re.IGNORECASE)
PEM = re.compile(r"-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----")
WEBHOOK_SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]{8,}")

# `"title": "…"`, `"title": format!("…{x}…")`, `let title = "…"`, and the
# bytes of `blob(who, b"…")`.
TITLE = re.compile(r'(?:"title"\s*:\s*(?:format!\()?|let title = |title: )"([^"]+)"')
BLOB = re.compile(r'blob\([^,()]+,\s*b"([^"]+)"')


def literals(sources):
    found = set()
    for root in sources:
        for path in pathlib.Path(root).rglob("*.rs"):
            text = path.read_text(encoding="utf-8")
            for m in TITLE.finditer(text) or ():
                found.update(re.split(r"\{[^}]*\}", m.group(1)))
            for m in BLOB.finditer(text):
                found.add(m.group(1))
    # Fragments long enough to be content rather than a common word.
    return sorted({s.strip() for s in found if len(s.strip()) >= 8})


def main(argv):
    min_files = 1
    if "--min-files" in argv:
        i = argv.index("--min-files")
        min_files = int(argv[i + 1])
        del argv[i : i + 2]
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    log_dir, sources = pathlib.Path(argv[1]), argv[2:]
    contents = literals(sources)
    files = sorted(log_dir.glob("*.log"))
    problems, lines, access = [], 0, 0
    for f in files:
        with open(f, encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                lines += 1
                access += '"message":"request"' in line
                for what, pattern in [
                    ("a token", TOKEN),
                    ("an Authorization value", BEARER),
                    ("PEM material", PEM),
                    ("a webhook secret", WEBHOOK_SECRET),
                ]:
                    if pattern.search(line):
                        problems.append(f"{f.name}:{n}: {what}: {line.strip()[:300]}")
                for c in contents:
                    if c in line:
                        problems.append(f"{f.name}:{n}: document content {c!r}: {line.strip()[:300]}")
    if len(files) < min_files or access == 0:
        problems.append(
            f"{log_dir}: {len(files)} log files, {access} access lines: the servers' logs were not captured"
        )
    for p in problems[:50]:
        print(p, file=sys.stderr)
    if problems:
        print(f"FAIL: {len(problems)} findings in {len(files)} files", file=sys.stderr)
        return 1
    print(
        f"ok: {len(files)} server logs, {lines} lines ({access} requests): no token, key, "
        f"or any of {len(contents)} titles and file contents the tests send"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
