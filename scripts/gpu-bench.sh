#!/usr/bin/env bash
# One short, prepared benchmark for a machine with a real GPU: the GPU executor against the CPU
# engine on the same machine, natively. W3 (LeNet-5 on MNIST) and W2 (the MLP 784-128-10) on the
# GPU at batch 64 and 256, and the CPU path at batch 64 on 1, 2, 4 … threads up to the machine's
# cores, 4 at most (a batch of 64 makes 4 micro-shards; its examples/s hardly depend on the
# batch; the link limits refuse LeNet-5 at 256 on the CPU); then the multi-core scaling of issue
# #15 with more shards: W3 at batch 128 (8 shards) and W2 at 256 (16) on 1, 2, 4 … threads.
# Prints the machine, then one JSON line per run ("backend" names the adapter, "workers" the
# threads); write the figures into README with the GPU's name.
# Needs a Vulkan driver, no browser. DEEPLY_BIN=path runs a prebuilt CLI (a GPU machine without
# Rust); otherwise it builds one (~2 minutes). ~90 s of runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
if [ -z "${DEEPLY_BIN:-}" ]; then
  cargo build --release --bin deeply
  DEEPLY_BIN=./target/release/deeply
fi
cores=$(nproc)
echo "cores: $cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"; (command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader) || true
for w in w3 w2; do
  for batch in 64 256; do
    "$DEEPLY_BIN" bench "$w" --backend gpu --batch "$batch" --seconds 4 --json
  done
  for threads in 1 2 4; do
    if [ "$threads" -le "$cores" ]; then "$DEEPLY_BIN" bench "$w" --backend cpu --threads "$threads" --seconds 3 --json; fi
  done
done
for run in "w3 128 8" "w2 256 16"; do
  set -- $run
  threads=1
  while [ "$threads" -le "$cores" ] && [ "$threads" -le "$3" ]; do
    "$DEEPLY_BIN" bench "$1" --backend cpu --batch "$2" --threads "$threads" --seconds 3 --json
    threads=$((threads * 2))
  done
done
