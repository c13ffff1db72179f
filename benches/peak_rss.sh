#!/usr/bin/env bash
# Peak memory (max RSS) of each workload run alone, sinew and (when a PyTorch install is
# found, as in compare.sh) PyTorch, via /usr/bin/time -v. Both runners build every
# model before filtering, so the figures include that; the differences are the
# workload's own.
#   benches/peak_rss.sh [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"
. benches/find_torch.sh
cargo build --quiet --release -p sinew-benches --bin workloads
peak() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk '/Maximum resident/ {printf "%.0f MB", $NF / 1024}'; }
printf "%-34s %10s %10s\n" workload sinew PyTorch
for w in $(./target/release/workloads --list); do
    s=$(peak ./target/release/workloads "$threads" "$w")
    t="-"
    if [ -n "$python" ] && [ -f "$torch_script" ]; then t=$(peak "$python" "$torch_script" "$threads" "$w"); fi
    printf "%-34s %10s %10s\n" "$w" "$s" "$t"
done
