//! The per-group host state machine of IGMPv1/v2 (RFC 2236 §6) and MLDv1 (RFC 2710 §5), written
//! once for both protocols.
//!
//! Every event is a pure function of the old state: it returns the new state and plain-data
//! actions (send a report or a leave; start, keep or cancel the report timer). The random delay
//! is drawn by the caller, so these functions need neither a clock nor an RNG. [`super`]
//! (`gmp::v1v2`) carries the actions out; `igmp` and `mld` only translate messages into events.
//!
//! States follow the NetBSD seed's `igmp.c` (names in brackets). MLD reaches only `Delaying` and
//! `Idle`, because only IGMP has v1 reports from other hosts to be heard.

use core::time::Duration;

/// What a member record is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// A group this host never reports: 224.0.0.0/24, ff02::1, IPv6 scopes 0 and 1 (the seeds
    /// keep them with no timer). Joins are counted, nothing is ever sent.
    Silent,
    /// A report is scheduled [DELAYING_MEMBER; MLD "Delaying Listener"].
    Delaying { last_reporter: bool },
    /// No report scheduled [IDLE_MEMBER when we reported last, LAZY_MEMBER when another host
    /// did; MLD "Idle Listener" with its flag].
    Idle { last_reporter: bool },
    /// IGMP: another host's v1 report was heard [SLEEPING_MEMBER]. A v2 query only wakes it.
    Sleeping,
    /// IGMP: a v2 query woke a sleeping member [AWAKENING_MEMBER]; the next query schedules a
    /// report.
    Awakening,
}

impl MemberState {
    pub fn name(self) -> &'static str {
        match self {
            MemberState::Silent => "silent",
            MemberState::Delaying { .. } => "delaying",
            MemberState::Idle {
                last_reporter: true,
            } => "idle",
            MemberState::Idle {
                last_reporter: false,
            } => "lazy",
            MemberState::Sleeping => "sleeping",
            MemberState::Awakening => "awakening",
        }
    }

    /// Whether we sent the last report for the group: the flag that decides Leave / Done.
    pub fn last_reporter(self) -> bool {
        matches!(
            self,
            MemberState::Delaying {
                last_reporter: true
            } | MemberState::Idle {
                last_reporter: true
            }
        )
    }
}

/// One group's machine: its state and how many unsolicited repeats are still to come after the
/// one currently scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub state: MemberState,
    pub unsolicited_left: u8,
}

/// What the interface knows that the transitions depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberContext {
    /// An IGMPv1 querier is present (RFC 2236 §4): reports are v1 reports and no Leave is sent.
    pub v1_querier: bool,
    /// Robustness Variable: an unsolicited report is sent this many times in all.
    pub robustness: u8,
    /// Unsolicited Report Interval: the range of the delay before each repeat.
    pub unsolicited_interval: Duration,
}

/// What happens to a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberEvent {
    /// A query covering the group. `from_v1_querier`: an IGMPv1 query (code 0).
    Query {
        max_delay: Duration,
        from_v1_querier: bool,
    },
    /// Another host's report for the group. `v1`: an IGMPv1 report.
    ReportHeard { v1: bool },
    /// The group's report timer fired.
    TimerExpired,
}

/// A message the record asks to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberMessage {
    Report,
    /// IGMPv2 Leave Group / MLD Done.
    Leave,
}

