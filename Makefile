# shoji — make demo runs the broker with its demo site; make test runs every test.
# Both install what is missing on a Debian machine (as root).

GO            ?= go
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
DEB_PACKAGES  := chromium fonts-noto-cjk ca-certificates iproute2 clamav-daemon libnss3-tools xvfb x11vnc novnc websockify
# Only for tests: deploy/container_test.go runs the image's entrypoint under runc with
# tini as PID 1; strace records system calls to regenerate deploy/seccomp/shoji-chromium.json.
TEST_DEB_PACKAGES := runc tini strace
BIN           := bin/shoji
DEMO_LISTEN   ?= 127.0.0.1:8080
DEMO_DATA     ?= demo-data
TEST_TIMEOUT  ?= 20m
export SHOJI_CHROMIUM ?= /usr/lib/chromium/chromium

.PHONY: all build deps demo bench test lint fmt-check vet staticcheck unit clean

all: build

# deps installs the Debian packages shoji needs when any is missing.
deps:
	@missing=""; for p in $(DEB_PACKAGES) $(TEST_DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing (run make as root to install them)"; exit 1; fi; \
		echo "installing:$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/shoji

# demo builds and runs the broker on http://$(DEMO_LISTEN) with the built-in
# demo site, and one pre-started browser so that the first login is quick. It
# prints a one-time set-up token and a demo clinician login.
demo: deps build
	SHOJI_POOL_SIZE=$${SHOJI_POOL_SIZE:-1} ./$(BIN) serve --demo --listen $(DEMO_LISTEN) --data $(DEMO_DATA)

# bench measures shoji against a raw-CDP baseline and a VNC peer
# (docs/benchmarks.md); results go to bench-results/.
bench: deps build
	./$(BIN) bench --out bench-results -v

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
