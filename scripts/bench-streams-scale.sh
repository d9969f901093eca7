#!/usr/bin/env bash
# Test streams at scale (stack/BENCHMARKS.md), in a throwaway network namespace, in one run:
#   1. 10^5 concurrent (host, source, group) records: HOSTS (10,000) emulated hosts on a TAP,
#      each joined to 10 groups, a bare C sender (scripts/bench/stream_send.c) flooding the 10
#      groups' stream frames through a bridge without snooping: host-datagrams checked per
#      second, frames read per second, records, and RSS per record (RSS with the records
#      made minus RSS with the hosts joined and nothing received, over the records);
#   2. sending and checking together: the same hosts behind a Linux bridge with IGMPv3
#      snooping and querier (query every 10 s, Max Resp Time 3 s), the daemon sending 10
#      streams of STREAM_PPS on a second port of the bridge while its hosts receive and check
#      them: every General Query must be answered by every host inside its Max Resp Time,
#      counted in a tcpdump capture on the hosts' port (reports from each host's address
#      between the query and query + 3 s).
# Hosts are 10.99.1.10 on (10.99.0.x: the bridge and the sending link).
# usage: [HOSTS=N] [STREAM_PPS=N] [PARTS=12] scripts/bench-streams-scale.sh [SECONDS]   (root; gcc; tcpdump; tshark; release build)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_packages iproute2:ip gcc:gcc python3:python3 tcpdump:tcpdump tshark:tshark
SECONDS_RUN=${1:-5}
HOSTS=${HOSTS:-10000}
STREAM_PPS=${STREAM_PPS:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/tunmcast-bench.XXXXXX)
NS=tmc-bench-scale-$$

