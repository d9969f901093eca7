#!/usr/bin/env bash
# A short tour of tunmcast: a TUN link in a throwaway network namespace,
# tunmcastd holding one end as a host, a querier on the kernel's end. Joins
# 239.1.2.3, 232.1.1.1 from one source only, and ff12::1234; queries the link
# over IGMPv3 and MLDv2, then once over IGMPv2 (the daemon falls back); shows
# what went over the wire and what the daemon thinks. Cleans up after itself,
# and never touches the host's own interfaces.
#
# Installs what is missing (iproute2, tcpdump, tshark), builds the release
# binaries, then runs the demo as root (through sudo if you are not root).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

if [[ ${1:-} != --no-build ]]; then
    ensure_packages iproute2:ip tcpdump:tcpdump tshark:tshark
    ensure_rust
    say "cargo build --release (tunmcastd, tunmcastctl, mcquerier)"
    cargo build --release --workspace --bins
    if [[ $EUID -ne 0 ]]; then
        exec sudo "$0" --no-build
    fi
fi
[[ $EUID -eq 0 ]] || die "the demo needs root (network namespaces, TUN devices)"

BIN=${TUNMCAST_BIN_DIR:-$PWD/target/release}
for b in tunmcastd tunmcastctl mcquerier; do
    [[ -x $BIN/$b ]] || die "$BIN/$b missing: run scripts/demo.sh without --no-build"
done
NS=tmc-demo-$$
WORK=$(mktemp -d /tmp/tunmcast-demo.XXXXXX)
SOCK=$WORK/ctl.sock
DAEMON_PID='' TCPDUMP_PID=''

cleanup() {
    local pid
    [[ -n $DAEMON_PID ]] && kill "$DAEMON_PID" 2>/dev/null
    [[ -n $TCPDUMP_PID ]] && kill "$TCPDUMP_PID" 2>/dev/null
    if ip netns list | grep -qw "$NS"; then
        for pid in $(ip netns pids "$NS"); do kill -9 "$pid" 2>/dev/null || true; done
        sleep 0.2
        ip netns del "$NS"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

ctl() {
    echo "\$ tunmcastctl $*"
    "$BIN/tunmcastctl" --control "$SOCK" "$@"
}

say "a TUN link in netns $NS: kernel side 10.99.0.1 / fe80::1"
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" tuntap add dev tun0 mode tun
ip -n "$NS" link set tun0 addrgenmode none
ip -n "$NS" addr add 10.99.0.1/24 dev tun0
ip -n "$NS" -6 addr add fe80::1/64 dev tun0 nodad
ip -n "$NS" link set tun0 up

say "tunmcastd on tun0 as 10.99.0.2 / fe80::2 (log: tunmcastd.log)"
# Not through a shell function: $! must be the daemon itself (ip netns exec execs it).
ip netns exec "$NS" "$BIN/tunmcastd" --iface tun0 --ipv4 10.99.0.2/24 --ipv6-ll fe80::2 \
    --control "$SOCK" >"$WORK/tunmcastd.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 100); do
    "$BIN/tunmcastctl" --control "$SOCK" ping >/dev/null 2>&1 && break
    kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$WORK/tunmcastd.log"; die "tunmcastd exited"; }
    sleep 0.1
done
ctl ping

ip netns exec "$NS" tcpdump -i tun0 -Z root -U --immediate-mode -w "$WORK/wire.pcap" 'igmp or ip6' \
    >/dev/null 2>"$WORK/tcpdump.log" &
TCPDUMP_PID=$!
for _ in $(seq 100); do
    grep -q "listening on" "$WORK/tcpdump.log" 2>/dev/null && break
    sleep 0.1
done

say "join two IPv4 groups (one from a single source) and an IPv6 group"
ctl join 239.1.2.3
ctl join 232.1.1.1 --include 10.99.0.77
ctl join ff12::1234
sleep 1.2

say "an IGMPv3 general query from the kernel side (Max Resp Time 1 s)"
echo "\$ mcquerier --iface tun0 --igmp 3 --max-resp-ms 1000 --count 1"
# It listens for Max Resp Time + 1 s, printing what it hears, then exits.
timeout 5 ip netns exec "$NS" "$BIN/mcquerier" --iface tun0 --igmp 3 --max-resp-ms 1000 --count 1 || true

say "an MLDv2 general query (Maximum Response Delay 1 s)"
echo "\$ mcquerier --iface tun0 --mld 2 --max-resp-ms 1000 --count 1"
timeout 5 ip netns exec "$NS" "$BIN/mcquerier" --iface tun0 --mld 2 --max-resp-ms 1000 --count 1 || true

say "an IGMPv2 query: the daemon falls back to IGMPv2 for the Older Version Querier Present Timeout"
echo "\$ mcquerier --iface tun0 --igmp 2 --max-resp-ms 1000 --count 1"
timeout 5 ip netns exec "$NS" "$BIN/mcquerier" --iface tun0 --igmp 2 --max-resp-ms 1000 --count 1 || true

say "what the daemon knows"
ctl show
echo
ctl stats | grep -Ev ' 0$' || true
echo "(counters that are still 0 left out)"

say "stop tunmcastd (SIGTERM): it leaves its groups on the way out"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" && echo "tunmcastd exited 0" || echo "tunmcastd exited $?"
DAEMON_PID=
sleep 0.3
kill -INT "$TCPDUMP_PID"
wait "$TCPDUMP_PID" || true
TCPDUMP_PID=

say "everything that went over the wire (tshark; 10.99.0.2 / fe80::2 is tunmcastd)"
tshark -r "$WORK/wire.pcap" -o ip.check_checksum:TRUE 2>/dev/null
echo
echo "Checksums, Router Alert and TTL / hop limit of each IGMP / MLD packet:"
tshark -r "$WORK/wire.pcap" -o ip.check_checksum:TRUE -Y 'igmp or icmpv6.type == 130 or icmpv6.type == 131 or icmpv6.type == 132 or icmpv6.type == 143' \
    -T fields -e frame.number -e ip.src -e ipv6.src -e ip.ttl -e ipv6.hlim \
    -e ip.opt.ra -e ipv6.opt.router_alert -e ip.checksum.status -e igmp.checksum.status \
    -e icmpv6.checksum.status 2>/dev/null |
    awk -F'\t' 'BEGIN { printf "%5s  %-10s  %-4s  %-12s  %s\n", "No.", "SOURCE", "TTL", "ROUTER-ALERT", "CHECKSUMS" }
        { good = ($8 $9 $10 ~ /^1+$/) ? "good" : "BAD"
          printf "%5s  %-10s  %-4s  %-12s  %s\n", $1, $2 $3, $4 $5, ($6 $7 == "0") ? "yes" : "NO", good }'
