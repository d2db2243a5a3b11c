#!/usr/bin/env bash
# apt-install.sh CALLER PACKAGE...: installs Debian packages for the
# scripts that need them (guests/build.sh, scripts/install-nats.sh,
# scripts/install-valgrind.sh). apt needs root: as another user it uses
# sudo when there is one, else says exactly what to run, naming CALLER.
set -euo pipefail
caller=$1
shift
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null; then
    as_root=(sudo)
else
    echo "$caller: these packages need installing as root first:" >&2
    echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $*" >&2
    exit 1
fi
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