cleanup() {
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release -q -p stack -p tools --manifest-path "$ROOT/Cargo.toml"
BIN=$ROOT/target/release
gcc -O2 -Wall -o "$WORK/stream_send" "$ROOT/scripts/bench/stream_send.c"

in_ns() { ip netns exec "$NS" "$@"; }
ip netns add "$NS"
ip -n "$NS" link set lo up
tap() { # NAME BRIDGE
    ip -n "$NS" tuntap add dev "$1" mode tap
    ip -n "$NS" link set "$1" addrgenmode none
    ip -n "$NS" link set "$1" master "$2"
    ip -n "$NS" link set "$1" up
}
ctl() { "$BIN/tunmcastctl" --control "$WORK/ctl.sock" "$@"; }
counter() { ctl --json stats | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
start_daemon() { # CONFIG
    printf '%s' "$1" >"$WORK/bench.toml"
    ip netns exec "$NS" env RUST_LOG=warn "$BIN/tunmcastd" --config "$WORK/bench.toml" \
        --control "$WORK/ctl.sock" 2>"$WORK/daemon.err" &
    DAEMON=$!
    for _ in $(seq 1200); do ctl ping >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "tunmcastd did not start" >&2; cat "$WORK/daemon.err" >&2; exit 1
}
stop_daemon() { kill $DAEMON; wait $DAEMON 2>/dev/null || true; }
LAST=$(python3 -c "import ipaddress;print(ipaddress.ip_address('10.99.1.10')+$HOSTS-1)")
HOSTS_TABLE="[[link]]
device = \"tap-rx\"
kind = \"tap\"
suppression = false
[[link.hosts]]
count = $HOSTS
ipv4 = \"10.99.1.10/16\"
"
join_all() { ctl join 239.10.0.0+10 --iface tap-rx --hosts "10.99.1.10-$LAST" >/dev/null; }

echo "== tunmcast test streams at scale, $(nproc) cores, $(uname -r), $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. 10^5 records (PARTS=2 skips it).
if [[ ${PARTS:-12} == *1* ]]; then
ip -n "$NS" link add br0 type bridge mcast_snooping 0
ip -n "$NS" link set br0 up
tap tap-gen br0
tap tap-rx br0
start_daemon "log_level = \"warn\"
check_streams = true
solicited_node = \"off\"
$HOSTS_TABLE"
join_all
sleep 2
RSS_JOINED=$(rss $DAEMON)
in_ns "$WORK/stream_send" tap-gen 10 $((SECONDS_RUN + 3)) >"$WORK/flood.out" &
FLOOD=$!
sleep 1
R0=$(counter stream_rx_received); F0=$(counter tun_rx_packets); T0=$(date +%s.%N)
sleep "$SECONDS_RUN"
R1=$(counter stream_rx_received); F1=$(counter tun_rx_packets); T1=$(date +%s.%N)
wait $FLOOD
sleep 0.5
RSS_CHECKED=$(rss $DAEMON)
RECORDS=$(ctl --json streams --limit 1 | python3 -c "import json,sys; print(json.load(sys.stdin)['total_receivers'])")
python3 - <<PY
dt = $T1 - $T0
print(f"1. {$HOSTS} hosts x 10 groups, frames flooded by a bridge: {$RECORDS} (host, source, group) records")
print(f"   {($R1 - $R0) / dt:,.0f} host-datagrams/s checked and accounted, {($F1 - $F0) / dt:,.0f} frames/s read")
print(f"   RSS {$RSS_JOINED} KiB joined, {$RSS_CHECKED} KiB with the records: "
      f"{($RSS_CHECKED - $RSS_JOINED) * 1024 / max(1, $RECORDS):.0f} bytes per record")
print("   sender: " + open("$WORK/flood.out").read().strip())
PY
stop_daemon
ip -n "$NS" link del br0
ip -n "$NS" link del tap-gen 2>/dev/null || true
ip -n "$NS" link del tap-rx 2>/dev/null || true
fi

# 2. Sending and checking together, the bridge's General Queries answered in time.
ip -n "$NS" link add br0 type bridge mcast_snooping 1 mcast_querier 1 mcast_query_use_ifaddr 1 \
    mcast_igmp_version 3 mcast_query_interval 1000 mcast_query_response_interval 300 \
    mcast_startup_query_count 1 mcast_startup_query_interval 100
ip -n "$NS" addr add 10.99.0.1/16 dev br0
ip -n "$NS" link set br0 up
tap tap-src br0
tap tap-rx br0
start_daemon "log_level = \"warn\"
check_streams = true
solicited_node = \"off\"
[[link]]
device = \"tap-src\"
kind = \"tap\"
ipv4 = \"10.99.0.250/16\"
$HOSTS_TABLE
[[stream]]
link = \"tap-src\"
source = \"10.99.0.251\"
group = \"239.10.0.0+10\"
pps = $STREAM_PPS
"
join_all
# The joins' reports out and learned; then one query cycle captured (10 s apart, 3 s to answer).
sleep 4
ip netns exec "$NS" tcpdump -i tap-rx -Z root -s 256 -B 131072 -U -w "$WORK/q.pcap" igmp 2>"$WORK/dump.err" &
DUMP=$!
sleep 1
CPU0=$(awk '{print $14 + $15}' "/proc/$DAEMON/stat")
S0=$(counter stream_tx_packets); R0=$(counter stream_rx_received); T0=$(date +%s.%N)
sleep 15
S1=$(counter stream_tx_packets); R1=$(counter stream_rx_received); T1=$(date +%s.%N)
CPU1=$(awk '{print $14 + $15}' "/proc/$DAEMON/stat")
kill $DUMP; wait $DUMP 2>/dev/null || true
echo "   tcpdump: $(grep -h 'dropped by kernel\|captured' "$WORK/dump.err" | tr '\n' ' ')"
echo "   daemon: device write errors $(counter tun_tx_errors), reports sent $(counter igmp_snd_v3_reports 2>/dev/null || echo ?)"
ctl --json streams --limit 1 >"$WORK/streams.json"
tshark -r "$WORK/q.pcap" -T fields -e frame.time_epoch -e ip.src -e igmp.type -e igmp.max_resp \
    -e igmp.maddr >"$WORK/q.txt" 2>/dev/null
[ -z "${KEEP:-}" ] || cp "$WORK/q.txt" "$KEEP"
python3 - "$WORK/q.txt" <<PY
import json, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
queries = [float(r[0]) for r in rows if r[2] in ("0x11", "17") and r[4] in ("0.0.0.0", "")]
dt = $T1 - $T0
totals = json.load(open("$WORK/streams.json"))["totals"]
print(f"2. {$HOSTS} hosts x 10 groups receiving, 10 streams x {$STREAM_PPS} pps sent by the same daemon:")
print(f"   {($S1 - $S0) / dt:,.0f} packets/s sent, {($R1 - $R0) / dt:,.0f} host-datagrams/s checked, "
      f"daemon CPU {($CPU1 - $CPU0) / 100 / dt * 100:.0f} % of a core")
print(f"   totals since the start: received {totals['received']:,}, lost {totals['lost']}, "
      f"duplicates {totals['duplicates']}, reordered {totals['reordered']}")
if not queries:
    print("   no General Query captured"); sys.exit(1)
ours = lambda r: r[2] in ("0x22", "34") and not r[1].startswith("10.99.0.")
for q in queries:
    if q + 3.0 > $T1:
        print(f"   General Query at +{q - queries[0]:.1f} s: its 3 s ran past the capture")
        continue
    hosts = {r[1] for r in rows if ours(r) and q < float(r[0]) <= q + 3.0}
    late = {r[1] for r in rows if ours(r) and q + 3.0 < float(r[0]) <= q + 6.0} - hosts
    print(f"   General Query at +{q - queries[0]:.1f} s: {len(hosts)} of {$HOSTS} hosts answered "
          f"inside the 3 s Max Resp Time, {len(late)} later (capture on the hosts' port)")
PY
stop_daemon
