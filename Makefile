# den: the README's commands live here.
#   make demo    build den and show the docker workflow on a local example
#   make test    lint, unit tests, end-to-end tests as unprivileged users (sets them up as root)
#   make bench   den and podman side by side, with ratios
#   make bench-ab BASE=DIR  den against an older den build (release binaries in DIR), side by side
#   make stress  den killed at random moments (100 trials) and many dens on one store, with figures
#   make man     man pages (den(1), den-run(1), ...) into target/man
#   make coverage  regenerate docs/docker-coverage.md from the clap definitions
PREFIX ?= $(HOME)/.local
BINS = den den-build den-image den-run den-net den-compose

.PHONY: all deps build test demo bench bench-ab stress install lint clean man coverage

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

install: build man
	install -d $(PREFIX)/bin $(PREFIX)/share/man/man1
	install -m 0755 $(addprefix target/release/,$(BINS)) $(PREFIX)/bin/
	install -m 0644 target/man/*.1 $(PREFIX)/share/man/man1/

# Generated from the clap definitions by the front's hidden `__man` verb.
man: build
	rm -rf target/man
	target/release/den __man target/man

# The table of docker's CLI in den; a test fails when the checked-in file differs.
coverage:
	cargo build --bins
	target/debug/den __coverage > docs/docker-coverage.md

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

clean:
	cargo clean
