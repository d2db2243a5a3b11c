#!/usr/bin/env bash
# Installs the NATS server the stream tests and the README's worker example
# use: Debian's nats-server (2.9.x, JetStream built in), pinned. Idempotent:
# does nothing when a 2.9 server is already on the PATH.
set -euo pipefail

NATS_SERVER_VERSION_PREFIX=2.9.

if command -v nats-server >/dev/null && nats-server --version | grep -q "v$NATS_SERVER_VERSION_PREFIX"; then
    exit 0
fi
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "scripts/install-nats.sh: run as root: apt-get update && apt-get install -y 'nats-server=${NATS_SERVER_VERSION_PREFIX}*'" >&2
        exit 1
    fi
}
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "nats-server=${NATS_SERVER_VERSION_PREFIX}*"
# The package starts a system service on 4222; the tests start their own
# servers on free ports and need nothing from it.
nats-server --version
