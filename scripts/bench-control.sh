#!/usr/bin/env bash
# The control plane and memory figures of BENCHMARKS.md, in one run, in a throwaway namespace:
#   - joins per second over one connection: one by one, pipelined, in batch requests; with and
#     without --state;
#   - RSS per membership at 10^5 and 10^6 any-source groups;
#   - `show` at 10^6 groups: first byte, total, RSS growth, and how late a general query sent
#     while it runs is answered;
#   - join request -> report on the wire, beside the kernel's setsockopt -> report.
# Needs root. Release build. Prints one JSON object per figure (and a summary table).
#
#   scripts/bench-control.sh            # everything (a few minutes)
#   BENCH_GROUPS=100000 scripts/bench-control.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
ensure_packages iproute2:ip python3:python3
[[ $EUID -eq 0 ]] || die "run as root (network namespaces, TUN devices)"

BIG=${BENCH_GROUPS:-1000000}
NS=tmc-bench-$$
DIR=$(mktemp -d /tmp/tunmcast-bench.XXXXXX)
cleanup() {
    [[ -n ${DAEMON:-} ]] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT

say "cargo build --release --workspace --bins"
cargo build --release --workspace --bins
BIN=$PWD/target/release

bench_tun_namespace "$NS" fe80::1
nsx() { ip netns exec "$NS" "$@"; }

CTL=$DIR/ctl.sock
start_daemon() {
    # Not through nsx: $! must be the daemon itself (ip netns exec execs it).
    ip netns exec "$NS" "$BIN/tunmcastd" --iface tun0 --ipv4 10.99.0.2/24 --ipv6-ll fe80::2 --control "$CTL" \
        --log-level warn "$@" 2>>"$DIR/daemon.log" &
    DAEMON=$!
    for _ in $(seq 100); do "$BIN/tunmcastctl" --control "$CTL" ping >/dev/null 2>&1 && return; sleep 0.1; done
    die "tunmcastd did not start: $(cat "$DIR/daemon.log")"
}
stop_daemon() {
    kill -0 "$DAEMON" 2>/dev/null || die "tunmcastd died: $(tail -20 "$DIR/daemon.log")"
    kill "$DAEMON"; wait "$DAEMON" || true; DAEMON=
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$DAEMON/status"; }
bench() { "$BIN/ctlbench" --control "$CTL" --json "$@"; }
figure() { printf '{"figure":"%s",%s\n' "$1" "${2#\{}"; }

say "join throughput (no --state)"
start_daemon
figure "joins one by one (window 1), 20000" "$(bench joins --first 239.1.0.0 --count 20000 --window 1)"
figure "joins pipelined (window 64), 100000" "$(bench joins --first 239.2.0.0 --count 100000 --window 64)"
figure "joins in batches of 1000, 1000000" "$(bench joins --first 239.3.0.0 --count 1000000 --batch 1000 --window 4)"
stop_daemon

say "join throughput with --state"
start_daemon --state "$DIR/state"
figure "joins one by one (window 1) with --state, 5000" "$(bench joins --first 239.1.0.0 --count 5000 --window 1)"
figure "joins pipelined (window 64) with --state, 100000" "$(bench joins --first 239.2.0.0 --count 100000 --window 64)"
figure "joins pipelined (window 64) with --state, next 100000" "$(bench joins --first 239.4.0.0 --count 100000 --window 64)"
figure "joins in batches of 1000 with --state, 1000000" "$(bench joins --first 239.3.0.0 --count 1000000 --batch 1000 --window 4)"
stop_daemon

say "RSS per membership"
start_daemon
base=$(rss_kib)
bench joins --first 232.0.0.0 --count 100000 --batch 1000 --window 4 >/dev/null
at_1e5=$(rss_kib)
bench joins --first 232.1.134.160 --count $((BIG - 100000)) --batch 1000 --window 4 >/dev/null
at_big=$(rss_kib)
figure "rss per membership" "{\"base_kib\":$base,\"at_100000_kib\":$at_1e5,\"at_${BIG}_kib\":$at_big,\"bytes_per_membership_1e5\":$(( (at_1e5 - base) * 1024 / 100000 )),\"bytes_per_membership_big\":$(( (at_big - base) * 1024 / BIG ))}"

say "show at $BIG groups, with an IGMPv3 general query (Max Resp 5 s) sent while it runs"
before=$(rss_kib)
( bench show >"$DIR/show.json" ) &
SHOW=$!
sleep 0.05
nsx "$BIN/mcquerier" --iface tun0 --igmp 3 --max-resp-ms 5000 --count 1 --json --listen-ms 8000 \
    >"$DIR/query.out" 2>&1 || true
peak=$before
while kill -0 "$SHOW" 2>/dev/null; do
    now=$(rss_kib); (( now > peak )) && peak=$now; sleep 0.05
done
wait "$SHOW" || true
first_report=$(python3 - "$DIR/query.out" <<'EOF'
import json, sys
times = []
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if "report" in m.get("type", "") and m.get("src") == "10.99.0.2":
        times.append(float(m["time"]))
print(json.dumps({"reports": len(times), "first_s": min(times) if times else None,
                  "last_s": max(times) if times else None}))
EOF
)
figure "show at $BIG" "$(cat "$DIR/show.json")"
figure "show rss growth" "{\"before_kib\":$before,\"peak_kib\":$peak,\"growth_mib\":$(( (peak - before) / 1024 ))}"
figure "general query during show (max resp 5 s)" "$first_report"
stop_daemon

say "join request -> report on the wire, beside the kernel"
start_daemon
figure "join to wire" "$(nsx "$BIN/ctlbench" --control "$CTL" --json wire-latency --samples 200)"
stop_daemon
