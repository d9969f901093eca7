#!/usr/bin/env python3
"""A zapping run's report against a capture of its hosts' port (scripts/bench-zapping.sh).

Usage: zapping_capture.py REPORT_JSON FIELDS_TXT GQ_MRT_MS GSQ_MRT_MS

FIELDS_TXT is `tshark -T fields` output, tab-separated: frame.time_epoch, sll.ifindex (the
port, in a capture of several; empty in one port's), ip.src, ip.dst, igmp.type, igmp.maddr,
igmp.record_type, udp.dstport (IGMPv3 and UDP only). Every time is the port's own: a host's
report and the datagrams and queries of its port.

Prints:
- the run's figures (zaps, not received, join and leave delays);
- per zap, the daemon's join delay against the capture's (the host's first TO_EX(G) report to
  the next datagram of G), |difference| percentiles and how many within 1 ms;
- the hosts' current-state reports (IS_EX / IS_IN records: query answers) against the
  queries: an answer is in time when a query it answers (a General Query, or a query of its
  group) came at most that query's Max Resp Time before it; the others are late (by how much
  past the latest such query's Max Resp Time);
- the queries against the answers they are owed: each query on a port (a General Query, or a
  query of group G), each host of the port holding a group (G) when it came (joined with
  TO_EX, not left with TO_IN: the bench's channels are any-source) owes a current-state record
  of it within the query's Max Resp Time, unless it joins or leaves that group within that
  time (its answer then tells the new state, or is not sent: RFC 3376 §5.2). The triples with
  no such record in time are missing (with the first record that came later, how late).
"""

import bisect
import json
import sys

IGMP_QUERY = "0x11"
TO_IN = "3"
TO_EX = "4"
CURRENT_STATE = ("1", "2")  # MODE_IS_INCLUDE, MODE_IS_EXCLUDE


def percentiles(values):
    values = sorted(values)
    at = lambda q: values[min(len(values) - 1, int(q * len(values)))]
    return values, at


