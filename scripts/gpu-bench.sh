#!/usr/bin/env bash
# One short, prepared benchmark for a machine with a real GPU: the GPU executor against the CPU
# engine on the same machine, natively, W2 (the MLP 784-128-10 on MNIST) at batch 64 and 256.
# Prints the adapter and one JSON line per run; write the figures into README with the GPU's name.
# W3 (LeNet-5) joins when the convolution kernels exist (today it says so and is skipped).
# Needs only Rust and a Vulkan driver (no browser): about 2 minutes of builds, 30 s of runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
cargo build --release --bin deeply
nproc; (command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader) || true
for batch in 64 256; do
  ./target/release/deeply bench w2 --backend gpu --batch "$batch" --seconds 4 --json
  ./target/release/deeply bench w2 --backend cpu --batch "$batch" --seconds 4 --json
done
./target/release/deeply bench w3 --backend gpu --seconds 4 --json || echo '{"workload":"w3","skipped":"no GPU convolutions yet"}'
