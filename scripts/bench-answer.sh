#!/usr/bin/env bash
# One host holding GROUPS any-source groups on one TUN answers one IGMPv3 General Query (Max
# Resp Time 10 s) from a raw socket on the kernel's side (mcquerier): the daemon's RSS peak
# while it answers (sampled every 20 ms), the answer's span and the reports and records the
# raw socket heard, and `tunmcastctl ping` (one connection, every 10 ms) during it.
# Usage: scripts/bench-answer.sh [GROUPS]   (as root; builds the release binaries; 10^6 default)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
ensure_packages iproute2:ip python3:python3
[[ $EUID -eq 0 ]] || die "run as root (network namespaces, TUN devices)"
NGROUPS=${1:-1000000}
NS=tmc-bench-answer-$$
DIR=$(mktemp -d /tmp/tunmcast-bench.XXXXXX)
cleanup() {
    [[ -n ${SAMPLER:-} ]] && kill "$SAMPLER" 2>/dev/null
    [[ -n ${DAEMON:-} ]] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
cargo build --release -q -p stack -p tools
BIN=$PWD/target/release

bench_tun_namespace "$NS"
nsx() { ip netns exec "$NS" "$@"; }
CTL=$DIR/ctl.sock
ctl() { "$BIN/tunmcastctl" --control "$CTL" "$@"; }
# Not through nsx: $! must be the daemon itself (ip netns exec execs it).
ip netns exec "$NS" "$BIN/tunmcastd" --iface tun0 --ipv4 10.99.0.2/24 --solicited-node off \
    --control "$CTL" --log-level warn 2>>"$DIR/daemon.log" &
DAEMON=$!
for _ in $(seq 100); do ctl ping >/dev/null 2>&1 && break; sleep 0.1; done
ctl ping >/dev/null || die "tunmcastd did not start: $(cat "$DIR/daemon.log")"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$DAEMON/status"; }

"$BIN/ctlbench" --control "$CTL" --json joins --first 232.0.0.0 --count "$NGROUPS" --batch 1000 \
    --window 4 >"$DIR/joins.json"
# The joins' state-change reports and their retransmissions out first: nothing written for 2 s.
sent() { ctl --json stats | python3 -c "import json,sys;print(json.load(sys.stdin)['tun_tx_packets'])"; }
LAST=$(sent); QUIET=0
for _ in $(seq 1 240); do
    sleep 1
    NOW=$(sent)
    if [[ $NOW == "$LAST" ]]; then QUIET=$((QUIET + 1)); else QUIET=0; LAST=$NOW; fi
    (( QUIET < 2 )) || break
done
BEFORE=$(rss)

( while kill -0 "$DAEMON" 2>/dev/null; do rss; sleep 0.02; done ) >"$DIR/rss.txt" &
SAMPLER=$!
python3 scripts/bench/control_ping.py "$CTL" 12 "during the answer" >"$DIR/ping.txt" &
PINGER=$!
nsx "$BIN/mcquerier" --iface tun0 --igmp 3 --max-resp-ms 10000 --count 1 --json \
    --listen-ms 13000 >"$DIR/heard.json" 2>"$DIR/mcquerier.err" || true
wait "$PINGER" || echo "control ping: the client failed"
kill "$SAMPLER"; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=

echo "groups $NGROUPS on one TUN: $(python3 -c "import json;d=json.load(open('$DIR/joins.json'));print(f\"joined at {d['changes_per_second']} /s\")" 2>/dev/null || echo joined)"
python3 - "$DIR/heard.json" "$DIR/rss.txt" "$BEFORE" "$NGROUPS" <<'PY'
import json, sys
reports, records, times = 0, 0, []
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("src") != "10.99.0.2" or "report" not in m.get("type", ""):
        continue
    reports += 1
    records += len(m.get("records") or [])
    times.append(float(m["time"]))
samples = [int(l) for l in open(sys.argv[2]) if l.strip()]
before = int(sys.argv[3])
peak = max(samples, default=before)
print(f"RSS before the query {before} KiB, peak while answering {peak} KiB: "
      f"growth {peak - before} KiB ({len(samples)} samples)")
print(f"the raw socket heard {reports} reports holding {records} records of {sys.argv[4]}"
      + (f"; the answer from {min(times):.3f} s to {max(times):.3f} s after the query"
         if times else ""))
PY
cat "$DIR/ping.txt"
