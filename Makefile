# The README's commands. `make run` serves on the embedded default (data in
# ./data, http://127.0.0.1:8080); `make test` is what CI runs.
CARGO ?= cargo

.PHONY: deps run test bench

deps:
	@bash ops/dev-deps.sh

run: deps
	$(CARGO) build --release
	./target/release/vanthu serve

test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test

bench: deps
	$(CARGO) build --release
	./target/release/vanthu bench store --writers 64 --events 50000
	./target/release/vanthu bench store --writers 1 --events 3000
