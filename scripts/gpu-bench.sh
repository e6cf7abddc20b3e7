#!/usr/bin/env bash
# One short, prepared benchmark for a machine with a real GPU: the GPU executor against the CPU
# engine on the same machine, natively. W3 (LeNet-5 on MNIST) and W2 (the MLP 784-128-10) on the
# GPU at batch 64 and 256, and the CPU path at batch 64 (its examples/s hardly depend on the batch;
# the link limits refuse LeNet-5 at 256 on the CPU). Prints the machine, then one JSON line per run
# ("backend" names the adapter); write the figures into README with the GPU's name.
# Needs Rust and a Vulkan driver, no browser: ~2 minutes of build, ~40 s of runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
cargo build --release --bin deeply
echo "cores: $(nproc)"; (command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader) || true
for w in w3 w2; do
  for batch in 64 256; do
    ./target/release/deeply bench "$w" --backend gpu --batch "$batch" --seconds 4 --json
  done
  ./target/release/deeply bench "$w" --backend cpu --seconds 4 --json
done
