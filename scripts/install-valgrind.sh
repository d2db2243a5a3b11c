#!/usr/bin/env bash
# Installs valgrind (Debian's package) when missing: `torvyn bench --only
# element --counts` counts the element's instructions and cache misses
# under callgrind, which .ci/run guards (bench/element-instructions).
set -euo pipefail
command -v valgrind >/dev/null || "$(dirname "$0")/apt-install.sh" scripts/install-valgrind.sh valgrind
valgrind --version
