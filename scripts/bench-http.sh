#!/usr/bin/env bash
# What the HTTP view costs a daemon with many emulated hosts: tunmcastd's CPU (all threads, and
# its http thread alone) over a quiet phase and over a phase with the live page open in headless
# Chromium (polling every 500 ms) and /metrics scraped every second; in both, every general query
# (Max Resp Time 10 s, every 20 s) from a snooping bridge must be answered by every host inside
# 10 s (counted in a capture).
# The hosts join no solicited-node group (100,000 of them would fill the bridge's mdb, which then
# stops snooping and querying).
# Usage: scripts/bench-http.sh [HOSTS] [GROUPS_PER_HOST] [SECONDS]   (as root; builds the release binaries)
set -eu
source "$(dirname "$0")/lib.sh"
ensure_packages iproute2:ip iproute2:bridge tcpdump:tcpdump tshark:tshark python3:python3 \
    chromium:chromium
HOSTS=${1:-100000}
GROUPS_PER_HOST=${2:-2}
PHASE=${3:-40}
NS=tmc-bench-http-$$
DIR=$(mktemp -d)
cd "$(dirname "$0")/.."
cargo build --release -q -p stack -p tools
BIN=$PWD/target/release
cleanup() {
    for pid in ${SCRAPER:-} ${BROWSER:-} ${DUMP:-} ${DAEMON:-}; do kill "$pid" 2>/dev/null || true; done
    sleep 0.5
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
ctl() { "$BIN/tunmcastctl" --control "$DIR/ctl.sock" "$@"; }
# utime + stime of a process or a thread, in clock ticks.
ticks() { awk '{print $14 + $15}' "$1"; }

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
ip -n "$NS" link add br0 type bridge mcast_snooping 1 mcast_querier 1 mcast_query_use_ifaddr 1 \
    mcast_igmp_version 3 mcast_query_interval 2000 mcast_query_response_interval 1000 \
    mcast_startup_query_count 1 mcast_startup_query_interval 100
ip -n "$NS" tuntap add dev tap1 mode tap
ip -n "$NS" link set tap1 master br0
ip -n "$NS" addr add "10.100.0.1/$PREFIX" dev br0
bridge -n "$NS" link set dev tap1 mcast_flood off

printf 'http = "127.0.0.1:9464"\nsolicited_node = "off"\n[[link]]\ndevice = "tap1"\nkind = "tap"\nsuppression = false\n[[link.hosts]]\ncount = %s\nipv4 = "10.100.0.10/%s"\n' "$HOSTS" "$PREFIX" >"$DIR/bench.toml"
ip netns exec "$NS" "$BIN/tunmcastd" --config "$DIR/bench.toml" --control "$DIR/ctl.sock" \
    --log-level warn 2>"$DIR/daemon.err" &
DAEMON=$!
i=0; until ctl ping >/dev/null 2>&1; do sleep 0.1; i=$((i+1)); [ $i -lt 600 ] || exit 1; done
HTTP_TID=$(grep -l '^http$' /proc/$DAEMON/task/*/comm | head -1 | xargs dirname)
LAST=$(python3 -c "import ipaddress;print(ipaddress.ip_address('10.100.0.10')+$HOSTS-1)")
ctl join "239.10.0.0+$GROUPS_PER_HOST" --hosts "10.100.0.10-$LAST" >/dev/null
ip -n "$NS" link set tap1 up
ip netns exec "$NS" tcpdump -i tap1 -Z root -s 128 -B 131072 -U -w "$DIR/q.pcap" igmp 2>"$DIR/dump.err" &
DUMP=$!
sleep 1
ip -n "$NS" link set br0 up
sleep 12 # the first query, answered

measure() {
    T0=$(date +%s.%N); D0=$(ticks /proc/$DAEMON/stat); H0=$(ticks "$HTTP_TID/stat")
    sleep "$PHASE"
    T1=$(date +%s.%N); D1=$(ticks /proc/$DAEMON/stat); H1=$(ticks "$HTTP_TID/stat")
    python3 -c "
hz=100; t=$T1-$T0
print(f'$1: daemon {($D1-$D0)/hz/t*100:.1f}% of a core, its http thread {($H1-$H0)/hz/t*100:.1f}%  ({t:.0f} s from {$T0:.0f})')"
}
measure quiet >"$DIR/quiet.txt"
Q1=$(date +%s.%N)

# The page open (its first host chosen, so a host's groups are fetched too) and a scraper.
mkdir -p "$DIR/profile"
ip netns exec "$NS" chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$DIR/profile" "http://127.0.0.1:9464/#host=10.100.0.10" >/dev/null 2>&1 &
BROWSER=$!
ip netns exec "$NS" python3 -c "
import time, urllib.request, urllib.error
worst, failed, done = 0, [], 0
while True:
    t = time.time()
    try:
        body = urllib.request.urlopen('http://127.0.0.1:9464/metrics', timeout=10).read()
        done += 1
    except urllib.error.HTTPError as e:
        body = b''
        failed.append(f'{e.code} {e.read().decode()}')
    worst = max(worst, time.time() - t)
    open('$DIR/scrape.txt', 'w').write(f'{done} scrapes of {len(body)} bytes, slowest {worst*1000:.1f} ms; '
                                       f'{len(failed)} failed {failed[:3]}\n')
    time.sleep(max(0, 1 - (time.time() - t)))
" &
SCRAPER=$!
sleep 3
measure "page open + scrape every 1 s" >"$DIR/loaded.txt"
kill "$SCRAPER" "$BROWSER"; SCRAPER=; BROWSER=
sleep 1
kill "$DUMP"; wait "$DUMP" 2>/dev/null || true; DUMP=
tshark -r "$DIR/q.pcap" -T fields -e frame.time_epoch -e ip.src -e igmp.type >"$DIR/q.txt" 2>/dev/null
cat "$DIR/quiet.txt" "$DIR/loaded.txt"
echo "general queries heard by the hosts: $(ctl --json stats | python3 -c "import json,sys;d=json.load(sys.stdin);print(d.get('igmp_rcv_v3_queries', 0))") (over every host)"
echo "scraper: $(cat "$DIR/scrape.txt")"
echo "RSS: $(awk '/VmRSS/ {print $2}' /proc/$DAEMON/status) KiB"
python3 - "$DIR/q.txt" "$HOSTS" "$Q1" <<'PY'
import sys
rows = [l.split('\t') for l in open(sys.argv[1]) if l.strip()]
hosts, loaded_from = int(sys.argv[2]), float(sys.argv[3])
queries = [float(t) for t, s, ty in rows if ty.strip() in ('0x11', '17')]
reports = sorted((float(t), s) for t, s, ty in rows if ty.strip() in ('0x22', '34'))
for q in queries:
    window = [(t - q, s) for t, s in reports if q <= t <= q + 12]
    inside = {s for d, s in window if d <= 10.0}
    late = [d for d, s in window if d > 10.0]
    phase = "loaded" if q >= loaded_from else "quiet"
    last = max((d for d, s in window if d <= 10.0), default=0)
    print(f"query at {q:.0f} ({phase}): {len(inside)} of {hosts} hosts inside 10 s, "
          f"last {last:.2f} s, {len(late)} late")
PY
