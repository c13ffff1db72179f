#!/usr/bin/env bash
# Runs the workloads of benches/torch_workloads.py in sinew and, when a PyTorch install
# is found (see find_torch.sh), in PyTorch, then prints the ratios.
#   benches/compare.sh [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"
. benches/find_torch.sh
cargo build --quiet --release -p sinew-benches --bin workloads
sinew_out=$(./target/release/workloads "$threads")
echo "== sinew"
echo "$sinew_out"
if [ -z "$python" ] || [ ! -f "$torch_script" ]; then
    echo "(no PyTorch or no $torch_script: sinew's figures only)"
    exit 0
fi
torch_out=$("$python" "$torch_script" "$threads")
echo "== PyTorch"
echo "$torch_out"
echo "== ratio sinew / PyTorch (time; for matmul, PyTorch / sinew GFLOP/s)"
paste <(echo "$sinew_out") <(echo "$torch_out") | awk '{
    name=$1; s=$2; t=$(NF/2+2);
    if (name ~ /^matmul/) printf "%-32s %.2f\n", name, t / s; else printf "%-32s %.2f\n", name, s / t;
}'
