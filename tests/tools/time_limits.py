#!/usr/bin/env python3
"""Opens every test function under tests/it with its time-limit guard.

Usage: time_limits.py [--check] [DIR]   (DIR defaults to tests/it)

A test function is a `fn` (or `async fn`) under `#[test]` or
`#[tokio::test...]`, with any further attributes, doc comments or comments
between them. Its body must begin with

    let _limit = crate::helpers::time_limit();

(or `time_limit_secs(N)`; tests/it/helpers/limits.rs: one watchdog ends the
test process, naming the test, when a test outlives its limit). This inserts
that line where it is missing, `time_limit_secs(900)` in the JetStream
cluster suite (each of its tests starts its own three-node cluster). Run it
again after adding tests: a test that already opens with a guard, whatever
its limit, is left as it is, so a second run changes nothing.
tests/it/tidy.rs fails on a test without the guard, by the same reading.

--check changes nothing: it lists the tests without a guard and exits 1 if
there is one.
"""

import pathlib
import re
import sys

GUARD = "let _limit = crate::helpers::time_limit"
DEFAULT = "let _limit = crate::helpers::time_limit();"
# Files whose tests get a longer limit than the default.
LONG = {"jetstream_cluster.rs": "let _limit = crate::helpers::time_limit_secs(900);"}

ATTRIBUTE = re.compile(r"^\s*#\[(test|tokio::test)\b")
FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(async\s+)?fn\s+(\w+)")


def tests_without_guard(lines):
    """(name, index of the line opening its body, indent) of each test
    function whose body does not begin with the guard."""
    out = []
    i = 0
    while i < len(lines):
        if not ATTRIBUTE.match(lines[i]):
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not FN.match(lines[j]):
            j += 1
        if j == len(lines):
            break
        name = FN.match(lines[j]).group(4)
        indent = re.match(r"^\s*", lines[j]).group(0)
        k = j
        while k < len(lines) and not lines[k].rstrip().endswith("{"):
            k += 1
        first = k + 1
        while first < len(lines) and not lines[first].strip():
            first += 1
        if first >= len(lines) or not lines[first].strip().startswith(GUARD):
            out.append((name, k, indent))
        i = k + 1
    return out


def main(argv):
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    root = (pathlib.Path(args[0]) if args else pathlib.Path(__file__).parents[1] / "it").resolve()
    missing = []
    for path in sorted(root.rglob("*.rs")):
        lines = path.read_text().split("\n")
        found = tests_without_guard(lines)
        if not found:
            continue
        guard = LONG.get(path.name, DEFAULT)
        for name, body, indent in reversed(found):
            missing.append(f"{path.relative_to(root.parent.parent)}: {name}")
            lines.insert(body + 1, f"{indent}    {guard}")
        if not check:
            path.write_text("\n".join(lines))
    for line in sorted(missing):
        print(("no time limit: " if check else "guard inserted: ") + line)
    return 1 if check and missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
