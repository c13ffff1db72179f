#!/usr/bin/env bash
# Checks that sinew's workload models compute what PyTorch's do: PyTorch writes weights,
# a batch, the loss and the gradients (torch_workloads.py --dump), sinew loads the same
# weights and compares (the workload_parity binary). Needs a Python with torch and
# safetensors (found as in compare.sh).
#   benches/check_workloads.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_SCRIPT=benches/torch_workloads.py . benches/find_torch.sh
if [ -z "$python" ]; then echo "no Python with torch found (see benches/find_torch.sh)"; exit 1; fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$python" benches/torch_workloads.py --dump "$dir"
cargo run --quiet --release -p sinew-benches --bin workload_parity "$dir"