/// What to do with the group's report timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerCmd {
    Keep,
    Cancel,
    /// (Re)start it at a delay drawn uniformly from [0, max].
    StartRandom {
        max: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actions {
    pub send: Option<MemberMessage>,
    pub timer: TimerCmd,
}

const NOTHING: Actions = Actions {
    send: None,
    timer: TimerCmd::Keep,
};

/// A new membership: report at once, then Robustness − 1 repeats, each at random within the
/// Unsolicited Report Interval (RFC 2236 §3, RFC 2710 §4). The seeds send exactly one repeat.
pub fn join(reportable: bool, ctx: &MemberContext) -> (Member, Actions) {
    if !reportable {
        let member = Member {
            state: MemberState::Silent,
            unsolicited_left: 0,
        };
        return (member, NOTHING);
    }
    let repeats = ctx.robustness.saturating_sub(1);
    if repeats == 0 {
        let member = Member {
            state: MemberState::Idle {
                last_reporter: true,
            },
            unsolicited_left: 0,
        };
        return (
            member,
            Actions {
                send: Some(MemberMessage::Report),
                timer: TimerCmd::Cancel,
            },
        );
    }
    let member = Member {
        state: MemberState::Delaying {
            last_reporter: true,
        },
        unsolicited_left: repeats - 1,
    };
    let actions = Actions {
        send: Some(MemberMessage::Report),
        timer: TimerCmd::StartRandom {
            max: ctx.unsolicited_interval,
        },
    };
    (member, actions)
}

/// The last user left. Returns whether to send Leave / Done: only if we sent the last report
/// (RFC 2236 §3, RFC 2710 §4) and no IGMPv1 querier is present (v1 has no Leave).
///
/// Departure from the NetBSD seed, RFC wins: the seed sends Leave from DELAYING_MEMBER even when
/// it got there from LAZY_MEMBER (another host reported last); RFC 2236 §6 sends it only when
/// the "I sent the last report" flag is set, which a query does not set.
///
/// Sent once, never repeated Robustness Variable times: RFC 2710 §4 says a node "SHOULD send a
/// single Done message", RFC 2236 §3 sends one Leave Group message, and RFC 9777 §8.2 /
/// RFC 9776 §7.2 only make a v2/v3 host in an older mode speak the older protocol. (Robustness
/// repeats are the v3 State Change Report's, RFC 9777 §6.1.) TAHI MLDv2 7.2.a's script waits
/// for [RV] Dones, against its own text ("a single MLDv1 Done message") and against its 6.1.a,
/// which expects a single Done in the same mode; the RFC wins.
pub fn leave(member: Member, ctx: &MemberContext) -> Option<MemberMessage> {
    (member.state.last_reporter() && !ctx.v1_querier).then_some(MemberMessage::Leave)
}

/// One event. `remaining` is the time left on the report timer if it runs.
pub fn on_event(
    member: Member,
    event: MemberEvent,
    remaining: Option<Duration>,
    ctx: &MemberContext,
) -> (Member, Actions) {
    use MemberState::*;
    let state = member.state;
    match event {
        MemberEvent::Query {
            max_delay,
            from_v1_querier,
        } => {
            let flag = state.last_reporter();
            match state {
                Silent => (member, NOTHING),
                // A v2 query only wakes a member that heard another host's v1 report; an IGMPv1
                // query treats it like any member without a running timer (seed).
                Sleeping if !from_v1_querier => (
                    Member {
                        state: Awakening,
                        ..member
                    },
                    NOTHING,
                ),
                // A query never lengthens a running timer (RFC 2236 §3, RFC 2710 §4).
                Delaying { .. } if remaining.is_some_and(|left| left <= max_delay) => {
                    (member, NOTHING)
                }
                // A Maximum Response Delay of 0 is answered at once (KAME/NetBSD mld6.c); with
                // millisecond timers this only happens for a real 0.
                _ if max_delay.is_zero() => (
                    Member {
                        state: Idle {
                            last_reporter: true,
                        },
                        ..member
                    },
                    Actions {
                        send: Some(MemberMessage::Report),
                        timer: TimerCmd::Cancel,
                    },
                ),
                _ => (
                    Member {
                        state: Delaying {
                            last_reporter: flag,
                        },
                        ..member
                    },
                    Actions {
                        send: None,
                        timer: TimerCmd::StartRandom { max: max_delay },
                    },
                ),
            }
        }
        MemberEvent::ReportHeard { v1 } => {
            let next = match (state, v1) {
                (Silent, _) => Silent,
                // v2 / MLD report: suppress ours, another host reported last.
                (Delaying { .. } | Idle { .. } | Awakening, false) => Idle {
                    last_reporter: false,
                },
                (Sleeping, false) => Sleeping,
                // v1 report while delaying: with a v1 querier, plain suppression [LAZY]; with a
                // v2 querier the v1 host cannot be suppressed by Leave logic, sleep [SLEEPING].
                (Delaying { .. }, true) if ctx.v1_querier => Idle {
                    last_reporter: false,
                },
                (_, true) => Sleeping,
            };
            // Suppression also ends the unsolicited repeats: the router has heard the group.
            let timer = if next == Silent {
                TimerCmd::Keep
            } else {
                TimerCmd::Cancel
            };
            (
                Member {
                    state: next,
                    unsolicited_left: 0,
                },
                Actions { send: None, timer },
            )
        }
        MemberEvent::TimerExpired => match state {
            Delaying { .. } if member.unsolicited_left > 0 => (
                Member {
                    state: Delaying {
                        last_reporter: true,
                    },
                    unsolicited_left: member.unsolicited_left - 1,
                },
                Actions {
                    send: Some(MemberMessage::Report),
                    timer: TimerCmd::StartRandom {
                        max: ctx.unsolicited_interval,
                    },
                },
            ),
            Delaying { .. } => (
                Member {
                    state: Idle {
                        last_reporter: true,
                    },
                    unsolicited_left: 0,
                },
                Actions {
                    send: Some(MemberMessage::Report),
                    timer: TimerCmd::Keep,
                },
            ),
            // No other state holds a timer; a stray expiry changes nothing.
            _ => (member, NOTHING),
        },
    }
}

#[cfg(test)]
mod tests;
