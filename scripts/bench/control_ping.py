#!/usr/bin/env python3
"""The control socket's latency under load: one `ping` request at a time on one connection,
every 10 ms, for SECONDS; prints one line of percentiles, labelled LABEL.

Usage: control_ping.py SOCKET SECONDS LABEL   (scripts/bench-hosts.sh, scripts/bench-answer.sh)
"""
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.settimeout(10)
f = s.makefile("rb")
lat = []
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    t = time.monotonic()
    s.sendall(b'{"cmd":"ping"}\n')
    f.readline()
    lat.append((time.monotonic() - t) * 1e3)
    time.sleep(0.01)
lat.sort()
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print(f"control ping {sys.argv[3]}: {len(lat)} requests, p50 {p(0.5):.2f} ms, "
      f"p99 {p(0.99):.2f} ms, max {lat[-1]:.2f} ms")
