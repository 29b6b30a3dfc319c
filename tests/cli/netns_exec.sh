#!/bin/sh
# Hydra's remote shell for the two-host test (tests/cli/check_two_hosts.sh): runs a
# command "on a host" by running it inside the network namespace that plays that host.
#
#   netns_exec.sh MAP [OPTIONS...] HOST COMMAND...
#
# MAP is a file of "ADDRESS NAMESPACE" lines. Hydra starts its proxy on a remote host by
# running `LAUNCHER_EXEC -x HOST CMD...` (-launcher ssh, the default) or
# `LAUNCHER_EXEC HOST CMD...` (-launcher rsh), where -bootstrap-exec / -launcher-exec
# names LAUNCHER_EXEC: the test points that at a two-line wrapper that calls this script
# with the MAP first. Leading words that start with '-' (ssh's options) are skipped. The
# command is joined and run by sh -c, as a remote shell would: hydra quotes words for the
# remote shell (the proxy's path comes as "/usr/bin/hydra_pmi_proxy", quotes included).
# An unknown HOST fails with status 255, as ssh does when it cannot reach a host.
set -u
if [ $# -lt 3 ]; then
    echo "usage: $0 MAP [OPTIONS...] HOST COMMAND..." >&2
    exit 255
fi
map=$1
shift
while [ $# -gt 0 ]; do
    case $1 in
    -*) shift ;;
    *) break ;;
    esac
done
host=${1:-}
shift
ns=$(awk -v h="$host" '$1 == h { print $2; exit }' "$map")
if [ -z "$ns" ]; then
    echo "$0: host '$host' is not in $map (its lines: $(tr '\n' ';' <"$map"))" >&2
    exit 255
fi
exec ip netns exec "$ns" sh -c "$*"
