# den: the README's commands live here.
#   make demo    build den and show the docker workflow on a local example
#   make test    lint, unit tests, end-to-end tests as unprivileged users (sets them up as root)
#   make bench   den and podman side by side, with ratios
#   make stress  den killed at random moments (100 trials) and many dens on one store, with figures
PREFIX ?= $(HOME)/.local
BINS = den den-build den-image den-run den-net

.PHONY: all deps build test demo bench stress install lint clean

all: build

# The Debian packages den builds and runs with (installed as root, else named).
deps:
	./integration/setup.sh --packages

build: deps
	cargo build --release --bins

test:
	./integration/run.sh

demo: build
	./integration/demo.sh

bench: build
	./bench/bench.sh

bench-ab: build
	./bench/ab.sh $(BASE)

stress: build
	./integration/stress.sh

install: build
	install -d $(PREFIX)/bin
	install -m 0755 $(addprefix target/release/,$(BINS)) $(PREFIX)/bin/

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

clean:
	cargo clean
