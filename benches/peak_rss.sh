#!/usr/bin/env bash
# Peak memory (max RSS) of each anchor training workload run alone, sinew and (when a
# PyTorch install is found, as in compare.sh) PyTorch, via /usr/bin/time -v.
#   benches/peak_rss.sh [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"
. benches/find_torch.sh
cargo build --quiet --release -p sinew-benches --bin workloads
peak() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk '/Maximum resident/ {printf "%.0f MB", $NF / 1024}'; }
# PyTorch's script with a filter: only the workload named in $ONLY runs, no matmul
one_torch=$(mktemp --suffix=.py)
trap 'rm -f "$one_torch"' EXIT
if [ -n "$python" ] && [ -f "$torch_script" ]; then
    sed -e 's/^def bench(name, step, warm=5, iters=30, reps=5):/def bench(name, step, warm=5, iters=30, reps=5):\n    if name != __import__("os").environ["ONLY"]: return/' \
        -e '/^# 5. matmul/,$d' "$torch_script" > "$one_torch"
fi
printf "%-32s %10s %10s\n" workload sinew PyTorch
for w in linreg_step_b32 mlp_784_512_256_10_b128_sgd mlp_784_512_256_10_b128_adam lenet5_b64_sgd lstm_t32_b32_h128_adam; do
    s=$(peak ./target/release/workloads "$threads" "$w")
    t="-"
    if [ -s "$one_torch" ]; then t=$(ONLY="$w" peak "$python" "$one_torch" "$threads"); fi
    printf "%-32s %10s %10s\n" "$w" "$s" "$t"
done
