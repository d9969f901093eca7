#!/usr/bin/env bash
# Test-stream benchmark (stack/BENCHMARKS.md): in a throwaway network namespace, in one run:
#   1. generation: a bare C loop writing stream frames of STREAMS groups to a TAP
#      (scripts/bench/stream_send.c), then tunmcastd sending STREAMS streams on the same TAP,
#      each asked for more than the device takes: packets per second written;
#   2. checking: stream_send writing frames of 10 groups into a TAP of a bridge without
#      snooping, which floods them to a second TAP: a bare C read-and-drop loop on that TAP
#      (scripts/bench/tun_drain.c), then tunmcastd with 1 and with HOSTS emulated hosts on it, each joined
#      to the 10 groups: frames read and checked per second, and (host, source, group) records.
# usage: scripts/bench-streams.sh [SECONDS]   (root; gcc; release build)
# Environment: STREAMS (1000), STREAM_PPS (5000), HOSTS (100), and STAMPS, the daemon's
# --arrival-stamps (kernel).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_packages iproute2:ip gcc:gcc python3:python3
SECONDS_RUN=${1:-5}
STREAMS=${STREAMS:-1000}
STREAM_PPS=${STREAM_PPS:-5000}
HOSTS=${HOSTS:-100}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/tunmcast-bench.XXXXXX)
NS=tmc-bench-$$

cleanup() {
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release -q -p stack -p tools --manifest-path "$ROOT/Cargo.toml"
BIN=$ROOT/target/release
for prog in stream_send tun_drain; do
    gcc -O2 -Wall -o "$WORK/$prog" "$ROOT/scripts/bench/$prog.c"
done

in_ns() { ip netns exec "$NS" "$@"; }
ip netns add "$NS"
ip -n "$NS" link set lo up
tap() { # NAME [BRIDGE]
    ip -n "$NS" tuntap add dev "$1" mode tap
    ip -n "$NS" link set "$1" addrgenmode none
    if [ -n "${2:-}" ]; then ip -n "$NS" link set "$1" master "$2"; fi
    ip -n "$NS" link set "$1" up
}
wait_line() { # FILE TEXT
    for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
    echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; exit 1
}
ctl() { "$BIN/tunmcastctl" --control "$WORK/ctl.sock" "$@"; }
counter() { ctl --json stats | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
start_daemon() { # CONFIG
    printf '%s' "$1" >"$WORK/bench.toml"
    # Not through in_ns: a function sent to the background is a subshell, and $! its pid.
    ip netns exec "$NS" env RUST_LOG=warn "$BIN/tunmcastd" --config "$WORK/bench.toml" \
        --arrival-stamps "${STAMPS:-kernel}" --control "$WORK/ctl.sock" 2>"$WORK/daemon.err" &
    DAEMON=$!
    for _ in $(seq 200); do ctl ping >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "tunmcastd did not start" >&2; cat "$WORK/daemon.err" >&2; exit 1
}
stop_daemon() { kill $DAEMON; wait $DAEMON 2>/dev/null || true; }
# Counter NAME's growth per second over SECONDS_RUN.
rate_of() {
    local c0 c1 t0 t1
    c0=$(counter "$1"); t0=$(date +%s.%N)
    sleep "$SECONDS_RUN"
    c1=$(counter "$1"); t1=$(date +%s.%N)
    python3 -c "print('%.0f' % (($c1 - $c0) / ($t1 - $t0)))"
}

echo "== tunmcast test streams, 64-byte payloads, $(nproc) cores, $(uname -r), $(date -u +%FT%TZ)"

# 1. Generation.
tap tap-src
in_ns "$WORK/stream_send" tap-src "$STREAMS" "$SECONDS_RUN" >"$WORK/send.out"
C_SEND=$(awk '/frames\/s/ {print $(NF-3)}' "$WORK/send.out")
echo "1a. C loop writing $STREAMS streams' frames to a TAP: $C_SEND frames/s"
start_daemon "log_level = \"warn\"
[[link]]
device = \"tap-src\"
kind = \"tap\"
ipv4 = \"10.99.0.250/24\"
[[stream]]
link = \"tap-src\"
source = \"10.99.0.251\"
group = \"239.10.0.0+$STREAMS\"
pps = $STREAM_PPS
"
sleep 1
OUR_SEND=$(rate_of stream_tx_packets)
echo "1b. tunmcastd, $STREAMS streams at $STREAM_PPS pps asked: $OUR_SEND packets/s   (device errors $(counter stream_tx_errors))"
python3 -c "print('    ratio to the C loop: %.2f' % ($OUR_SEND / $C_SEND))"
stop_daemon

# 2. Checking.
ip -n "$NS" link add br0 type bridge mcast_snooping 0
ip -n "$NS" link set br0 up
tap tap-gen br0
tap tap-rx br0
flood() { in_ns "$WORK/stream_send" tap-gen 10 $((SECONDS_RUN + 3)) >"$WORK/flood.out"; }
in_ns "$WORK/tun_drain" tap-rx "$SECONDS_RUN" tap >"$WORK/drain.out" &
DRAIN=$!
wait_line "$WORK/drain.out" attached
flood &
wait $DRAIN
C_DRAIN=$(awk '/packets\/s/ {print $(NF-1)}' "$WORK/drain.out")
wait
echo "2a. C read-and-drop loop on the receivers' TAP: $C_DRAIN frames/s   ($(cat "$WORK/flood.out"))"
for N in 1 "$HOSTS"; do
LAST=$((10 + N - 1))
start_daemon "log_level = \"warn\"
check_streams = true
solicited_node = \"off\"
[[link]]
device = \"tap-rx\"
kind = \"tap\"
suppression = false
[[link.hosts]]
count = $N
ipv4 = \"10.99.1.10/16\"
"
ctl join 239.10.0.0+10 --iface tap-rx --hosts "10.99.1.10-10.99.$((LAST / 256 + 1)).$((LAST % 256))" >/dev/null
flood &
FLOOD=$!
sleep 1
R0=$(counter stream_rx_received)
OUR_READ=$(rate_of tun_rx_packets)
R1=$(counter stream_rx_received)
wait $FLOOD
RECORDS=$(ctl --json streams --limit 1 | python3 -c "import json,sys; print(json.load(sys.stdin)['total_receivers'])")
echo "2b. tunmcastd, $N host(s) x 10 groups: $OUR_READ frames/s read and checked, $RECORDS (host, source, group) records, $((R1 - R0)) datagrams accounted to hosts"
python3 -c "print('    ratio to the C loop: %.2f' % ($OUR_READ / $C_DRAIN))"
echo "    daemon RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$DAEMON/status)"
stop_daemon
done
