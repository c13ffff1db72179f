#!/usr/bin/env bash
# Runs the workloads of benches/torch_workloads.py in sinew and, when a PyTorch install
# is found (see find_torch.sh), in PyTorch, then prints the ratios.
#   benches/compare.sh [THREADS]
# The two sides take turns workload by workload (sinew's, then PyTorch's, then the next
# workload), so that a machine whose speed drifts during the sitting (a shared VM's does)
# skews each ratio as little as it can.
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"
. benches/find_torch.sh
cargo build --quiet --release -p sinew-benches --bin workloads
with_torch=1
if [ -z "$python" ] || [ ! -f "$torch_script" ]; then with_torch=0; fi
sinew_out=""
torch_out=""
for w in $(./target/release/workloads --list) matmul; do
    sinew_out+="$(./target/release/workloads "$threads" "$w")"$'\n'
    if [ "$with_torch" = 1 ]; then torch_out+="$("$python" "$torch_script" "$threads" "$w")"$'\n'; fi
done
sinew_out="${sinew_out%$'\n'}"
torch_out="${torch_out%$'\n'}"
echo "== sinew"
echo "$sinew_out"
if [ "$with_torch" = 0 ]; then
    echo "(no PyTorch or no $torch_script: sinew's figures only)"
    exit 0
fi
echo "== PyTorch"
echo "$torch_out"
echo "== ratio sinew / PyTorch (time; for matmul, PyTorch / sinew GFLOP/s)"
paste <(echo "$sinew_out") <(echo "$torch_out") | awk '{
    name=$1; s=$2; t=$(NF/2+2);
    if (name ~ /^matmul/) printf "%-32s %.2f\n", name, t / s; else printf "%-32s %.2f\n", name, s / t;
}'
