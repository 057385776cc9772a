# hyperglass supervisor. `make run` and `make test` work on a fresh Debian 12 machine with Swift.
PREFIX ?= /usr/local
SWIFT ?= swift

.PHONY: deps test-deps build run test release clean install uninstall uninstall-old-examples acceptance test-hyperglass

# What a fresh machine lacks to build: libsystemd's headers (sd_notify).
deps:
	@pkg-config --exists libsystemd 2>/dev/null || { \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q libsystemd-dev pkg-config || { apt-get update -q && apt-get install -y -q libsystemd-dev pkg-config; }; }

# And to test: Python's websockets (an independent WebSocket client), uvicorn and gunicorn (third-party
# workers). Debian's own python3 refuses pip installs (PEP 668), hence the fallbacks.
test-deps: deps
	@python3 -c 'import websockets, uvicorn, gunicorn' 2>/dev/null || { \
	  python3 -m pip --version >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-pip || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-pip; }; \
	  python3 -m pip install -q websockets uvicorn gunicorn 2>/dev/null || python3 -m pip install -q --break-system-packages websockets uvicorn gunicorn; }

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
#
# Side by side with the hyperglass looking glass (docs/hyperglass.md, "Installed side by side"):
# - The supervisor is $(BINDIR)/hyperglass-supervisor, and the unit runs that. `hyperglass` is only a
#   symlink to it where the name is free or already ours: `pip install hyperglass` (as root) puts the
#   looking glass's own command there (scripts/hyperglass-alias.sh says what pip does to each case).
# - Its configuration is $(SYSCONFDIR)/hyperglass-supervisor/: the looking glass refuses to start when
#   both ~/hyperglass and /etc/hyperglass exist, so nothing of ours may create /etc/hyperglass.
#   An /etc/hyperglass/supervisor.conf from an earlier install is still read (with a notice) and kept.
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
UNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR ?= $(PREFIX)/share/doc/hyperglass
SYSCONFDIR ?= /etc
CONFDIR = $(SYSCONFDIR)/hyperglass-supervisor
# Where earlier installs put the configuration and the example apps.
OLDCONFDIR = $(SYSCONFDIR)/hyperglass
# Where `make release` put the binaries; SCRATCH= for another build directory (swift --scratch-path).
SCRATCH ?= .build
RELEASE_DIR ?= $(SCRATCH)/release
PROGRAMS = hyperglass hyperglass-worker hyperglassctl
# Installed names: the build's `hyperglass` becomes hyperglass-supervisor.
INSTALLED = hyperglass-supervisor hyperglass-worker hyperglassctl
UNITS = hyperglass.service hyperglass.socket
# The example apps that config/*.conf run from /etc/hyperglass-supervisor/examples/, and the
# ready-to-copy worker configurations (documentation: $(DOCDIR)/examples/), with the docs that explain them.
EXAMPLES = $(notdir $(wildcard config/examples/*.py))
EXAMPLE_CONFS = $(filter-out supervisor.conf,$(notdir $(wildcard config/*.conf)))
DOCS = $(notdir $(wildcard docs/systemd.md docs/workers.md docs/hyperglass.md))

install:
	@for p in $(PROGRAMS); do test -x $(RELEASE_DIR)/$$p || { \
	  echo "make install: $(RELEASE_DIR)/$$p is missing; run 'make release' first" >&2; exit 1; }; done
	@# Never write through a symlink: a hyperglass-supervisor that is one was not put there by us.
	@for p in $(INSTALLED); do if [ -L $(DESTDIR)$(BINDIR)/$$p ]; then \
	  echo "make install: $(DESTDIR)$(BINDIR)/$$p is a symlink (to $$(readlink $(DESTDIR)$(BINDIR)/$$p)); remove it first" >&2; exit 1; fi; done
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(CONFDIR)
	install -m 0755 $(RELEASE_DIR)/hyperglass $(DESTDIR)$(BINDIR)/hyperglass-supervisor
	install -m 0755 $(RELEASE_DIR)/hyperglass-worker $(RELEASE_DIR)/hyperglassctl $(DESTDIR)$(BINDIR)/
	@sh scripts/hyperglass-alias.sh install $(DESTDIR)$(BINDIR)
	@# The units name /usr/local/bin and /usr/local/share: follow PREFIX and BINDIR.
	for u in $(UNITS); do \
	  sed -e 's|/usr/local/bin/|$(BINDIR)/|g' -e 's|/usr/local/share/doc/hyperglass|$(DOCDIR)|g' systemd/$$u \
	    > $(DESTDIR)$(UNITDIR)/$$u.tmp && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.tmp && mv $(DESTDIR)$(UNITDIR)/$$u.tmp $(DESTDIR)$(UNITDIR)/$$u; done
	$(if $(DOCS),install -m 0644 $(addprefix docs/,$(DOCS)) $(DESTDIR)$(DOCDIR)/)
	$(if $(EXAMPLE_CONFS),install -d $(DESTDIR)$(DOCDIR)/examples && \
	  install -m 0644 $(addprefix config/,$(EXAMPLE_CONFS)) $(DESTDIR)$(DOCDIR)/examples/)
	@# The configuration is the administrator's once installed: never overwrite it. One from an earlier
	@# install in $(OLDCONFDIR) stays in use (the supervisor reads it when $(CONFDIR) has none).
	@if [ -e $(DESTDIR)$(CONFDIR)/supervisor.conf ]; then \
	  echo "kept $(DESTDIR)$(CONFDIR)/supervisor.conf (already there)"; \
	elif [ -e $(DESTDIR)$(OLDCONFDIR)/supervisor.conf ]; then \
	  echo "kept $(DESTDIR)$(OLDCONFDIR)/supervisor.conf, still in use: move it to $(CONFDIR)/supervisor.conf"; \
	  echo "  (the hyperglass looking glass refuses to start while both ~/hyperglass and $(OLDCONFDIR) exist)"; \
	elif [ -f config/supervisor.conf ]; then \
	  install -m 0644 config/supervisor.conf $(DESTDIR)$(CONFDIR)/supervisor.conf && \
	  echo "installed $(DESTDIR)$(CONFDIR)/supervisor.conf"; \
	else echo "note: config/supervisor.conf not in this tree; the built-in defaults apply"; fi
	@# The example apps, for config/{uvicorn,gunicorn,websockets-worker}.conf; also never overwritten.
	@install -d $(DESTDIR)$(CONFDIR)/examples
	@for f in $(EXAMPLES); do d=$(DESTDIR)$(CONFDIR)/examples/$$f; \
	  if [ -e $$d ]; then echo "kept $$d (already there)"; \
	  else install -m 0644 config/examples/$$f $$d && echo "installed $$d"; fi; done
	@# An earlier install's example apps in $(OLDCONFDIR)/examples: unchanged copies go, so that
	@# $(OLDCONFDIR) (the looking glass's directory) only exists when something else is in it.
	@$(MAKE) --no-print-directory uninstall-old-examples
	@test -n "$(DESTDIR)" || echo "next: systemctl daemon-reload && systemctl enable --now hyperglass (see $(DOCDIR)/systemd.md)"

# Leaves a configuration that differs from the shipped one; stop the service first
# (`systemctl disable --now hyperglass hyperglass.socket`). `hyperglass` goes only if it is our symlink.
uninstall: uninstall-old-examples
	@sh scripts/hyperglass-alias.sh uninstall $(DESTDIR)$(BINDIR)
	@# hyperglass-supervisor only where it is a file: a symlink there is someone else's.
	@for p in $(INSTALLED); do f=$(DESTDIR)$(BINDIR)/$$p; if [ -L $$f ]; then echo "kept $$f (a symlink, not ours)"; else rm -f $$f; fi; done
	rm -f $(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS))
	rm -f $(addprefix $(DESTDIR)$(DOCDIR)/,systemd.md workers.md hyperglass.md) $(addprefix $(DESTDIR)$(DOCDIR)/examples/,$(EXAMPLE_CONFS))
	-@rmdir $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null || true
	@for d in $(CONFDIR) $(OLDCONFDIR); do for f in supervisor.conf; do c=$(DESTDIR)$$d/$$f; \
	  if [ -f $$c ] && [ -f config/$$f ] && cmp -s $$c config/$$f; then rm -f $$c; \
	  elif [ -f $$c ]; then echo "kept $$c (changed locally; remove it yourself)"; fi; done; done
	@for f in $(EXAMPLES); do c=$(DESTDIR)$(CONFDIR)/examples/$$f; \
	  if [ -f $$c ] && cmp -s $$c config/examples/$$f; then rm -f $$c; \
	  elif [ -f $$c ]; then echo "kept $$c (changed locally; remove it yourself)"; fi; done
	@# Python's byte-code cache of the example apps (written when a worker imported them).
	@rm -rf $(DESTDIR)$(CONFDIR)/examples/__pycache__
	-@rmdir $(DESTDIR)$(CONFDIR)/examples $(DESTDIR)$(CONFDIR) $(DESTDIR)$(OLDCONFDIR) 2>/dev/null || true

# The example apps an earlier install put in /etc/hyperglass/examples: removed when unchanged, and
# the directories with them when empty (never the looking glass's files: rmdir fails on those).
uninstall-old-examples:
	@for f in $(EXAMPLES); do c=$(DESTDIR)$(OLDCONFDIR)/examples/$$f; \
	  if [ -f $$c ] && cmp -s $$c config/examples/$$f; then rm -f $$c && echo "removed $$c (moved to $(CONFDIR)/examples)"; \
	  elif [ -f $$c ]; then echo "kept $$c (changed locally; remove it yourself)"; fi; done
	@rm -rf $(DESTDIR)$(OLDCONFDIR)/examples/__pycache__
	-@rmdir $(DESTDIR)$(OLDCONFDIR)/examples $(DESTDIR)$(OLDCONFDIR) 2>/dev/null || true

# ---- test-hyperglass: the real hyperglass looking glass under the supervisor (opt-in, not in `test`) --
# Builds hyperglass 1.0.4 from PyPI into .build-hyperglass/venv once (about 6 minutes; rebuilt only when
# scripts/hyperglass-venv.sh or its lock change; HYPERGLASS_VENV= to keep it elsewhere), needs
# redis-server (`apt-get install redis-server`; its service may stay stopped) and network access to PyPI.
# HYPERGLASS_COMPARE_GUNICORN=1 adds the memory comparison with Gunicorn's arbiter. install_test.py checks
# make install/uninstall beside `pip install hyperglass` in every order, in staging directories.
HYPERGLASS_VENV ?= $(CURDIR)/.build-hyperglass/venv
test-hyperglass: build
	@command -v redis-server >/dev/null || { echo "test-hyperglass: needs redis-server (apt-get install redis-server)" >&2; exit 1; }
	sh scripts/hyperglass-venv.sh $(HYPERGLASS_VENV)
	python3 Tests/Hyperglass/install_test.py --venv $(HYPERGLASS_VENV) --bin $(CURDIR)/.build/debug
	python3 Tests/Hyperglass/hyperglass_test.py --venv $(HYPERGLASS_VENV) --bin $(CURDIR)/.build/debug

# ---- acceptance: the installed product under a booted systemd 252 ---------------------------------
# Skips (exit 0, with a message) where the testbed cannot run: not root, or no
# ../shared/tools/systemd-testbed/testbed.sh beside the checkout (TESTBED= to point elsewhere).
# It builds the release binaries itself (into SCRATCH) and installs them with `make install DESTDIR=…`.
acceptance:
	python3 Tests/Acceptance/acceptance.py --scratch-path $(SCRATCH)
