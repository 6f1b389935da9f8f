# stockd tasks. `just run` starts the system, `just test` runs every test.

set shell := ["bash", "-euo", "pipefail", "-c"]

target_dir := env_var_or_default("CARGO_TARGET_DIR", justfile_directory() / "target")
wasm_dir := target_dir / "wasm32-wasip2" / "release"
test_plugins := target_dir / "test-plugins"
jobs := env_var_or_default("CARGO_BUILD_JOBS", "2")

# List the recipes.
default:
    @just --list

# Install what the build needs and the toolchain may lack: the wasm32-wasip2 target the plugins compile to.
toolchain:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! rustup target list --installed | grep -qx wasm32-wasip2; then
        echo "installing the wasm32-wasip2 target (the investor plugins compile to it): rustup target add wasm32-wasip2" >&2
        rustup target add wasm32-wasip2
    fi

# Build every plugin; install investorN.wasm into investors/ (atomically), the interpreters that run investorN.py and investorN.js scripts into investors/.interpreters/ (when python3 and npm are there), and the test guests into target/test-plugins/.
plugins: toolchain
    cargo build --manifest-path plugins/Cargo.toml --release --target wasm32-wasip2 --target-dir "{{target_dir}}" -j {{jobs}}
    mkdir -p investors "{{test_plugins}}"
    for n in 1 2 3; do cp "{{wasm_dir}}/investor$n.wasm" "investors/.investor$n.wasm.tmp" && mv "investors/.investor$n.wasm.tmp" "investors/investor$n.wasm"; done
    for guest in looper memory_bomb panicker bad_nav snooper backdoor http_client markup_name bad_portfolios wide investor2_v2 wrong_world investor1 investor2 investor3; do cp "{{wasm_dir}}/$guest.wasm" "{{test_plugins}}/$guest.wasm"; done
    scripts/investor interpreters investors/.interpreters

# Create investor N from the example when it does not exist yet (a running stockd loads it live). LANG: python or js (the script investors/investorN.py or .js: no build step), rust (plugins/investorN/, built into investors/investorN.wasm), python-component or js-component (plugins/python/investorN.py or plugins/js/investorN.js, componentized into investors/investorN.wasm).
investor n lang="python":
    scripts/investor {{n}} {{lang}}

# Build the Python and JavaScript examples and test guests into target/test-plugins/ (installs componentize-py and componentize-js when missing).
guest-languages:
    #!/usr/bin/env bash
    set -euo pipefail
    scripts/investor tools python
    scripts/investor tools js
    # Two builds at a time: each takes 10-15 s of one core and about 400 MB.
    pids=()
    scripts/investor build python plugins/python/investor1.py "{{test_plugins}}/python_investor1.wasm" & pids+=($!)
    scripts/investor build js plugins/js/investor1.js "{{test_plugins}}/js_investor1.wasm" & pids+=($!)
    for pid in "${pids[@]}"; do wait "$pid"; done
    pids=()
    scripts/investor build python plugins/python/test-guests/hostile.py "{{test_plugins}}/python_hostile.wasm" & pids+=($!)
    scripts/investor build js plugins/js/test-guests/hostile.js "{{test_plugins}}/js_hostile.wasm" & pids+=($!)
    for pid in "${pids[@]}"; do wait "$pid"; done

# Build the daemon (release).
build:
    cargo build --release -j {{jobs}}

# Start everything on the embedded bus: two exchanges, the seed investors from investors/, the sink writing data/, the web view on http://127.0.0.1:9464/ (STOCKD_HTTP or --http to move it). Extra flags go to `stockd run`.
[no-exit-message]
run *flags: plugins build
    STOCKD_HTTP="${STOCKD_HTTP:-127.0.0.1:9464}" "{{target_dir}}/release/stockd" run {{flags}}

# Query the portfolio files, e.g. `just query 2.1 "2026-11-24 09:00" "2026-11-24 10:00"` (the times are optional).
[positional-arguments]
query portfolio from="" to="": build
    #!/usr/bin/env bash
    set -euo pipefail
    args=(query "$1")
    [ -n "$2" ] && args+=(--from "$2")
    [ -n "$3" ] && args+=(--to "$3")
    exec "{{target_dir}}/release/stockd" "${args[@]}"

# Run a local Kafka-compatible broker (tansu, installed if missing) on 127.0.0.1:9092; then `just run --brokers 127.0.0.1:9092`.
kafka port="9092":
    scripts/broker serve "{{target_dir}}/kafka" {{port}}

# Run every test: plugins first (Rust, Python and JavaScript), then the workspace tests, the Kafka half against a local broker (tansu, installed if missing).
test: plugins guest-languages
    scripts/broker run cargo test --release -j {{jobs}}

# Lints: formatting and clippy on host and guest code.
lint: toolchain
    cargo fmt --all --check
    cargo fmt --manifest-path plugins/Cargo.toml --all --check
    cargo clippy -j {{jobs}} --all-targets -- -D warnings
    cargo clippy --manifest-path plugins/Cargo.toml --target wasm32-wasip2 --target-dir "{{target_dir}}" -j {{jobs}} -- -D warnings

# Benchmarks (criterion).
bench: plugins guest-languages
    cargo bench -j {{jobs}}
