#!/usr/bin/env bash
# Zapping at scale through a snooping Linux bridge: HOSTS emulated hosts on a TAP port zap
# across CHANNELS channels (sequential order, one join per channel each), a sender behind the
# bridge sends every channel at RATE datagrams a second. Prints the run's figures, the
# daemon's CPU and RSS, and how far the daemon's join delays are from a capture's (tcpdump on
# the TAP: the host's report with TO_EX(G) to the first datagram of G after it).
# Usage: scripts/bench-zapping.sh [HOSTS] [CHANNELS] [RATE]   (as root; builds the release
# binaries)
set -eu
source "$(dirname "$0")/lib.sh"
ensure_packages iproute2:ip iproute2:bridge tcpdump:tcpdump tshark:tshark python3:python3
HOSTS=${1:-1000}
CHANNELS=${2:-20}
RATE=${3:-50}
VIEW_MS=${VIEW_MS:-1000}
NS=tmc-bench-zap-$$
SRC=tmc-bench-zap-src-$$
DIR=$(mktemp -d)
cd "$(dirname "$0")/.."
cargo build --release -q -p stack -p tools
BIN=$PWD/target/release
cleanup() {
    [ -n "${DAEMON:-}" ] && kill "$DAEMON" 2>/dev/null || true
    [ -n "${DUMP:-}" ] && kill "$DUMP" 2>/dev/null || true
    [ -n "${SENDER:-}" ] && kill "$SENDER" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    ip netns del "$SRC" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ctl() { "$BIN/tunmcastctl" --control "$DIR/ctl.sock" "$@"; }

ip netns add "$NS"
ip netns add "$SRC"
ip -n "$NS" link set lo up
ip -n "$NS" link add br0 type bridge mcast_snooping 1 mcast_query_use_ifaddr 1 \
    mcast_igmp_version 3 mcast_query_interval 3000 mcast_query_response_interval 1000 \
    mcast_last_member_interval 20
ip -n "$NS" link set br0 type bridge mcast_querier 1
ip -n "$NS" tuntap add dev tap1 mode tap
ip -n "$NS" link set tap1 master br0
ip -n "$NS" addr add 10.100.0.1/16 dev br0
bridge -n "$NS" link set dev tap1 mcast_flood off
ip -n "$NS" link add vbr type veth peer name vsrc
ip -n "$NS" link set vsrc netns "$SRC"
ip -n "$NS" link set vbr master br0
ip -n "$NS" link set vbr up
ip -n "$SRC" addr add 10.100.255.200/16 dev vsrc
ip -n "$SRC" link set lo up
ip -n "$SRC" link set vsrc up
ip -n "$NS" link set br0 up
ip -n "$NS" link set tap1 up

printf 'solicited_node = "off"\nlog_level = "warn"\n[[link]]\ndevice = "tap1"\nkind = "tap"\nsuppression = false\n[[link.hosts]]\ncount = %s\nipv4 = "10.100.0.10/16"\n' \
    "$HOSTS" >"$DIR/bench.toml"
ip netns exec "$NS" "$BIN/tunmcastd" --config "$DIR/bench.toml" --control "$DIR/ctl.sock" \
    2>"$DIR/daemon.err" &
DAEMON=$!
i=0; until ctl ping >/dev/null 2>&1; do sleep 0.1; i=$((i+1)); [ $i -lt 600 ] || exit 1; done

CHANNEL_LIST=$(python3 -c "print(','.join(f'239.20.{c // 256}.{c % 256}' for c in range($CHANNELS)))")
ip netns exec "$SRC" python3 - "$CHANNEL_LIST" "$RATE" <<'PY' &
import socket, sys, time
groups = sys.argv[1].split(",")
rate = float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("10.100.255.200"))
start = time.time()
n = 0
while True:
    for g in groups:
        s.sendto(b"x" * 64, (g, 5000))
    n += 1
    time.sleep(max(0, start + n / rate - time.time()))
