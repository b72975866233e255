# shoji — make demo runs the broker with its demo site; make test runs every test.
# Each installs the Debian packages it needs that are missing (as root).

GO            ?= go
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# What `make demo` needs: the browser, Japanese fonts, and the CA roots that
# `go build` uses to fetch modules. The demo scans nothing (no clamd), trusts
# no extra CA (no certutil) and runs no network namespaces (no ip).
DEMO_PACKAGES  := chromium fonts-noto-cjk ca-certificates
# What `make bench` adds: the classic virtual browser it compares against.
BENCH_PACKAGES := xvfb x11vnc novnc websockify
# What `make test` adds to both: a real clamd, certutil for trusted_cas,
# ip for the network-namespace tests. Add a test's packages on a line of
# their own.
TEST_PACKAGES  := clamav-daemon libnss3-tools iproute2
# systemd-analyze: deploy/manifests_test.go verifies deploy/systemd/shoji.service with it.
TEST_PACKAGES  += systemd
# deploy/container_test.go runs the image's entrypoint under runc with tini as
# PID 1; strace records system calls to regenerate deploy/seccomp/shoji-chromium.json.
TEST_PACKAGES  += runc tini strace
DEB_PACKAGES   := $(DEMO_PACKAGES) $(BENCH_PACKAGES) $(TEST_PACKAGES)
BIN           := bin/shoji
BENCH_BIN     := bin/shoji-bench
DEMO_LISTEN   ?= 127.0.0.1:8080
DEMO_DATA     ?= demo-data
TEST_TIMEOUT  ?= 20m
export SHOJI_CHROMIUM ?= /usr/lib/chromium/chromium

.PHONY: all build build-bench deps demo-deps bench-deps demo bench test lint fmt-check vet staticcheck unit clean

all: build

# install_missing installs those of the Debian packages $(1) that are not
# installed yet; as another user than root it names them and fails.
define install_missing
	@missing=""; for p in $(1); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing (run make as root to install them)"; exit 1; fi; \
		echo "installing:$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
endef

# deps installs every package shoji's tests, demo and benchmark use.
deps:
	$(call install_missing,$(DEB_PACKAGES))

# demo-deps installs only what the demo uses.
demo-deps:
	$(call install_missing,$(DEMO_PACKAGES))

# bench-deps installs what the benchmark uses.
bench-deps:
	$(call install_missing,$(DEMO_PACKAGES) $(BENCH_PACKAGES))

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/shoji

# build-bench builds the benchmark, a command of its own so that the broker
# links none of its plotting and test code.
build-bench:
	$(GO) build -trimpath -o $(BENCH_BIN) ./cmd/shoji-bench

# demo builds and runs the broker on http://$(DEMO_LISTEN) with the built-in
# demo site, and one pre-started browser so that the first login is quick. It
# prints a one-time set-up token and a demo clinician login.
demo: demo-deps build
	SHOJI_POOL_SIZE=$${SHOJI_POOL_SIZE:-1} ./$(BIN) serve --demo --listen $(DEMO_LISTEN) --data $(DEMO_DATA)

# bench measures shoji against a raw-CDP baseline and a VNC peer
# (docs/benchmarks.md); results go to bench-results/. shoji-bench runs the
# broker with the shoji binary beside it.
bench: bench-deps build build-bench
	./$(BENCH_BIN) --out bench-results -v

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

lint: fmt-check vet staticcheck

# test runs the whole suite with the race detector, end-to-end tests with real
# Chromium included: SHOJI_REQUIRE_DEPS=1 makes a missing dependency fail.
test: deps lint
	SHOJI_REQUIRE_DEPS=1 $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

# unit runs the tests quickly without the race detector.
unit:
	$(GO) test -count=1 ./...

clean:
	rm -rf bin $(DEMO_DATA) $(DEMO_DATA).checkpoint.key $(DEMO_DATA).checkpoint.key.pub
