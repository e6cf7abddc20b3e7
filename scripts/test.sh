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
step "native: the ops (deeply-nn), the engine (unit tests, link fuzzing, convergence, determinism, dependency check), the CLI (a fork link trains both branches bit for bit), the GPU executor (every WGSL kernel against its engine op; lavapipe on CPU-only machines)"
cargo test --profile ci -p deeply-nn -p deeply-engine -p deeply-cli -p deeply-gpu

step "release build of the app (trunk) and of the CLI"
trunk build --release
cargo build --profile ci -p deeply-cli

# After Trunk and in its profile: the tests reuse the app's compiled dependencies (1.4 min on a
# 2-core machine instead of 3.7 for a separate debug build), and test the optimised code we ship.
step "wasm: the engine's bits in wasm32 equal native (wasm-bindgen-test under Node, release profile)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test --release --target wasm32-unknown-unknown -p deeply-web --lib

step "browser end-to-end tests (playwright-core + Debian Chromium)"
node --test --test-concurrency=1 tests/
step "all tests passed"