PY
SENDER=$!
# The querier's start-up hold on snooped forwarding (one response interval) passes first.
sleep 3
ip netns exec "$NS" tcpdump -i tap1 -Z root -s 128 -B 131072 -U -w "$DIR/zap.pcap" \
    'igmp or udp' 2>"$DIR/dump.err" &
DUMP=$!
sleep 1
LAST=$(python3 -c "import ipaddress;print(ipaddress.ip_address('10.100.0.10')+$HOSTS-1)")
RSS0=$(rss "$DAEMON"); CPU0=$(cpu "$DAEMON"); T0=$(date +%s.%N)
set +e
ctl test zapping --hosts "10.100.0.10-$LAST" --channels "$CHANNEL_LIST" --view-ms "$VIEW_MS" \
    --leave-grace-ms 1500 --wait --out "$DIR/out" >"$DIR/run.txt" 2>"$DIR/run.err"
STATUS=$?
set -e
T1=$(date +%s.%N); CPU1=$(cpu "$DAEMON"); RSS1=$(rss "$DAEMON")
kill "$DUMP"; wait "$DUMP" 2>/dev/null || true; DUMP=
echo "hosts $HOSTS, channels $CHANNELS at $RATE datagrams/s each, view $VIEW_MS ms: exit $STATUS"
python3 -c "print(f'run {$T1-$T0:.1f} s, daemon CPU {($CPU1-$CPU0)/100:.2f} s, RSS {$RSS0} -> {$RSS1} KiB')"
tshark -r "$DIR/zap.pcap" -T fields -E separator=/t -e frame.time_epoch -e ip.src -e ip.dst \
    -e igmp.maddr -e igmp.record_type >"$DIR/zap.txt" 2>/dev/null
python3 - "$DIR/out/report.json" "$DIR/zap.txt" <<'PY'
import bisect, json, sys
report = json.load(open(sys.argv[1]))
ms = lambda ns: f"{ns / 1e6:.3f}"
j, l = report["join_delay"], report["leave_delay"]
print(f"verdict {report['verdict']}, zaps {report['zaps']} of {report['zaps_planned']}, "
      f"not received {report['not_received']}, leaves shared {report['leave_shared']}")
print(f"join delay ms: min {ms(j['min_ns'])} p50 {ms(j['p50_ns'])} p90 {ms(j['p90_ns'])} "
      f"p99 {ms(j['p99_ns'])} max {ms(j['max_ns'])} ({j['count']} zaps)")
print(f"leave delay ms: p50 {ms(l['p50_ns'])} p99 {ms(l['p99_ns'])} ({l['count']})")
# The capture: each host's first TO_EX(G) report (record type 4), and every datagram's time.
joins = {}
datagrams = {}
for line in open(sys.argv[2]):
    f = line.rstrip("\n").split("\t")
    if len(f) < 3:
        continue
    t, src, dst = float(f[0]), f[1], f[2]
    if len(f) >= 5 and f[3]:
        for group, kind in zip(f[3].split(","), f[4].split(",")):
            if kind == "4":
                joins.setdefault((src, group), t)
    elif not dst.startswith("224.0.0."):
        datagrams.setdefault(dst, []).append(t)
diffs = []
for r in report["records"]:
    if r.get("to") is None or r.get("join_delay_ns") is None:
        continue
    sent = joins.get((r["host"], r["to"]))
    times = datagrams.get(r["to"], [])
    if sent is None:
        continue
    i = bisect.bisect_right(times, sent)
    if i == len(times):
        continue
    captured = (times[i] - sent) * 1e9
    diffs.append(abs(captured - r["join_delay_ns"]) / 1e6)
diffs.sort()
if diffs:
    p = lambda q: diffs[min(len(diffs) - 1, int(q * len(diffs)))]
    within = sum(d <= 1.0 for d in diffs)
    print(f"daemon vs capture join delay, |difference| ms over {len(diffs)} zaps: "
          f"p50 {p(0.5):.3f} p99 {p(0.99):.3f} max {diffs[-1]:.3f}; within 1 ms: {within}")
else:
    print("no zap matched in the capture")
PY
tail -n 3 "$DIR/run.err" || true
