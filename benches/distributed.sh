#!/usr/bin/env bash
# Data-parallel speed on this machine, every configuration in one sitting
# (benches/distributed.rs says what is measured):
#   - gradient all-reduce, bucketed vs raw MPI_Allreduce, on 2 ranks;
#   - training throughput of the anchor MLP and the CIFAR-size CNN: 2 ranks x 1 thread
#     against 1 process x 2 threads (and 1 x 1, the baseline of the scaling efficiency);
#   - as root, the all-reduce again between two network namespaces over TCP.
# Needs Open MPI (docs/distributed.md).
#   benches/distributed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --quiet -p sinew-benches --features distributed --bench distributed --no-run 2>/dev/null
bench=$(ls -t target/release/deps/distributed-* | grep -v '\.d$' | head -1)
mpirun=(mpirun --oversubscribe)
[ "$(id -u)" = 0 ] && mpirun+=(--allow-run-as-root)
echo "== 2 ranks x 1 thread"
SINEW_THREADS=1 "${mpirun[@]}" -np 2 --bind-to core "$bench" --bench
echo "== 1 process x 2 threads"
SINEW_THREADS=2 "$bench" --bench train
echo "== 1 process x 1 thread"
SINEW_THREADS=1 "$bench" --bench train
if [ "$(id -u)" = 0 ]; then
    echo "== 2 ranks on two hosts over TCP (network namespaces: scripts/two_hosts.sh)"
    SINEW_THREADS=1 scripts/two_hosts.sh "$bench" --bench allreduce
fi
