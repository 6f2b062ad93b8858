# The README's commands. `make run` serves on the embedded default (data in
# ./data, http://127.0.0.1:8080); `make test` is what CI runs.
CARGO ?= cargo

.PHONY: deps test-deps run test bench bench-memory fuzz demo cluster

deps:
	@bash ops/dev-deps.sh

# Real peers the tests talk to (an OpenID Connect provider), pinned in
# tests/requirements.txt, in a virtualenv under target/ (re-made when the
# requirements change).
VENV := target/test-venv
$(VENV)/.installed: tests/requirements.txt
	rm -rf $(VENV)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

# What the tests talk to: those peers, the browser the page tests drive
# (Debian's chromium and chromium-driver, ops/browser-deps.sh), and
# systemd-analyze, which checks the systemd unit (Debian's systemd,
# ops/systemd-deps.sh; under CI=true that test fails without it).
test-deps: $(VENV)/.installed
	bash ops/browser-deps.sh
	bash ops/systemd-deps.sh

# The same (dev-profile) build `make test` uses, so a fresh machine
# compiles RocksDB's C++ once for both, not once per profile.
run: deps
	$(CARGO) build --workspace
	./target/debug/vanthu serve --dev

# Three nats-server nodes (JetStream, R3) and two vanthu nodes on them, on
# loopback, in target/cluster (docs/JETSTREAM.md); Ctrl-C stops them all.
cluster: deps test-deps
	$(CARGO) build --release --workspace
	bash ops/cluster.sh $(VENV)/bin/nats-server ./target/release/vanthu target/cluster

# The demo story against a fresh server (temporary data, development clock).
demo: deps
	$(CARGO) build --release --workspace
	bash ops/demo.sh ./target/release/vanthu ./target/release/vanthu-dev

# Also keeps the fuzz target compiling (it includes src/crypto by path).
test: deps test-deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	rm -rf target/test-logs
	$(CARGO) test --workspace -- --skip jetstream_cluster::
	# The JetStream backend's own tests (each starts a three-node cluster),
	# then the same file, document, organisation, projection, interchange and page tests again
	# on that backend (one cluster the tests start themselves). A pass of its
	# own: elections on two cores starved by the first pass's servers are slow.
	VANTHU_TEST_BACKEND=jetstream $(CARGO) test --test it -- jetstream_cluster:: blobs:: documents:: org:: projections:: interchange:: ui::
	$(VENV)/bin/python tests/logs/no_secrets.py target/test-logs tests/it --min-files 40
	$(CARGO) check --manifest-path fuzz/Cargo.toml --bins

# Needs nightly and cargo-fuzz (`cargo install cargo-fuzz`).
fuzz:
	cd fuzz && cargo +nightly fuzz run jws_and_certificates -- -max_total_time=600

# The side-by-side benchmark (ops/bench/harness.py): vanthu over HTTP with
# wrk against PostgreSQL inserts with pgbench, the log against raw RocksDB,
# raw Ed25519 verification; appends a table to docs/PERFORMANCE.md and
# writes target/bench/latest.json. Installs wrk and PostgreSQL when missing.
bench: deps test-deps
	bash ops/bench/deps.sh
	$(CARGO) build --release --workspace
	python3 ops/bench/harness.py $(BENCH_ARGS)

# RSS over ten minutes of new drafts at full speed (ops/bench/rss.py):
# must plateau; appends its samples to docs/PERFORMANCE.md.
bench-memory: deps test-deps
	bash ops/bench/deps.sh
	$(CARGO) build --release --workspace
	python3 ops/bench/rss.py $(BENCH_ARGS)
