#!/usr/bin/env bash
# Builds and runs this crate against the packages `cargo package` left in
# the target folder, as a user's crate would use them from the registry
# (`[patch.crates-io]` on the command line), then shows that the bindings
# follow the WIT: a function added to a host interface makes the build fail
# until the host implements it. Run by `.ci/run` after the package step.
set -euo pipefail
cd "$(dirname "$0")"
target=$(cd .. && realpath "${CARGO_TARGET_DIR:-target}")
packages="$target/package"
# The workspace's versions of everything (cargo drops what is unused).
cp ../Cargo.lock Cargo.lock
cargo_here() {
  CARGO_TARGET_DIR="$target" cargo "$@" \
    --config "patch.crates-io.torvyn-engine.path=\"$packages/torvyn-engine-0.1.0\"" \
    --config "patch.crates-io.torvyn-build.path=\"$packages/torvyn-build-0.1.0\""
}
out=$(cargo_here run --quiet)
printf '%s\n' "$out"
grep -qx 'gamma -> \[3\] GAMMA' <<<"$out" || { echo "downstream: wrong output" >&2; exit 1; }

# The WIT changes: `convert` gains a function the host does not implement.
wit=wit/deps/units/convert.wit
cp "$wit" "$wit.orig"
trap 'mv "$wit.orig" "$wit"' EXIT
sed -i 's|^    tag: func(text: string) -> label;|&\n    untag: func(text: label) -> string;|' "$wit"
status=0
errors=$(cargo_here build --quiet 2>&1) || status=$?
if [ "$status" -eq 0 ] || ! grep -q 'missing `untag`' <<<"$errors"; then
  printf '%s\n' "$errors"
  echo "downstream: a WIT change did not regenerate the bindings" >&2
  exit 1
fi
echo "downstream: after a WIT change the build asks for the new function:"
grep -m1 -E 'E0046|missing.*untag' <<<"$errors"
mv "$wit.orig" "$wit"
trap - EXIT
cargo_here build --quiet
echo "downstream: the original WIT builds again"
