#!/usr/bin/env bash
# Data-path benchmark (stack/BENCHMARKS.md): in a throwaway network namespace with a TUN,
# the kernel floods UDP to 239.1.2.3 and we measure, in one run:
#   1. a bare C loop reading and dropping from the TUN (scripts/bench/tun_drain.c);
#   2. tunmcastd + one `tunmcastctl listen --udp-to` + a plain UDP socket (udp_sink.c);
#   3. tunmcastd with 100 listeners of one group: deliveries per second (daemon counters);
#   4. latency, kernel send -> UDP socket, at a moderate rate (p50, p99);
#   5. one group to 100 receiving UDP sockets (udp_many.c), counted the same way twice: the
#      Linux kernel's own multicast delivery (the sockets joined to the group on the TUN's
#      side), then tunmcastd with 100 `listen --udp-to` listeners, one socket each.
# usage: scripts/bench-datapath.sh [SECONDS] [PAYLOAD_LEN]   (root; gcc; release build)
# Environment: STAMPS, the daemon's --arrival-stamps (kernel).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_packages iproute2:ip gcc:gcc python3:python3
SECONDS_RUN=${1:-5}
LEN=${2:-64}
MODERATE_RATE=${MODERATE_RATE:-20000}
LISTENERS=${LISTENERS:-100}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/tunmcast-bench.XXXXXX)
NS=tmc-bench-$$
TUN=tun0
GROUP=239.1.2.3

