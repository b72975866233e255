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
# user namespaces (clone/unshare with CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET). Docker's
# and containerd's default seccomp profiles refuse those calls to a container without
# CAP_SYS_ADMIN, so Chromium fails to start under the default profile. In order of
# preference:
#   1. run with a seccomp profile that is the runtime's default plus clone/unshare with
#      namespace flags (this repository does not ship one; write and review your own);
#   2. --security-opt seccomp=unconfined (no syscall filter for the whole container);
#   3. --cap-add=SYS_ADMIN only as a last resort: it gives the container far more than
#      the sandbox needs.
# The host must allow unprivileged user namespaces too (Debian: kernel.unprivileged_userns_clone=1,
# the default; Ubuntu 23.10+: AppArmor's kernel.apparmor_restrict_unprivileged_userns).
# no-new-privileges is compatible with this sandbox. Never run the container as root to
# "fix" the sandbox: as root the broker has to pass --no-sandbox to Chromium.
#
# No HEALTHCHECK: the image has no curl or wget, and adding one only for that would widen
# the attack surface. Orchestrators probe GET /healthz (alive) and GET /readyz (can take a
# new session) over HTTPS instead; see deploy/kubernetes/deployment.yaml.

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
# tini: PID 1 that reaps Chromium's orphaned children; ca-certificates: TLS to the Internet.
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-noto-cjk tini ca-certificates \
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
