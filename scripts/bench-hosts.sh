#!/usr/bin/env bash
# Scale of one tunmcastd with many emulated hosts: memory per idle host and per membership
# (RSS deltas), the join ramp through one control connection, and one general query (Max Resp
# Time 10 s) from a snooping Linux bridge answered by every host (counted in a capture).
# Usage: scripts/bench-hosts.sh [HOSTS] [GROUPS_PER_HOST]   (as root; builds the release binaries)
set -eu
source "$(dirname "$0")/lib.sh"
ensure_packages iproute2:ip iproute2:bridge tcpdump:tcpdump tshark:tshark python3:python3
HOSTS=${1:-10000}
GROUPS_PER_HOST=${2:-10}
NS=tmc-bench-hosts-$$
DIR=$(mktemp -d)
cd "$(dirname "$0")/.."
cargo build --release -q -p stack -p tools
BIN=$PWD/target/release
cleanup() {
    [ -n "${DAEMON:-}" ] && kill "$DAEMON" 2>/dev/null || true
    [ -n "${DUMP:-}" ] && kill "$DUMP" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
ctl() { "$BIN/tunmcastctl" --control "$DIR/ctl.sock" "$@"; }

# The link's prefix, sized from the host count: the longest one whose network holds the bridge
# (10.100.0.1) and every host (10.100.0.10 onwards) below its broadcast address.
PREFIX=$(python3 -c "
import ipaddress
first = ipaddress.ip_address('10.100.0.10')
last = first + $HOSTS - 1
for length in range(24, 7, -1):
    net = ipaddress.ip_network(f'10.100.0.1/{length}', strict=False)
    if last in net and last != net.broadcast_address:
        print(length)
        break
else:
    raise SystemExit('$HOSTS hosts do not fit in 10.0.0.0/8')
")

ip netns add "$NS"
ip -n "$NS" link set lo up
# A querier every 30 s with a 10 s Max Resp Time, switched on once every host has joined (its
# first query goes out at once). Until then the bridge is up without a querier: the joins'
# reports reach it and it learns each host's MAC then, as a switch learns them when hosts join,
# and not in the writes of the answer measured (10^6 new FDB entries and their netlink
# notifications cost the writer some 7 % of the answer's CPU at 10^5 hosts).
ip -n "$NS" link add br0 type bridge mcast_snooping 1 mcast_querier 0 mcast_query_use_ifaddr 1 \
    mcast_igmp_version 3 mcast_query_interval 3000 mcast_query_response_interval 1000 \
    mcast_startup_query_count 1 mcast_startup_query_interval 100
ip -n "$NS" tuntap add dev tap1 mode tap
ip -n "$NS" link set tap1 master br0
ip -n "$NS" addr add "10.100.0.1/$PREFIX" dev br0
bridge -n "$NS" link set dev tap1 mcast_flood off
ip -n "$NS" link set tap1 up
ip -n "$NS" link set br0 up

# IGMP only, as the figures in stack/BENCHMARKS.md have always been: no solicited-node groups
# (with them every host holds one MLD group more, and answers the bridge's MLD queries too).
start() {
    printf 'solicited_node = "off"\n[[link]]\ndevice = "tap1"\nkind = "tap"\nsuppression = false\n[[link.hosts]]\ncount = %s\nipv4 = "10.100.0.10/%s"\n' "$1" "$PREFIX" >"$DIR/bench.toml"
    STARTED=$(date +%s.%N)
    ip netns exec "$NS" "$BIN/tunmcastd" --config "$DIR/bench.toml" --control "$DIR/ctl.sock" \
        --log-level warn 2>"$DIR/daemon.err" &
    DAEMON=$!
    i=0; until ctl ping >/dev/null 2>&1; do sleep 0.1; i=$((i+1)); [ $i -lt 1200 ] || exit 1; done
    READY=$(date +%s.%N)
}

start 1
sleep 0.5; RSS_ONE=$(rss "$DAEMON")
kill "$DAEMON"; wait "$DAEMON" 2>/dev/null || true
start "$HOSTS"
STARTUP=$(python3 -c "print(f'{$READY-$STARTED:.2f}')")
sleep 0.5; RSS_IDLE=$(rss "$DAEMON")
LAST=$(python3 -c "import ipaddress;print(ipaddress.ip_address('10.100.0.10')+$HOSTS-1)")
T0=$(date +%s.%N)
# One request per group and block of 100,000 hosts: a request holds at most 2^20 changes, and
# the loop answers a request only once it is applied and its reports are written (a million
# in one request would keep the control socket waiting past its 4 s).
python3 -c "
import ipaddress
first = ipaddress.ip_address('10.100.0.10')
for g in range($GROUPS_PER_HOST):
    for start in range(0, $HOSTS, 100000):
        end = min(start + 100000, $HOSTS) - 1
        print(f'239.10.{g // 256}.{g % 256} {first + start}-{first + end}')
" >"$DIR/joins.txt"
while read -r group range; do
    ctl join "$group" --hosts "$range" >/dev/null
done <"$DIR/joins.txt"
T1=$(date +%s.%N)
# The joins' state-change reports are retransmitted (Robustness - 1 times) after each request
# is answered: with the bridge up they take the loop seconds at 10^6 hosts. Wait until the
# daemon has written nothing for 2 s, so that neither the memory figure nor the answer below
# carries that backlog.
sent() { ctl --json stats | python3 -c "import json,sys;print(json.load(sys.stdin)['tun_tx_packets'])"; }
QUIET_SINCE=$(sent); QUIET=0
for _ in $(seq 1 240); do
    sleep 1
    NOW=$(sent)
    if [ "$NOW" = "$QUIET_SINCE" ]; then QUIET=$((QUIET+1)); else QUIET=0; QUIET_SINCE=$NOW; fi
    [ $QUIET -lt 2 ] || break
done
sleep 1; RSS_JOINED=$(rss "$DAEMON")
M=$((HOSTS*GROUPS_PER_HOST))

# The bridge's querier starts now: its first general query is answered by every host.
# Small slots in a big ring: with the default 256 KiB snapshot the ring holds 8 frames.
ip netns exec "$NS" tcpdump -i tap1 -Z root -s 256 -B 65536 -U -w "$DIR/q.pcap" igmp 2>"$DIR/dump.err" &
DUMP=$!
sleep 1
# CPU seconds of the daemon (utime + stime) across the answer, and the control socket's
# latency while it goes out: one `ping` request at a time on one connection, for 12 s. The
# same pinger runs 6 s first with no query: the loop's own cost (pings, idle turns, the
# device checks), subtracted from the answer's to give the cost per host answered.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
BASE0=$(cpu "$DAEMON")
python3 scripts/bench/control_ping.py "$DIR/ctl.sock" 6 "with no query (the baseline)" >"$DIR/ping0.txt"
BASE1=$(cpu "$DAEMON")
CPU0=$(cpu "$DAEMON")
python3 scripts/bench/control_ping.py "$DIR/ctl.sock" 12 "during the answer" >"$DIR/ping.txt" &
PINGER=$!
# Frames the daemon wrote that the kernel dropped (RX of the TAP): counted across the answer
# only.
tap_rx_dropped() {
    ip -n "$NS" -s -j link show tap1 |
        python3 -c "import json,sys;print(json.load(sys.stdin)[0]['stats64']['rx']['dropped'])"
}
KDROPS0=$(tap_rx_dropped)
ip -n "$NS" link set br0 type bridge mcast_querier 1
sleep 14
wait "$PINGER" || echo "control ping: the client failed"
CPU1=$(cpu "$DAEMON")
kill "$DUMP"; wait "$DUMP" 2>/dev/null || true; DUMP=
tshark -r "$DIR/q.pcap" -T fields -e frame.time_epoch -e ip.src -e igmp.type >"$DIR/q.txt" 2>/dev/null
python3 - "$DIR/q.txt" "$HOSTS" <<'PY'
import sys
rows=[l.split('\t') for l in open(sys.argv[1]) if l.strip()]
q=[float(t) for t,s,ty in rows if ty.strip()=='0x11' or ty.strip()=='17']
if not q: print("no query seen"); sys.exit()
t0=q[0]
# The bridge (10.100.0.1) reports its own group: not one of the hosts.
rep=[(float(t)-t0,s) for t,s,ty in rows if ty.strip() in ('0x22','34') and float(t)>=t0
     and s != '10.100.0.1']
inside=[r for r in rep if r[0]<=10.0]
srcs={s for _,s in inside}
first = {}
for t, s in rep:
    first.setdefault(s, t)
late = sorted(t for t in first.values() if t > 10.0)
print(f"every host's first report: {len(first)} hosts, the last at {max(first.values()):.3f} s "
      f"after the query in the capture ({len(late)} after 10 s, the latest {late[-1] if late else 0:.3f} s)")
print(f"general query: {len(srcs)} of {sys.argv[2]} hosts answered inside 10 s "
      f"({len(inside)} reports; first {min(r[0] for r in inside):.2f} s, last {max(r[0] for r in inside):.2f} s, "
      f"per second of the 10: {[sum(1 for r in inside if int(r[0])==i) for i in range(10)]})")
PY
DROPS=$(ctl --json stats --iface tap1 2>/dev/null |
    python3 -c "import json,sys;d=json.load(sys.stdin);print(d.get('tun_tx_errors'))" 2>/dev/null ||
    echo "not known: stats not answered")
KDROPS=$(($(tap_rx_dropped) - KDROPS0))
echo "hosts $HOSTS, groups $GROUPS_PER_HOST per host, memberships $M; start-up to the first ping answered: $STARTUP s"
echo "RSS: 1 host ${RSS_ONE} KiB; $HOSTS idle hosts ${RSS_IDLE} KiB; joined ${RSS_JOINED} KiB"
python3 -c "
h=$HOSTS;m=$M
print(f'per idle host: {($RSS_IDLE-$RSS_ONE)*1024/(h-1):.0f} B; per membership: {($RSS_JOINED-$RSS_IDLE)*1024/m:.0f} B')
print(f'join ramp: {m} memberships in {$T1-$T0:.2f} s = {m/($T1-$T0):.0f}/s (one request per group and 100,000 hosts)')"
echo "device write errors: $DROPS"
echo "frames written during the answer that the kernel dropped (RX of the TAP): $KDROPS"
cat "$DIR/ping0.txt" "$DIR/ping.txt"
python3 -c "
ticks=$(getconf CLK_TCK); h=$HOSTS; cpu=($CPU1-$CPU0)/ticks; base=($BASE1-$BASE0)/ticks*14/6
print(f'CPU during the answer (14 s): {cpu:.2f} s = {cpu*1e6/h:.1f} us per host; '
      f'less the loop with no query ({base:.2f} s in 14 s): {(cpu-base)*1e6/h:.1f} us per host')"
