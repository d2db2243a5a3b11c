#!/usr/bin/env bash
# Forgets what an earlier `cargo package` verification built of this
# project's own crates, before the next one.
#
# Cargo verifies a package against the packages before it (torvyn-fixtures
# against the packaged torvyn-build, ...) as if they came from crates.io,
# and takes a registry crate's name and version for its contents: it reuses
# the copy it unpacked into ~/.cargo/registry/src, and what it compiled from
# that copy, as long as both exist. After the tree changes, still at 0.1.0,
# verification would build against the old code (a function added to
# torvyn-build "not found"). So both go: the unpacked copies, and every unit
# in the target folder compiled from one (found by its dep-info file).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
rm -rf "$cargo_home"/registry/src/*/torvyn-* "$cargo_home"/registry/cache/*/torvyn-*
profile="${CARGO_TARGET_DIR:-target}/debug"
[ -d "$profile" ] || exit 0
# grep finds nothing on a fresh machine and then exits 1: not an error here.
{ grep -l "registry/src/[^/]*/torvyn-" "$profile"/deps/*.d "$profile"/build/*/*.d 2>/dev/null || true; } |
  while read -r info; do
    unit=$(basename "$info" .d)
    hash=${unit##*-}
    rm -rf "$profile"/.fingerprint/*-"$hash" "$profile"/deps/*-"$hash".* "$profile"/build/*-"$hash"
  done
