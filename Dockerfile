# syntax=docker/dockerfile:1
#
# shoji broker image: the static broker binary plus Debian's Chromium.
#
#   docker build -t shoji .
#   docker compose -f deploy/compose.yaml up       (see deploy/ for compose, Kubernetes, systemd)
#
# The broker starts /usr/lib/chromium/chromium directly (not Debian's wrapper script),
# one process per clinician.
#
# Chromium's sandbox. The broker runs as the non-root user shoji (uid 10001), and then
# it keeps Chromium's sandbox ON (config key `sandbox`, default true when not root).
# Debian's chromium ships no setuid chrome-sandbox helper: the sandbox needs unprivileged
# user namespaces (clone/unshare with CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, then
# chroot). Docker's and containerd's default seccomp profiles (and Kubernetes'
# RuntimeDefault) refuse those calls to a container without CAP_SYS_ADMIN, so Chromium
# cannot start under them. Run the container with the profile this repository ships,
# deploy/seccomp/shoji-chromium.json: it allows what Chromium's sandbox and the broker
# need and refuses everything else; deploy/seccomp/README.md explains every line and
# how to install it:
#   docker run --security-opt seccomp=deploy/seccomp/shoji-chromium.json \
#     --cap-drop ALL --security-opt no-new-privileges --read-only ... shoji
# (compose: security_opt; Kubernetes: a Localhost seccompProfile). Do not use
# seccomp=unconfined, --cap-add=SYS_ADMIN or a root user instead: each gives the
# container far more than the sandbox needs, and as root the broker has to pass
# --no-sandbox to Chromium. no-new-privileges, dropping every capability and a read-only
# root file system all work with the sandbox; with --read-only, mount a tmpfs at /tmp
# (Chromium's singleton socket and download temporaries). The host must allow unprivileged
# user namespaces too (Debian: kernel.unprivileged_userns_clone=1, the default;
# Ubuntu 23.10+: AppArmor's kernel.apparmor_restrict_unprivileged_userns).
# deploy/container_test.go runs this stage's ENTRYPOINT and CMD as uid 10001 under the
# profile with runc, with the sandbox on (a container engine itself was not available).
#
# No HEALTHCHECK: the image has no curl or wget, and adding one only for that would widen
# the attack surface. Orchestrators probe over HTTPS instead: GET /healthz (alive) for
# liveness, GET /readyz?scope=existing (can serve its sessions, even when full) for
# readiness, and plain GET /readyz (can take a new session) only to pick a node for new
# logins; see deploy/kubernetes/deployment.yaml and docs/health.md.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/shoji ./cmd/shoji

FROM debian:bookworm-slim
# chromium: the isolated browser; fonts-noto-cjk: Japanese pages render with real glyphs;
# tini: PID 1 that reaps Chromium's orphaned children; ca-certificates: TLS to the Internet;
# libnss3-tools: certutil, with which the broker writes the hospital CAs of `trusted_cas`
# into each browser's certificate database.
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-noto-cjk tini ca-certificates libnss3-tools \
    && rm -rf /var/lib/apt/lists/*
# A fixed numeric uid/gid so that Kubernetes' runAsNonRoot can verify it and volume
# ownership is predictable. /var/lib/shoji holds the store, the audit chain, quarantined
# files and browser profiles: 0700.
RUN groupadd --system --gid 10001 shoji \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/shoji --create-home \
       --shell /usr/sbin/nologin shoji \
    && install -d -o shoji -g shoji -m 0700 /var/lib/shoji \
    && install -d -o root -g root -m 0755 /etc/shoji
COPY --from=build /out/shoji /usr/local/bin/shoji

# Numeric rather than `USER shoji`: Kubernetes refuses runAsNonRoot for a non-numeric user.
USER 10001:10001
WORKDIR /var/lib/shoji
ENV SHOJI_DATA=/var/lib/shoji \
    SHOJI_CHROMIUM=/usr/lib/chromium/chromium
EXPOSE 8443
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/shoji"]
# The configuration is not baked in: mount it read-only at /etc/shoji/config.yaml
# (see deploy/config.example.yaml), with the TLS certificate and key it names.
CMD ["serve", "--listen", ":8443", "--data", "/var/lib/shoji", "--config", "/etc/shoji/config.yaml"]
