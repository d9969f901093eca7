#!/usr/bin/env bash
# Zapping at scale driven by the run's own streams, through a snooping Linux bridge: HOSTS
# emulated hosts on the TAP port tap1 zap across CHANNELS channels (sequential order, one join
# per channel each) while the daemon itself sends every channel at RATE datagrams a second on
# a second TAP port of the bridge (tap-src), for the run's length. Prints the run's figures
# (join delays from the streams' own datagrams, loss while joined, one-way latency), the
# daemon's CPU and RSS.
# Usage: scripts/bench-zapping-streams.sh [HOSTS] [CHANNELS] [RATE]   (as root; builds the
# release binaries)
set -eu
source "$(dirname "$0")/lib.sh"
ensure_packages iproute2:ip iproute2:bridge python3:python3
HOSTS=${1:-1000}
CHANNELS=${2:-20}
RATE=${3:-50}
VIEW_MS=${VIEW_MS:-1000}
NS=tmc-bench-zaps-$$
DIR=$(mktemp -d)
cd "$(dirname "$0")/.."
cargo build --release -q -p stack -p tools
BIN=$PWD/target/release
cleanup() {
    [ -n "${DAEMON:-}" ] && kill "$DAEMON" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ctl() { "$BIN/tunmcastctl" --control "$DIR/ctl.sock" "$@"; }

ip netns add "$NS"
ip -n "$NS" link set lo up
# The querier's General Queries every 10 s, answered within 3 s; snooped forwarding starts one
# response interval after the querier does (scripts/bench-zapping.sh says why that matters).
ip -n "$NS" link add br0 type bridge mcast_snooping 1 mcast_query_use_ifaddr 1 \
    mcast_igmp_version 3 mcast_query_interval 1000 mcast_query_response_interval 300 \
    mcast_startup_query_interval 300 mcast_last_member_interval 20
ip -n "$NS" link set br0 type bridge mcast_querier 1
for tap in tap1 tap-src; do
    ip -n "$NS" tuntap add dev "$tap" mode tap
    ip -n "$NS" link set "$tap" master br0
done
ip -n "$NS" addr add 10.100.0.1/16 dev br0
bridge -n "$NS" link set dev tap1 mcast_flood off
ip -n "$NS" link set br0 up
ip -n "$NS" link set tap1 up
ip -n "$NS" link set tap-src up
FORWARDING_AT=$(python3 -c "import time; print(time.time() + 3.5)")

printf 'solicited_node = "off"\nlog_level = "warn"\n[[link]]\ndevice = "tap-src"\nkind = "tap"\nipv4 = "10.100.255.200/16"\n[[link]]\ndevice = "tap1"\nkind = "tap"\nsuppression = false\n[[link.hosts]]\ncount = %s\nipv4 = "10.100.0.10/16"\n' \
    "$HOSTS" >"$DIR/bench.toml"
ip netns exec "$NS" "$BIN/tunmcastd" --config "$DIR/bench.toml" --control "$DIR/ctl.sock" \
    2>"$DIR/daemon.err" &
DAEMON=$!
i=0; until ctl ping >/dev/null 2>&1; do sleep 0.1; i=$((i+1)); [ $i -lt 600 ] || exit 1; done
# The querier's start-up hold on snooped forwarding (one response interval) passes first.
python3 -c "import time; time.sleep(max(1.0, $FORWARDING_AT - time.time()))"

CHANNEL_LIST=$(python3 -c "print(','.join(f'239.20.{c // 256}.{c % 256}' for c in range($CHANNELS)))")
LAST=$(python3 -c "import ipaddress;print(ipaddress.ip_address('10.100.0.10')+$HOSTS-1)")
RSS0=$(rss "$DAEMON"); CPU0=$(cpu "$DAEMON"); T0=$(date +%s.%N)
set +e
ctl test zapping --iface tap1 --hosts "10.100.0.10-$LAST" --channels "$CHANNEL_LIST" \
    --view-ms "$VIEW_MS" --leave-grace-ms 1500 --stream-link tap-src --source 10.100.255.201 \
    --pps "$RATE" --wait --out "$DIR/out" >"$DIR/run.txt" 2>"$DIR/run.err"
STATUS=$?
set -e
T1=$(date +%s.%N); CPU1=$(cpu "$DAEMON"); RSS1=$(rss "$DAEMON")
echo "hosts $HOSTS, channels $CHANNELS, the run's streams at $RATE datagrams/s each, view $VIEW_MS ms: exit $STATUS"
python3 -c "print(f'run {$T1-$T0:.1f} s, daemon CPU {($CPU1-$CPU0)/100:.2f} s, RSS {$RSS0} -> {$RSS1} KiB')"
python3 - "$DIR/out/report.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
ms = lambda ns: f"{ns / 1e6:.3f}"
j, t = report["join_delay"], report["traffic"]
print(f"verdict {report['verdict']}, zaps {report['zaps']} of {report['zaps_planned']}, "
      f"not received {report['not_received']}, leaves shared {report['leave_shared']}")
print(f"join delay ms: min {ms(j['min_ns'])} p50 {ms(j['p50_ns'])} p90 {ms(j['p90_ns'])} "
      f"p99 {ms(j['p99_ns'])} max {ms(j['max_ns'])} ({j['count']} zaps)")
l = t["latency"]
print(f"streams {t['streams']}: received {t['received']}, lost while joined {t['lost']}; "
      f"one-way latency ms p50 {ms(l['p50_ns'])} p99 {ms(l['p99_ns'])} max {ms(l['max_ns'])} "
      f"({l['count']} datagrams read)")
PY
tail -n 3 "$DIR/run.err" || true
