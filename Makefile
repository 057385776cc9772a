# hyperglass supervisor. `make run` and `make test` work on a fresh Debian 12 machine with Swift.
PREFIX ?= /usr/local
SWIFT ?= swift

.PHONY: deps test-deps build run test release clean install uninstall acceptance

# What a fresh machine lacks to build: libsystemd's headers (sd_notify).
deps:
	@pkg-config --exists libsystemd 2>/dev/null || { \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q libsystemd-dev pkg-config || { apt-get update -q && apt-get install -y -q libsystemd-dev pkg-config; }; }

# And to test: Python's websockets (an independent WebSocket client), uvicorn and gunicorn (third-party
# workers), and Prometheus (promtool checks /metrics; a real server scrapes it). Debian's own python3
# refuses pip installs (PEP 668), hence the fallbacks.
test-deps: deps
	@python3 -c 'import websockets, uvicorn, gunicorn' 2>/dev/null || { \
	  python3 -m pip --version >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-pip || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-pip; }; \
	  python3 -m pip install -q websockets uvicorn gunicorn 2>/dev/null || python3 -m pip install -q --break-system-packages websockets uvicorn gunicorn; }
	@# promtool and a Prometheus server for the metrics tests (Debian's prometheus package); they skip without it.
	@command -v promtool >/dev/null 2>&1 || { export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q --no-install-recommends prometheus || { apt-get update -q && apt-get install -y -q --no-install-recommends prometheus; } || \
	  echo "note: the prometheus package is not installable here; the Prometheus tests will skip"; }

build: deps
	$(SWIFT) build

# The supervisor with the bundled worker, in the foreground, on localhost:8001. Ctrl-C drains and stops it.
run: build
	.build/debug/hyperglass start

test: test-deps
	$(SWIFT) test
	$(MAKE) --no-print-directory acceptance

# Release binaries: the Swift runtime linked statically (the service needs no toolchain), and link
# choices that keep the supervisor's resident memory small (bench/footprint.sh; 8.4 → ~6 MiB): lld with
# RELR relocations, libstdc++ and libgcc's unwinder linked statically (libstdc++.so is not loaded),
# identical code folded, and the functions the supervisor runs laid out together (bench/supervisor.order,
# recorded with callgrind; when it goes stale only the memory figure suffers).
STATICLIBS = $(abspath $(SCRATCH))/staticlibs
RELEASE_LINK = -Xswiftc -use-ld=lld -Xlinker -L$(STATICLIBS) -Xlinker -lgcc_eh \
  -Xlinker -z -Xlinker pack-relative-relocs -Xlinker --icf=safe \
  -Xlinker --symbol-ordering-file=$(CURDIR)/bench/supervisor.order -Xlinker --no-warn-symbol-ordering
release: deps
	mkdir -p $(STATICLIBS) && ln -sf "$$(clang -print-file-name=libstdc++.a)" $(STATICLIBS)/libstdc++.a
	$(SWIFT) build -c release --static-swift-stdlib --scratch-path $(SCRATCH) $(RELEASE_LINK)

clean:
	rm -rf .build

