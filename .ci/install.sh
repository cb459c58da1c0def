#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian 12 machine that has only the .NET SDK: the PostgreSQL
# server binaries (the tests start a private cluster with them) and the real XMPP servers for the end-to-end
# tests. Idempotent; needs root (or sudo) for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

have_postgres() {
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/pg_dump >/dev/null 2>&1
}

if ! have_postgres; then
    echo "install.sh: installing PostgreSQL (Debian package postgresql)"
    export DEBIAN_FRONTEND=noninteractive
    if ! as_root apt-get install -y --no-install-recommends postgresql postgresql-client; then
        as_root apt-get update
        as_root apt-get install -y --no-install-recommends postgresql postgresql-client
    fi
    # Debian starts a system cluster on install; the tests and `serve` use private clusters only.
    as_root sh -c 'command -v pg_ctlcluster >/dev/null && for c in $(ls /etc/postgresql 2>/dev/null); do for n in $(ls /etc/postgresql/$c); do pg_ctlcluster "$c" "$n" stop || true; done; done' || true
fi

as_root bash .ci/install-peers.sh
