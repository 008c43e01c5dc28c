.PHONY: run run-headless deps deps-test test lint bench fmt package clean
.DEFAULT_GOAL := run

DURATION ?= 10
STATS ?= stats.json
export CI

run: deps
	bash scripts/run-demo.sh "$(DURATION)" "$(STATS)"

run-headless: deps
	cargo run --release --locked -- demo --headless --duration $(DURATION) --stats-json $(STATS)

deps:
	bash scripts/install-deps.sh run

deps-test:
	bash scripts/install-deps.sh test

test: deps-test
	RUST_LIB_BACKTRACE=0 cargo test --locked --workspace --all-targets --no-fail-fast

lint:
	cargo fmt --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cargo clippy --locked --no-default-features -- -D warnings

bench: deps
	cargo run --release --locked -- bench

fmt:
	cargo fmt

# The packages carry no H.264 code: kumo is built without its built-in OpenH264 and the .deb
# downloads Cisco's binary at install time (packaging/README.md says why).
package: deps
	cargo build --release --locked --no-default-features
	mkdir -p target/package
	cp target/release/kumo target/package/kumo-without-h264
	bash scripts/package.sh target/package/kumo-without-h264 target/package

clean:
	cargo clean