cleanup() {
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release -q -p stack -p tools --manifest-path "$ROOT/Cargo.toml"
BIN=$ROOT/target/release
for prog in tun_drain udp_flood udp_sink udp_many; do
    gcc -O2 -Wall -o "$WORK/$prog" "$ROOT/scripts/bench/$prog.c"
done

in_ns() { ip netns exec "$NS" "$@"; }
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" tuntap add dev $TUN mode tun
ip -n "$NS" link set $TUN addrgenmode none
ip -n "$NS" addr add 10.99.0.1/24 dev $TUN
ip -n "$NS" link set $TUN up
in_ns sysctl -qw net.ipv6.conf.$TUN.router_solicitations=0

flood() { # RATE: floods for SECONDS_RUN + 2 s (the receivers count SECONDS_RUN of it)
    in_ns "$WORK/udp_flood" $TUN 10.99.0.1 $GROUP 5000 "$LEN" $((SECONDS_RUN + 2)) "$1"
}
wait_line() { # FILE TEXT
    for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
    echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; exit 1
}
ctl() { "$BIN/tunmcastctl" --control "$WORK/ctl.sock" "$@"; }
counter() { ctl --json stats | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
counters() { ctl --json stats | python3 -c "import json,sys; d = json.load(sys.stdin); print(*(d[k] for k in sys.argv[1:]))" "$@"; }
# The namespace's UDP counter FIELD (/proc/net/snmp), e.g. RcvbufErrors: datagrams the kernel
# dropped because a receiving socket's buffer was full (its reader did not keep up).
udp_snmp() {
    in_ns awk -v f="$1" '/^Udp:/ { if (!h) { for (i = 2; i <= NF; i++) if ($i == f) c = i; h = 1 } else print $c }' /proc/net/snmp
}

echo "== tunmcast data path, ${LEN}-byte payloads, $(nproc) cores, $(uname -r), $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. The baseline: a C loop reading and dropping from the TUN.
in_ns "$WORK/tun_drain" $TUN "$SECONDS_RUN" >"$WORK/drain.out" &
DRAIN=$!
wait_line "$WORK/drain.out" attached
flood 0 >"$WORK/flood1.out" &
wait $DRAIN
C_RATE=$(awk '/packets\/s/ {print $(NF-1)}' "$WORK/drain.out")
wait
echo "1. C read-and-drop loop on the TUN:        $C_RATE packets/s   ($(cat "$WORK/flood1.out"))"

# 5a. The figure to beat: the kernel delivering the flood to $LISTENERS sockets of its own.
in_ns "$WORK/udp_many" join $TUN $GROUP 5000 "$LISTENERS" "$SECONDS_RUN" >"$WORK/many_kernel.out" &
MANY=$!
wait_line "$WORK/many_kernel.out" bound
B0=$(udp_snmp RcvbufErrors)
flood 0 >"$WORK/flood5a.out" &
wait $MANY
B1=$(udp_snmp RcvbufErrors)
wait
KERNEL_FULL=$((B1 - B0))
KERNEL_MANY=$(awk -F'= ' '/udp_many/ {split($2, a, "/"); print a[1]}' "$WORK/many_kernel.out")

# 2. tunmcastd and one --udp-to listener.
start_daemon() {
    in_ns env RUST_LOG=warn "$BIN/tunmcastd" --tun $TUN --ipv4 10.99.0.2/24 \
        --arrival-stamps "${STAMPS:-kernel}" --control "$WORK/ctl.sock" 2>"$WORK/daemon.err" &
    for _ in $(seq 100); do ctl ping >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "tunmcastd did not start" >&2; cat "$WORK/daemon.err" >&2; exit 1
}
start_daemon
DAEMON=$!
# One listener forwarding to a udp_sink on PORT while the kernel floods at RATE.
through_listener() { # PORT RATE SINK_OUT FLOOD_OUT
    in_ns "$WORK/udp_sink" 127.0.0.1 "$1" "$SECONDS_RUN" >"$3" &
    local sink=$!
    wait_line "$3" bound
    ip netns exec "$NS" "$BIN/tunmcastctl" --control "$WORK/ctl.sock" listen $GROUP:5000 --udp-to "127.0.0.1:$1" &
    local listener=$!
    sleep 0.5
    flood "$2" >"$4" &
    local flooder=$!
    wait $sink
    wait $flooder
    kill $listener; wait $listener 2>/dev/null || true
}
through_listener 7000 0 "$WORK/sink.out" "$WORK/flood2.out"
OUR_RATE=$(awk -F'= ' '/datagrams/ {split($2, a, "/"); print a[1]}' "$WORK/sink.out")
echo "2. tunmcastd -> listen --udp-to -> socket: $OUR_RATE datagrams/s   ($(cat "$WORK/flood2.out"))"
python3 -c "print('   ratio to the C loop: %.2f' % ($OUR_RATE / $C_RATE))"
echo "   daemon: read $(counter tun_rx_packets), delivered $(counter udp_delivered), queue-full drops $(counter udp_drop_queue_full)"

# 4. Latency at a moderate rate (same daemon, a fresh listener and sink).
through_listener 7001 "$MODERATE_RATE" "$WORK/sink4.out" /dev/null
echo "4. latency at $MODERATE_RATE/s, kernel send -> UDP socket: $(sed -n 's/.*latency //p' "$WORK/sink4.out")   ($(awk '/datagrams/ {print $2}' "$WORK/sink4.out") datagrams received)"

# 3. One group, $LISTENERS listeners, each forwarding to a port nobody reads.
PIDS=()
for i in $(seq "$LISTENERS"); do
    ip netns exec "$NS" "$BIN/tunmcastctl" --control "$WORK/ctl.sock" listen $GROUP:5000 --udp-to 127.0.0.1:9 &
    PIDS+=($!)
done
for _ in $(seq 100); do
    [ "$(ctl --json show | python3 -c "import json,sys; print(len(json.load(sys.stdin)['listeners']))")" = "$LISTENERS" ] && break
    sleep 0.1
done
D0=$(counter udp_delivered); Q0=$(counter udp_drop_queue_full); R0=$(counter udp_rcv_datagrams)
T0=$(date +%s.%N)
flood 0 >"$WORK/flood3.out"
T1=$(date +%s.%N)
D1=$(counter udp_delivered); Q1=$(counter udp_drop_queue_full); R1=$(counter udp_rcv_datagrams)
python3 -c "
t = $T1 - $T0
print('3. %d listeners of one group: %.0f deliveries/s (%.0f datagrams/s read, %.0f copies/s dropped on full queues)'
      % ($LISTENERS, ($D1 - $D0) / t, ($R1 - $R0) / t, ($Q1 - $Q0) / t))"
echo "   ($(cat "$WORK/flood3.out"))"
kill "${PIDS[@]}" 2>/dev/null || true
wait "${PIDS[@]}" 2>/dev/null || true
listeners() { ctl --json show | python3 -c "import json,sys; print(len(json.load(sys.stdin)['listeners']))"; }
for _ in $(seq 100); do [ "$(listeners)" = 0 ] && break; sleep 0.1; done

# 5b. The same $LISTENERS sockets, each fed by one `listen --udp-to` of tunmcastd.
in_ns "$WORK/udp_many" bind 127.0.0.1 9001 "$LISTENERS" "$SECONDS_RUN" >"$WORK/many_ours.out" &
MANY=$!
wait_line "$WORK/many_ours.out" bound
PIDS=()
for i in $(seq "$LISTENERS"); do
    ip netns exec "$NS" "$BIN/tunmcastctl" --control "$WORK/ctl.sock" listen $GROUP:5000 --udp-to "127.0.0.1:$((9000 + i))" &
    PIDS+=($!)
done
for _ in $(seq 100); do
    [ "$(listeners)" = "$LISTENERS" ] && break
    sleep 0.1
done
# One snapshot of the three counters: the flood goes on after the sink stops, and sends to its
# closed ports are cheap, so separate reads would count copies the sink never had a chance at.
read -r R0 D0 Q0 < <(counters udp_rcv_datagrams udp_delivered udp_drop_queue_full)
B0=$(udp_snmp RcvbufErrors)
T0=$(date +%s.%N)
flood 0 >"$WORK/flood5b.out" &
FLOODER=$!
wait $MANY
T1=$(date +%s.%N)
read -r R1 D1 Q1 < <(counters udp_rcv_datagrams udp_delivered udp_drop_queue_full)
B1=$(udp_snmp RcvbufErrors)
wait $FLOODER
OURS_MANY=$(awk -F'= ' '/udp_many/ {split($2, a, "/"); print a[1]}' "$WORK/many_ours.out")
echo "5. one group to $LISTENERS receiving UDP sockets (udp_many.c, deliveries counted at the sockets):"
echo "   a. the Linux kernel's own delivery:      $KERNEL_MANY deliveries/s   ($(cat "$WORK/flood5a.out"))"
echo "      dropped at the sockets' full receive buffers: $KERNEL_FULL"
echo "   b. tunmcastd, $LISTENERS listen --udp-to:      $OURS_MANY deliveries/s   ($(cat "$WORK/flood5b.out"))"
echo "      dropped at the sockets' full receive buffers: $((B1 - B0))"
python3 -c "
t = $T1 - $T0
print('      daemon: read %.0f datagrams/s, sent %.0f copies/s, %.0f copies/s dropped on its own full queues'
      % (($R1 - $R0) / t, ($D1 - $D0) / t, ($Q1 - $Q0) / t))
print('   ratio b / a at the sockets: %.2f' % ($OURS_MANY / $KERNEL_MANY))"
kill "${PIDS[@]}" 2>/dev/null || true
kill $DAEMON; wait $DAEMON 2>/dev/null || true
echo "== done, load average $(cut -d' ' -f1-3 /proc/loadavg)"
