# vigil: the two entry points are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
GO ?= go
BIN := bin/vigil

# The version comes from the nearest v* tag (`git describe`), so a build of
# tag v1.2.0 says 1.2.0 and a build three commits later 1.2.0+3.gabc1234 (Debian orders it after 1.2.0;
# the shell escape of make 4.3 made the old ${v#v} fail, so every build said 0.0.0~git).
# Before the first tag, or outside a git checkout, it is 0.0.0~ plus the
# commit, which Debian orders before any release.
VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null) && echo "$$v" | sed 's/^v//; s/-/+/; s/-/./g' || \
	echo "0.0.0~git$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$$(git diff --quiet HEAD 2>/dev/null || echo .dirty)")
LDFLAGS := -X vigil/internal/version.Version=$(VERSION)

# Debian packages the tests need: the real keepalived for interoperability and
# differential tests, nftables for the data plane, iproute2 for namespace
# labs, tcpdump/tshark to decode what vigil sends, nginx and wrk as real
# servers and clients; prometheus for promtool, which checks the metrics and
# the alert rules in contrib/; systemd for systemd-analyze, which verifies
# the packaged unit; FRR and BIRD as the routers BGP announces to; curl,
# the scraper of bench/rss_ab.sh SCRAPE=S.
TEST_PKGS := keepalived nftables iproute2 iputils-ping procps tcpdump tshark nginx-light wrk ca-certificates prometheus systemd frr bird2 conntrack linux-perf curl
DEMO_PKGS := iproute2 iputils-ping procps nftables

.PHONY: all build version deb demo test test-short deps demo-deps bench fuzz vet clean

all: build

# vigil-bgp, the BGP speaker the daemon starts for bgp_instance blocks, and
# vigil-tools, which `vigil doctor` and `vigil demo` execute, are built
# beside vigil, where it looks for them first.
build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(dir $(BIN)) ./cmd/vigil ./cmd/vigil-bgp ./cmd/vigil-tools

version:
	@echo $(VERSION)

# The Debian package, built with nfpm from the Go module proxy (no other
# download): static binaries (vigil; vigil-bgp and vigil-tools in /usr/lib/vigil), the
# systemd unit, /etc/default/vigil, the man pages vigil(8) and vigil.conf(5)
# (generated from the keyword tables), a sample keepalived.conf and bash
# completion. Written to bin/.
NFPM := $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
DEB_ARCH ?= $(shell $(GO) env GOARCH)
DEB_STAGE ?= bin/deb
DEB_OUT ?= bin
deb:
	rm -rf $(DEB_STAGE) && mkdir -p $(DEB_STAGE) $(DEB_OUT)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(DEB_STAGE)/ ./cmd/vigil ./cmd/vigil-bgp ./cmd/vigil-tools
	sed 's/^\.TH VIGIL 8 "" "vigil"/.TH VIGIL 8 "" "vigil $(VERSION)"/' packaging/vigil.8 | gzip -9n > $(DEB_STAGE)/vigil.8.gz
	$(GO) run ./packaging/mangen -version "$(VERSION)" | gzip -9n > $(DEB_STAGE)/vigil.conf.5.gz
	VERSION="$(VERSION)" DEB_ARCH="$(DEB_ARCH)" DEB_STAGE="$(DEB_STAGE)" $(NFPM) pkg --packager deb --config packaging/nfpm.yaml --target $(DEB_OUT)/

# Installs only what is missing (packaging/install-missing.sh): no service on
# the host is stopped, started, enabled or reconfigured (the tests run
# keepalived, FRR, BIRD and nginx in their own namespaces with their own pid
# files, beside any the host runs).
define install_missing
	@bash packaging/install-missing.sh $(1)
endef

deps:
	$(call install_missing,$(TEST_PKGS))

demo-deps:
	$(call install_missing,$(DEMO_PKGS))

demo: demo-deps build
	./$(BIN) demo

vet:
	$(GO) vet ./...
	$(GO) vet -tags vigil_bench ./bench ./check ./config

# The full test suite. Run as root: privileged tests (namespaces, raw
# sockets, nftables, the keepalived interop tests) skip without root, and
# fail under CI=true rather than skip.
test: deps vet
	$(GO) test -count=1 -timeout 25m ./...

test-short:
	$(GO) test -short ./...

bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem ./config/

clean:
	rm -rf bin
