#!/usr/bin/env bash
# Installs whatever is missing to build and test Deeply on Debian 12 with rustup. Idempotent:
# each step checks first, so a second run installs nothing. Pins: see ../shared/TOOLCHAIN.md.
# Source it (`. scripts/setup.sh`) to also get the PATH it sets up.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TRUNK_VERSION=0.21.14
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"
# wgpu (Vulkan) wants a runtime directory; headless machines may have none.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "rustup: adding wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# The cargo installs run one after the other in the background while apt and npm install. (Side
# by side did not help on the 2-core VM, 2026-12-02: 19.7 min against 15.1 and 17.3 one after the
# other.)
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
need_trunk=0; need_bindgen=0
trunk --version 2>/dev/null | grep -q "$TRUNK_VERSION" || need_trunk=1
wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION" || need_bindgen=1
installs=""
if [ $need_trunk = 1 ] || [ $need_bindgen = 1 ]; then
  cargo_log=$(mktemp)
  [ $need_trunk = 0 ] || say "cargo: installing trunk $TRUNK_VERSION in the background (about 5 minutes on 2 cores)"
  [ $need_bindgen = 0 ] || say "cargo: installing wasm-bindgen-cli $WASM_BINDGEN_VERSION in the background (about 2 minutes)"
  (
    set -e
    # Built unoptimised: the tools only orchestrate (cargo, wasm-opt) and convert, so their speed
    # hardly matters, while optimising them cost half the install. 2026-12-03, the same hour on the
    # 2-core VM: Trunk 5.4 min instead of 10.4 (opt-level 1, no LTO), wasm-bindgen-cli 2.0 instead
    # of 4.4; a no-op `trunk build --release` 54 s instead of 51, and the same dist/, byte for byte.
    # Only these two installs see these variables: the app and the tests keep their profiles.
    export CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
    [ $need_trunk = 0 ] || cargo install trunk --version "$TRUNK_VERSION" --locked
    # The CLI must match the wasm-bindgen crate in Cargo.lock exactly; installed without --locked
    # (its own lockfile pins a crate the registry no longer has).
    [ $need_bindgen = 0 ] || cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  ) > "$cargo_log" 2>&1 &
  installs=$!
fi

# Browser and driver for the end-to-end tests (Debian's; no browser download works here), and
# a Vulkan driver for crates/gpu.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
# A Vulkan driver for the GPU executor's parity tests: lavapipe (the CPU), when no GPU driver is there.
ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1 || missing+=(mesa-vulkan-drivers)
# python3 -m py_compile checks the PyTorch export.
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  say "apt: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

# wasm-opt (binaryen 132, not Debian's 108), playwright-core and axe-core, pinned in package-lock.json.
if [ ! -x node_modules/.bin/wasm-opt ] || [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/axe-core ]; then
  say "npm: installing binaryen, playwright-core and axe-core"
  npm ci --no-audit --no-fund
fi

if [ -n "$installs" ]; then
  if ! wait "$installs"; then
    say "cargo install failed:"
    tail -40 "$cargo_log"
    exit 1
  fi
  rm -f "$cargo_log"
  say "cargo: trunk and wasm-bindgen-cli installed"
fi
