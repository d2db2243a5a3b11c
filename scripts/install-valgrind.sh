#!/usr/bin/env bash
# Installs valgrind (Debian's package) when missing: `torvyn bench --only
# element --counts` counts the element's instructions and cache misses
# under callgrind, which .ci/run guards (bench/element-instructions).
set -euo pipefail
if command -v valgrind >/dev/null; then
    valgrind --version
    exit 0
fi
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "scripts/install-valgrind.sh: run as root: apt-get update && apt-get install -y valgrind" >&2
        exit 1
    fi
}
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind
valgrind --version