def main():
    report = json.load(open(sys.argv[1]))
    fields = sys.argv[2]
    gq_mrt = float(sys.argv[3]) / 1e3
    gsq_mrt = float(sys.argv[4]) / 1e3
    ms = lambda ns: f"{ns / 1e6:.3f}"
    j, l = report["join_delay"], report["leave_delay"]
    print(f"verdict {report['verdict']}, zaps {report['zaps']} of {report['zaps_planned']}, "
          f"not received {report['not_received']}, leaves shared {report['leave_shared']}")
    print(f"join delay ms: min {ms(j['min_ns'])} p50 {ms(j['p50_ns'])} p90 {ms(j['p90_ns'])} "
          f"p99 {ms(j['p99_ns'])} max {ms(j['max_ns'])} ({j['count']} zaps)")
    print(f"leave delay ms: p50 {ms(l['p50_ns'])} p99 {ms(l['p99_ns'])} ({l['count']})")

    joins = {}          # (host, group) -> first TO_EX report time
    port_of = {}        # host -> its port
    datagrams = {}      # (port, group) -> times
    general = {}        # port -> General Query times
    specific = {}       # (port, group) -> its query times
    answers = []        # (time, port, group) of each current-state record
    changes = {}        # (host, group) -> [(time, holds after it)], joins and leaves
    answered = {}       # (host, group) -> current-state record times
    for line in open(fields):
        f = line.rstrip("\n").split("\t")
        if len(f) < 8:
            continue
        t, port, src, dst, kind, maddr, records, udp = float(f[0]), *f[1:8]
        if udp:
            if not dst.startswith("224.0.0."):
                datagrams.setdefault((port, dst), []).append(t)
            continue
        if kind == IGMP_QUERY:
            if maddr in ("", "0.0.0.0"):
                general.setdefault(port, []).append(t)
            else:
                specific.setdefault((port, maddr), []).append(t)
            continue
        if not records:
            continue
        # Seen first on its own port; the bridge's copies (to itself, to router ports) after.
        if port_of.setdefault(src, port) != port:
            continue
        for group, record in zip(maddr.split(","), records.split(",")):
            if group.startswith("224.0.0."):
                continue  # link-local: the bridge's own (224.0.0.106), never asked about
            if record == TO_EX:
                joins.setdefault((src, group), t)
                changes.setdefault((src, group), []).append((t, True))
            elif record == TO_IN:
                changes.setdefault((src, group), []).append((t, False))
            elif record in CURRENT_STATE:
                answers.append((t, port, group))
                answered.setdefault((src, group), []).append(t)

    diffs = []
    # Each side of a zap's difference on its own: the daemon's stamps of the report and of the
    # first datagram against the capture's, on one clock (the daemon's clock is moved onto the
    # capture's by the median difference of the report stamps).
    pairs = []
    for r in report["records"]:
        if r.get("to") is None or r.get("join_delay_ns") is None:
            continue
        sent = joins.get((r["host"], r["to"]))
        times = datagrams.get((port_of.get(r["host"]), r["to"]), [])
        if sent is None:
            continue
        i = bisect.bisect_left(times, sent)
        if i == len(times):
            continue
        diffs.append((r["join_delay_ns"] - (times[i] - sent) * 1e9) / 1e6)
        if r.get("join_sent_ns") is not None and r.get("first_packet_ns") is not None:
            pairs.append((r["join_sent_ns"] / 1e9 - sent, r["first_packet_ns"] / 1e9 - times[i],
                          diffs[-1]))
    if diffs:
        # Signed: later, the daemon read the datagram after the capture saw it (its loop's
        # read lag); earlier, it counted a datagram queued before the report was written but
        # read after it, where the capture has the next one (a datagram interval less).
        later = [d for d in diffs if d > 1.0]
        earlier = [d for d in diffs if d < -1.0]
        diffs, at = percentiles([abs(d) for d in diffs])
        within = sum(d <= 1.0 for d in diffs)
        print(f"daemon vs capture join delay, |difference| ms over {len(diffs)} zaps "
              f"(of {len(report['records'])} records): p50 {at(0.5):.3f} p90 {at(0.9):.3f} "
              f"p99 {at(0.99):.3f} max {diffs[-1]:.3f}; within 1 ms: {within} "
              f"({100 * within / len(diffs):.2f} %)")
        print(f"  the daemon's more than 1 ms later: {len(later)} (max "
              f"{max(later, default=0):.3f} ms), more than 1 ms earlier: {len(earlier)} (max "
              f"{-min(earlier, default=0):.3f} ms)")
        if pairs:
            offset = sorted(p[0] for p in pairs)[len(pairs) // 2]
            side = lambda k, sel: sorted((p[k] - offset) * 1e3 for p in pairs if sel(p))
            for name, sel in (("all zaps", lambda p: True),
                              ("the zaps more than 1 ms later", lambda p: p[2] > 1.0)):
                rep, pkt = side(0, sel), side(1, sel)
                if not rep:
                    continue
                q = lambda v, f: v[min(len(v) - 1, int(f * len(v)))]
                print(f"  {name} ({len(rep)}), each stamp against the capture's, ms: report "
                      f"p50 {q(rep, 0.5):.3f} p99 {q(rep, 0.99):.3f}; first datagram p50 "
                      f"{q(pkt, 0.5):.3f} p99 {q(pkt, 0.99):.3f}")
    else:
        print("no zap matched in the capture")

    for times in list(general.values()) + list(specific.values()):
        times.sort()
    late = []
    unknown = 0
    for t, port, group in answers:
        # The latest General Query and query of its group on its port at or before it.
        port_general = general.get(port, [])
        i = bisect.bisect_right(port_general, t)
        g = port_general[i - 1] if i else None
        times = specific.get((port, group), [])
        k = bisect.bisect_right(times, t)
        s = times[k - 1] if k else None
        past = []
        if g is not None:
            past.append(t - g - gq_mrt)
        if s is not None:
            past.append(t - s - gsq_mrt)
        if not past:
            unknown += 1  # its query came before the capture started
        elif min(past) > 0:
            late.append(min(past))
    answers_known = len(answers) - unknown
    gsq = sum(len(v) for v in specific.values())
    print(f"queries captured: {sum(len(v) for v in general.values())} general (every port's) (Max Resp Time {gq_mrt * 1e3:.0f} ms), "
          f"{gsq} group-specific ({gsq_mrt * 1e3:.0f} ms)")
    if late:
        late, at = percentiles(late)
        print(f"query answers: {answers_known} current-state records after a captured query, "
              f"{answers_known - len(late)} inside a query's Max Resp Time, {len(late)} late: "
              f"by p50 {at(0.5) * 1e3:.1f} p99 {at(0.99) * 1e3:.1f} max {late[-1] * 1e3:.1f} ms")
    else:
        print(f"query answers: {answers_known} current-state records after a captured query, "
              f"every one inside a query's Max Resp Time")
    owed_answers(changes, answered, port_of, general, specific, gq_mrt, gsq_mrt)


def owed_answers(changes, answered, port_of, general, specific, gq_mrt, gsq_mrt):
    """Each query against the answers it is owed (see the module's doc): one sweep over each
    (port, group)'s joins, leaves and queries, keeping the hosts that hold the group."""
    events = {}  # (port, group) -> [(time, order, what, host)]
    for (host, group), timeline in changes.items():
        port = port_of.get(host)
        for t, holds in timeline:
            # At one instant a change comes before a query (the query finds the new state).
            events.setdefault((port, group), []).append((t, 0, holds, host))
        timeline.sort()
    for (port, group), times in specific.items():
        for t in times:
            events.setdefault((port, group), []).append((t, 1, gsq_mrt, None))
    for (port, group) in list(events):
        for t in general.get(port, []):
            events[(port, group)].append((t, 1, gq_mrt, None))
    for times in answered.values():
        times.sort()
    owed = missing = 0
    late = []
    examples = []  # (query time, host, group, Max Resp Time, the next record's time)
    for (port, group), timeline in events.items():
        timeline.sort(key=lambda e: (e[0], e[1]))
        holders = set()
        for t, order, what, host in timeline:
            if order == 0:
                (holders.add if what else holders.discard)(host)
                continue
            mrt = what
            for h in holders:
                hc = changes[(h, group)]
                # A join or leave of the group within the Max Resp Time: excused.
                i = bisect.bisect_right(hc, (t, True))
                if i < len(hc) and hc[i][0] <= t + mrt:
                    continue
                owed += 1
                times = answered.get((h, group), [])
                k = bisect.bisect_right(times, t)
                if k < len(times) and times[k] <= t + mrt:
                    continue
                missing += 1
                if k < len(times):
                    late.append(times[k] - t - mrt)
                if len(examples) < 5:
                    examples.append((t, h, group, mrt, times[k] if k < len(times) else None))
    if not owed:
        print("queries owed answers: none captured")
        return
    text = (f"queries owed answers: {owed} (query, host, group) triples, "
            f"{owed - missing} answered inside the query's Max Resp Time, {missing} not")
    if late:
        late, at = percentiles(late)
        text += (f" ({len(late)} answered later: by p50 {at(0.5) * 1e3:.1f} max "
                 f"{late[-1] * 1e3:.1f} ms)")
    print(text)
    start = min(e[0] for timeline in events.values() for e in timeline)
    for t, h, group, mrt, answer in sorted(examples):
        after = "none after" if answer is None else f"its record {(answer - t) * 1e3:.1f} ms after"
        print(f"  e.g. {h}, {group}: a query at {t - start:.3f} s (Max Resp Time "
              f"{mrt * 1e3:.0f} ms), {after}")


if __name__ == "__main__":
    main()
