# PinScope: two commands on a fresh Debian 12 machine with Swift:
#   make run    installs what is missing, builds, and runs PinScope on a bundled sample trace
#   make test   installs what is missing, builds, and runs the tests
SWIFT ?= swift
APT_PACKAGES := pkg-config libtraceevent-dev zlib1g-dev libzstd-dev zstd trace-cmd libtracecmd-dev
SAMPLE := SampleTraces/guest-process_vm/trace-v7zstd.dat
BIN := .build/release/pinscope

.PHONY: all deps build run test bench reports clean

all: build

# Installs the system packages with apt-get when run as root; otherwise prints the command.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing system packages:$$missing"; \
	    echo "run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

build: deps
	$(SWIFT) build -c release --product pinscope

run: build
	$(BIN) analyze --fail-on never $(SAMPLE)

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

bench: build
	Benchmarks/run.sh

clean:
	rm -rf .build
