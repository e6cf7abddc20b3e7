#!/usr/bin/env bash
# Installs what is missing, then runs every test: the native engine and CLI, the wasm tests,
# and the browser end-to-end tests against the release build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/setup.sh

# Each step says how long the run has taken so far (CI must stay well under 40 minutes).
step() { printf '\n\033[1;32m==> [%dm%02ds] %s\033[0m\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

# Native tests and the CLI the e2e tests call use the `ci` profile (Cargo.toml): release
# optimisation without whole-program LTO, which spent ~4 of every 10 engine-test minutes linking.
# One cargo call for the four native crates: called one crate at a time, cargo unified features
# three ways and compiled serde, ndarray, the engine and wgpu three times (7.2 min against 4.5).
NATIVE=(-p deeply-nn -p deeply-engine -p deeply-cli -p deeply-gpu)
step "native: compiling the tests and the CLI"
cargo test --profile ci "${NATIVE[@]}" --no-run

# The native tests leave a core idle for minutes (a binary whose last test runs alone, lavapipe
# waiting on one thread) and Trunk has single-threaded phases (the wasm's LTO link, wasm-opt):
# run side by side they share the two cores. They touch different build directories (target/ci
# against target/wasm32-unknown-unknown/release and target/release), so neither waits for
# cargo's lock, and no native test reads dist/. The native tests that assert budgets count CPU
# time, not wall time (crates/engine/tests/cpu_time).
step "native: the ops (deeply-nn), the engine (unit tests, link fuzzing, convergence, determinism, dependency check), the CLI (a fork link trains both branches bit for bit), the GPU executor (every WGSL kernel against its engine op; lavapipe on CPU-only machines); meanwhile the release build of the app (trunk)"
trunk_log=$(mktemp)
trunk build --release > "$trunk_log" 2>&1 &
trunk_pid=$!
if ! cargo test --profile ci "${NATIVE[@]}"; then
  kill "$trunk_pid" 2>/dev/null || true
  exit 1
fi
step "waiting for the release build of the app (trunk)"
if ! wait "$trunk_pid"; then
  cat "$trunk_log"
  exit 1
fi
tail -n 3 "$trunk_log"
rm -f "$trunk_log"
cargo build --profile ci -p deeply-cli

# After Trunk and in its profile: the tests reuse the app's compiled dependencies (1.4 min on a
# 2-core machine instead of 3.7 for a separate debug build), and test the optimised code we ship.
step "wasm: the engine's bits in wasm32 equal native (wasm-bindgen-test under Node, release profile)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test --release --target wasm32-unknown-unknown -p deeply-web --lib

step "browser end-to-end tests (playwright-core + Debian Chromium)"
node --test --test-concurrency=1 tests/
step "all tests passed"
