# hyperglass supervisor. `make run` and `make test` work on a fresh Debian 12 machine with Swift.
PREFIX ?= /usr/local
SWIFT ?= swift

.PHONY: deps build run test release clean

# What a fresh machine lacks: libsystemd's headers (sd_notify) and, for the tests, Python's websockets.
deps:
	@pkg-config --exists libsystemd 2>/dev/null || { \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q libsystemd-dev pkg-config || { apt-get update -q && apt-get install -y -q libsystemd-dev pkg-config; }; }
	@python3 -c 'import websockets, uvicorn, gunicorn' 2>/dev/null || python3 -m pip install -q websockets uvicorn gunicorn

build: deps
	$(SWIFT) build

# The supervisor with the bundled worker, in the foreground, on localhost:8001. Ctrl-C drains and stops it.
run: build
	.build/debug/hyperglass start

test: deps
	$(SWIFT) test

release: deps
	$(SWIFT) build -c release --static-swift-stdlib

clean:
	rm -rf .build
