#!/usr/bin/env bash
# Runs an MPI program on two "hosts" made of two Linux network namespaces on this machine,
# joined by a virtual Ethernet pair (10.77.0.1 and 10.77.0.2): Open MPI launches one rank
# in each through `ip netns exec` (its remote-shell agent, in place of ssh), and the ranks
# talk over its TCP transport only (no shared memory), as ranks on two machines do.
#   scripts/two_hosts.sh PROGRAM [ARGS...]
# Also usable as a cargo runner:
#   CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER=scripts/two_hosts.sh cargo test ... --test ddp
# Needs root (network namespaces) and Open MPI; removes what it set up when it exits.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 PROGRAM [ARGS...]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: network namespaces need root" >&2; exit 2; }
ns=(sinew-h0 sinew-h1)
tmp=$(mktemp -d)
cleanup() {
    for n in "${ns[@]}"; do ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
cleanup_only_namespaces() { for n in "${ns[@]}"; do ip netns del "$n" 2>/dev/null || true; done; }
cleanup_only_namespaces # a run killed earlier may have left them
mkdir -p "$tmp"
for n in "${ns[@]}"; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip link add sinew-v0 type veth peer name sinew-v1
ip link set sinew-v0 netns sinew-h0
ip link set sinew-v1 netns sinew-h1
ip -n sinew-h0 addr add 10.77.0.1/24 dev sinew-v0
ip -n sinew-h1 addr add 10.77.0.2/24 dev sinew-v1
ip -n sinew-h0 link set sinew-v0 up
ip -n sinew-h1 link set sinew-v1 up

# Open MPI calls its agent as `agent HOST COMMAND...`: run the command in HOST's namespace.
# Both "hosts" have this machine's hostname, so each daemon gets a temporary directory of
# its own: Open MPI names its session directories by hostname, and two daemons creating
# the same one race.
mkdir -p "$tmp/h0" "$tmp/h1" "$tmp/launcher"
cat > "$tmp/agent" <<AGENT
#!/bin/sh
host=\$1
shift
exec ip netns exec "sinew-\$host" env TMPDIR="$tmp/\$host" sh -c "\$*"
AGENT
chmod +x "$tmp/agent"
printf 'h0 slots=1\nh1 slots=1\n' > "$tmp/hosts"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 TMPDIR="$tmp/launcher"
mpi=(mpirun --hostfile "$tmp/hosts" -np 2 --mca plm_rsh_agent "$tmp/agent"
    --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24
    --mca rtc_hwloc_vmhole none) # the daemons map no shared topology (it crashed orted once here)
# every SINEW_* variable reaches the ranks
for v in $(env | sed -n 's/^\(SINEW_[A-Z0-9_]*\)=.*/\1/p'); do mpi+=(-x "$v"); done

echo "two_hosts: the ranks' network namespaces:" >&2
ip netns exec sinew-h0 "${mpi[@]}" sh -c 'echo "  rank $OMPI_COMM_WORLD_RANK: $(readlink /proc/self/ns/net), address $(ip -o -4 addr show sinew-v$OMPI_COMM_WORLD_RANK | awk "{print \$4}")"' >&2
status=0
ip netns exec sinew-h0 "${mpi[@]}" "$(realpath "$1")" "${@:2}" || status=$?
bytes=$(ip -n sinew-h0 -s link show sinew-v0 | awk '/TX:/ {getline; print $1}')
echo "two_hosts: $bytes bytes left host h0 over the virtual Ethernet link" >&2
exit $status
