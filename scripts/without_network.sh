#!/usr/bin/env bash
# Run a command with the network cut off: in a new network namespace where only loopback is
# up (Ray and the API tests talk over 127.0.0.1), so anything that tried to download would
# fail instead of quietly passing. `make test`, and so CI, runs pytest this way.
#
# As root: `unshare --net`. Otherwise a user namespace grants that, and a nested one maps
# the user back to their own id, so the command sees who it really is. Where the machine
# allows neither (no `unshare` or `ip`, a container without the privilege), the command runs
# plainly, and this says so.
set -euo pipefail
if [ $# -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi
uid=$(id -u)
gid=$(id -g)
if [ "$uid" = 0 ]; then
    enter=(unshare --net)
    as_self=()
else
    enter=(unshare --user --map-root-user --net)
    as_self=(unshare --user "--map-user=$uid" "--map-group=$gid")
fi
loopback_then='ip link set lo up && exec "$@"'

works() { "${enter[@]}" sh -c "$loopback_then" sh "$@" true >/dev/null 2>&1; }

if command -v unshare >/dev/null && command -v ip >/dev/null; then
    if works ${as_self[@]+"${as_self[@]}"}; then
        echo "[without_network] network cut off: only loopback is up" >&2
        exec "${enter[@]}" sh -c "$loopback_then" sh ${as_self[@]+"${as_self[@]}"} "$@"
    fi
    if [ "$uid" != 0 ] && works; then  # util-linux without --map-user: run as mapped root
        echo "[without_network] network cut off: only loopback is up (as namespace root)" >&2
        exec "${enter[@]}" sh -c "$loopback_then" sh "$@"
    fi
fi
echo "[without_network] cannot make a network namespace here; running with the network" >&2
exec "$@"