# ---- install / uninstall -------------------------------------------------------------------------
# `make release && sudo make install`. Statically linked Swift runtime: the service needs no toolchain.
# Units go to $(PREFIX)/lib/systemd/system: systemd reads /usr/local/lib/systemd/system itself, and
# /etc/systemd/system stays the administrator's (`systemctl edit`). A staged install for packaging:
# `make install DESTDIR=/tmp/stage PREFIX=/usr UNITDIR=/lib/systemd/system`.
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
UNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR ?= $(PREFIX)/share/doc/hyperglass
SYSCONFDIR ?= /etc
# Where `make release` put the binaries; SCRATCH= for another build directory (swift --scratch-path).
SCRATCH ?= .build
RELEASE_DIR ?= $(SCRATCH)/release
PROGRAMS = hyperglass hyperglass-worker hyperglassctl
UNITS = hyperglass.service hyperglass.socket
# The example apps that config/*.conf run from /etc/hyperglass/examples/, and the ready-to-copy
# worker configurations (documentation: $(DOCDIR)/examples/), with the docs that explain them.
EXAMPLES = $(notdir $(wildcard config/examples/*.py))
EXAMPLE_CONFS = $(filter-out supervisor.conf,$(notdir $(wildcard config/*.conf)))
DOCS = $(notdir $(wildcard docs/systemd.md docs/workers.md))

install:
	@for p in $(PROGRAMS); do test -x $(RELEASE_DIR)/$$p || { \
	  echo "make install: $(RELEASE_DIR)/$$p is missing; run 'make release' first" >&2; exit 1; }; done
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/hyperglass
	install -m 0755 $(addprefix $(RELEASE_DIR)/,$(PROGRAMS)) $(DESTDIR)$(BINDIR)/
	@# The units name /usr/local/bin and /usr/local/share: follow PREFIX and BINDIR.
	for u in $(UNITS); do \
	  sed -e 's|/usr/local/bin/|$(BINDIR)/|g' -e 's|/usr/local/share/doc/hyperglass|$(DOCDIR)|g' systemd/$$u \
	    > $(DESTDIR)$(UNITDIR)/$$u.tmp && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.tmp && mv $(DESTDIR)$(UNITDIR)/$$u.tmp $(DESTDIR)$(UNITDIR)/$$u; done
	$(if $(DOCS),install -m 0644 $(addprefix docs/,$(DOCS)) $(DESTDIR)$(DOCDIR)/)
	$(if $(EXAMPLE_CONFS),install -d $(DESTDIR)$(DOCDIR)/examples && \
	  install -m 0644 $(addprefix config/,$(EXAMPLE_CONFS)) $(DESTDIR)$(DOCDIR)/examples/)
	@# The configuration is the administrator's once installed: never overwrite it.
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/hyperglass/supervisor.conf ]; then \
	  echo "kept $(DESTDIR)$(SYSCONFDIR)/hyperglass/supervisor.conf (already there)"; \
	elif [ -f config/supervisor.conf ]; then \
	  install -m 0644 config/supervisor.conf $(DESTDIR)$(SYSCONFDIR)/hyperglass/supervisor.conf && \
	  echo "installed $(DESTDIR)$(SYSCONFDIR)/hyperglass/supervisor.conf"; \
	else echo "note: config/supervisor.conf not in this tree; the built-in defaults apply"; fi
	@# The example apps, for config/{uvicorn,gunicorn,websockets-worker}.conf; also never overwritten.
	@install -d $(DESTDIR)$(SYSCONFDIR)/hyperglass/examples
	@for f in $(EXAMPLES); do d=$(DESTDIR)$(SYSCONFDIR)/hyperglass/examples/$$f; \
	  if [ -e $$d ]; then echo "kept $$d (already there)"; \
	  else install -m 0644 config/examples/$$f $$d && echo "installed $$d"; fi; done
	@test -n "$(DESTDIR)" || echo "next: systemctl daemon-reload && systemctl enable --now hyperglass (see $(DOCDIR)/systemd.md)"

# Leaves a configuration that differs from the shipped one; stop the service first
# (`systemctl disable --now hyperglass hyperglass.socket`).
uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(PROGRAMS)) $(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS))
	rm -f $(addprefix $(DESTDIR)$(DOCDIR)/,systemd.md workers.md) $(addprefix $(DESTDIR)$(DOCDIR)/examples/,$(EXAMPLE_CONFS))
	-@rmdir $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null || true
	@for f in supervisor.conf $(addprefix examples/,$(EXAMPLES)); do c=$(DESTDIR)$(SYSCONFDIR)/hyperglass/$$f; \
	  if [ -f $$c ] && [ -f config/$$f ] && cmp -s $$c config/$$f; then rm -f $$c; \
	  elif [ -f $$c ]; then echo "kept $$c (changed locally; remove it yourself)"; fi; done
	@# Python's byte-code cache of the example apps (written when a worker imported them).
	@rm -rf $(DESTDIR)$(SYSCONFDIR)/hyperglass/examples/__pycache__
	-@rmdir $(DESTDIR)$(SYSCONFDIR)/hyperglass/examples $(DESTDIR)$(SYSCONFDIR)/hyperglass 2>/dev/null || true

# ---- acceptance: the installed product under a booted systemd 252 ---------------------------------
# Skips (exit 0, with a message) where the testbed cannot run: not root, or no
# ../shared/tools/systemd-testbed/testbed.sh beside the checkout (TESTBED= to point elsewhere).
# It builds the release binaries itself (into SCRATCH) and installs them with `make install DESTDIR=…`.
acceptance:
	python3 Tests/Acceptance/acceptance.py --scratch-path $(SCRATCH)
