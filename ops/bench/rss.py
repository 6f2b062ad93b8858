#!/usr/bin/env python3
"""Memory under sustained drafts (`make bench-memory`, issue 38): one
`vanthu serve --dev` (release build) on a fresh data directory, new drafts
at full speed with wrk (64 connections, each draft under its own
Idempotency-Key: two new streams per draft, the case that grew RSS before),
for `--seconds` (default 600), sampling every `--interval` seconds the
server's RSS, what RocksDB's cache holds (`vanthu_store_memory_bytes`) and
the log's head.

It says whether RSS plateaued: the largest RSS of the last third of the run
is within 10% (and 32 MiB) of the largest of the middle third. A table goes
to stdout and, unless --no-docs, to docs/PERFORMANCE.md; the samples to
target/bench/rss.json. Exit 1 if RSS did not plateau or wrk saw errors.

Usage: rss.py [--seconds S] [--interval I] [--connections C] [--no-docs]
"""

import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (the same server, token and wrk helpers)


def scrape(url, name):
    text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def head(url):
    body = json.loads(urllib.request.urlopen(f"{url}/readyz", timeout=10).read())
    return body["log"]["head"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--interval", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    for tool in (harness.BIN, harness.DEV):
        if not tool.exists():
            raise SystemExit(f"{tool} missing: cargo build --release --workspace")
    work = pathlib.Path(tempfile.mkdtemp(prefix="vanthu-rss-", dir=harness.REPO / "target"))
    server = harness.Vanthu(work)
    try:
        author = server.token("svhtt-cv-qlvh")
        sha = server.blob(author, "Noi dung cong van do bo nho")
        env = dict(os.environ, BENCH_LUA_DIR=str(harness.BENCH / "wrk"), BENCH_TOKEN=author,
                   BENCH_SHA=sha, BENCH_RUN=f"rss-{os.getpid()}")
        wrk = subprocess.Popen(
            ["wrk", "-t2", f"-c{args.connections}", f"-d{args.seconds}s", "--timeout", "10s",
             "-s", str(harness.BENCH / "wrk" / "draft.lua"), server.url],
            env=env, stdout=subprocess.PIPE, text=True)
        samples = []
        started = time.monotonic()
        while wrk.poll() is None:
            t = time.monotonic() - started
            samples.append({
                "s": round(t),
                "rss_mib": round(harness.rss_mib(server.proc.pid), 1),
                "cache_mib": round(scrape(server.url, "vanthu_store_memory_bytes") / 2**20, 1),
                "events": head(server.url),
            })
            print(f"{samples[-1]['s']:>5} s  RSS {samples[-1]['rss_mib']:>7.1f} MiB  "
                  f"cache {samples[-1]['cache_mib']:>6.1f} MiB  events {samples[-1]['events']:>9}",
                  flush=True)
            time.sleep(args.interval)
        out = wrk.stdout.read()
        errors = "Non-2xx" in out or "Socket errors" in out
        third = max(len(samples) // 3, 1)
        middle = max(s["rss_mib"] for s in samples[third:2 * third] or samples)
        last = max(s["rss_mib"] for s in samples[2 * third:] or samples)
        flat = last <= max(middle * 1.10, middle + 32)
        verdict = (f"RSS {samples[0]['rss_mib']:.0f} → {last:.0f} MiB over {args.seconds} s and "
                   f"{samples[-1]['events']:,} events; middle third's peak {middle:.0f} MiB, last third's "
                   f"{last:.0f} MiB: {'plateaued' if flat else 'STILL RISING'}"
                   + (" (wrk saw errors)" if errors else ""))
        print(verdict)
        print(out)
        (harness.REPO / "target" / "bench").mkdir(parents=True, exist_ok=True)
        (harness.REPO / "target" / "bench" / "rss.json").write_text(json.dumps(samples, indent=1))
        if not args.no_docs:
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True, cwd=harness.REPO).stdout.strip()
            now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            rows = "\n".join(f"| {s['s']} | {s['rss_mib']} | {s['cache_mib']} | {s['events']} |"
                             for s in samples[:: max(len(samples) // 12, 1)])
            with open(harness.REPO / "docs" / "PERFORMANCE.md", "a") as f:
                f.write(f"\n### Memory under sustained drafts, {now} (commit {commit}, "
                        f"{os.cpu_count()} cores, `make bench-memory`)\n\n{verdict}.\n\n"
                        f"| s | RSS MiB | RocksDB cache MiB | events |\n|---:|---:|---:|---:|\n{rows}\n")
        return 0 if flat and not errors else 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
