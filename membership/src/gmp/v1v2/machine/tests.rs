//! Every transition of the v1/v2 / MLDv1 group state machine, table-driven: the NetBSD seed's
//! input, fast-timeout, join and leave paths (with its state names in the comments), plus the
//! RFC corrections.

use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use super::{
    self as machine, Actions, Member, MemberContext, MemberEvent, MemberMessage, MemberState,
    MemberState::*, TimerCmd,
};

const URI: Duration = Duration::from_secs(10);

fn ctx(v1_querier: bool) -> MemberContext {
    MemberContext {
        v1_querier,
        robustness: 2,
        unsolicited_interval: URI,
    }
}

fn m(state: MemberState) -> Member {
    Member {
        state,
        unsolicited_left: 0,
    }
}

const DELAYING: MemberState = Delaying {
    last_reporter: true,
};
const DELAYING_OTHER: MemberState = Delaying {
    last_reporter: false,
};
const IDLE: MemberState = Idle {
    last_reporter: true,
};
const LAZY: MemberState = Idle {
    last_reporter: false,
};

fn q(ms: u64) -> MemberEvent {
    MemberEvent::Query {
        max_delay: Duration::from_millis(ms),
        from_v1_querier: false,
    }
}

const V1_QUERY: MemberEvent = MemberEvent::Query {
    max_delay: Duration::from_secs(10),
    from_v1_querier: true,
};
const V2_REPORT: MemberEvent = MemberEvent::ReportHeard { v1: false };
const V1_REPORT: MemberEvent = MemberEvent::ReportHeard { v1: true };

fn start(ms: u64) -> TimerCmd {
    TimerCmd::StartRandom {
        max: Duration::from_millis(ms),
    }
}

fn acts(send: Option<MemberMessage>, timer: TimerCmd) -> Actions {
    Actions { send, timer }
}

const NONE: Actions = Actions {
    send: None,
    timer: TimerCmd::Keep,
};
const CANCEL: Actions = Actions {
    send: None,
    timer: TimerCmd::Cancel,
};

#[test]
fn input_and_timer_transitions() {
    let ms = Duration::from_millis;
    // (state, timer remaining, v1 querier present, event) -> (state, actions)
    #[rustfmt::skip]
    let table: Vec<(MemberState, Option<Duration>, bool, MemberEvent, MemberState, Actions)> = vec![
        // --- v2 query (code > 0), seed lines 272-299 ---
        (Silent, None, false, q(1000), Silent, NONE),
        (DELAYING, Some(ms(500)), false, q(1000), DELAYING, NONE),           // timer <= max: keep
        (DELAYING, Some(ms(1000)), false, q(1000), DELAYING, NONE),          // equal: keep
        (DELAYING, Some(ms(5000)), false, q(1000), DELAYING, acts(None, start(1000))), // shorten
        (DELAYING_OTHER, Some(ms(5000)), false, q(1000), DELAYING_OTHER, acts(None, start(1000))),
        (IDLE, None, false, q(1000), DELAYING, acts(None, start(1000))),
        (LAZY, None, false, q(1000), DELAYING_OTHER, acts(None, start(1000))),
        (Awakening, None, false, q(1000), DELAYING_OTHER, acts(None, start(1000))),
        (Sleeping, None, false, q(1000), Awakening, NONE),                   // SLEEPING -> AWAKENING
        // --- v1 query (code 0): only records without a running timer, seed lines 241-252 ---
        (IDLE, None, true, V1_QUERY, DELAYING, acts(None, start(10_000))),
        (LAZY, None, true, V1_QUERY, DELAYING_OTHER, acts(None, start(10_000))),
        (Sleeping, None, true, V1_QUERY, DELAYING_OTHER, acts(None, start(10_000))),
        (Awakening, None, true, V1_QUERY, DELAYING_OTHER, acts(None, start(10_000))),
        (DELAYING, Some(ms(3000)), true, V1_QUERY, DELAYING, NONE),
        (Silent, None, true, V1_QUERY, Silent, NONE),
        // --- Maximum Response Delay 0: answer at once (mld6.c) ---
        (LAZY, None, false, q(0), IDLE, acts(Some(MemberMessage::Report), TimerCmd::Cancel)),
        (DELAYING_OTHER, Some(ms(3000)), false, q(0), IDLE, acts(Some(MemberMessage::Report), TimerCmd::Cancel)),
        (DELAYING, Some(ms(0)), false, q(0), DELAYING, NONE),
        (Sleeping, None, false, q(0), Awakening, NONE),
        (Silent, None, false, q(0), Silent, NONE),
        // --- another host's v2 / MLD report, seed lines 404-419, mld6.c 373-377 ---
        (DELAYING, Some(ms(3000)), false, V2_REPORT, LAZY, CANCEL),
        (IDLE, None, false, V2_REPORT, LAZY, CANCEL),
        (LAZY, None, false, V2_REPORT, LAZY, CANCEL),
        (Awakening, None, false, V2_REPORT, LAZY, CANCEL),
        (Sleeping, None, false, V2_REPORT, Sleeping, CANCEL),
        (Silent, None, false, V2_REPORT, Silent, NONE),
        // --- another host's v1 report, seed lines 336-355 ---
        (DELAYING, Some(ms(3000)), true, V1_REPORT, LAZY, CANCEL),           // v1 router: LAZY
        (DELAYING, Some(ms(3000)), false, V1_REPORT, Sleeping, CANCEL),      // v2 router: SLEEPING
        (IDLE, None, false, V1_REPORT, Sleeping, CANCEL),
        (LAZY, None, true, V1_REPORT, Sleeping, CANCEL),
        (Awakening, None, false, V1_REPORT, Sleeping, CANCEL),
        (Sleeping, None, false, V1_REPORT, Sleeping, CANCEL),
        (Silent, None, false, V1_REPORT, Silent, NONE),
        // --- fast timeout, seed lines 496-508 ---
        (DELAYING_OTHER, Some(ms(0)), false, MemberEvent::TimerExpired, IDLE, acts(Some(MemberMessage::Report), TimerCmd::Keep)),
        (DELAYING, Some(ms(0)), false, MemberEvent::TimerExpired, IDLE, acts(Some(MemberMessage::Report), TimerCmd::Keep)),
        (IDLE, None, false, MemberEvent::TimerExpired, IDLE, NONE),
        (Sleeping, None, false, MemberEvent::TimerExpired, Sleeping, NONE),
    ];
    for (i, (state, remaining, v1, event, want_state, want_actions)) in
        table.into_iter().enumerate()
    {
        let (next, actions) = machine::on_event(m(state), event, remaining, &ctx(v1));
        assert_eq!(
            (next.state, actions),
            (want_state, want_actions),
            "row {i}: {state:?} + {event:?} (remaining {remaining:?}, v1 querier {v1})"
        );
    }
}

#[test]
fn unsolicited_repeats_count_down() {
    let member = Member {
        state: DELAYING,
        unsolicited_left: 1,
    };
    let (next, actions) = machine::on_event(
        member,
        MemberEvent::TimerExpired,
        Some(Duration::ZERO),
        &ctx(false),
    );
    assert_eq!(
        next,
        Member {
            state: DELAYING,
            unsolicited_left: 0
        }
    );
    assert_eq!(actions, acts(Some(MemberMessage::Report), start(10_000)));
    // A heard report suppresses the remaining repeats as well.
    let (next, actions) =
        machine::on_event(member, V2_REPORT, Some(Duration::from_secs(3)), &ctx(false));
    assert_eq!(
        next,
        Member {
            state: LAZY,
            unsolicited_left: 0
        }
    );
    assert_eq!(actions, CANCEL);
    // A query keeps them: the timer is shortened, the count stays.
    let (next, _) = machine::on_event(member, q(100), Some(Duration::from_secs(3)), &ctx(false));
    assert_eq!(next.unsolicited_left, 1);
}

#[test]
fn join_paths() {
    let robust = |r: u8| MemberContext {
        robustness: r,
        ..ctx(false)
    };
    // (reportable, robustness) -> (member, actions)
    #[rustfmt::skip]
    let table = vec![
        (true, 2, Member { state: DELAYING, unsolicited_left: 0 }, acts(Some(MemberMessage::Report), start(10_000))),
        (true, 3, Member { state: DELAYING, unsolicited_left: 1 }, acts(Some(MemberMessage::Report), start(10_000))),
        (true, 1, Member { state: IDLE, unsolicited_left: 0 }, acts(Some(MemberMessage::Report), TimerCmd::Cancel)),
        (false, 2, Member { state: Silent, unsolicited_left: 0 }, NONE),
    ];
    for (reportable, r, want_member, want_actions) in table {
        assert_eq!(
            machine::join(reportable, &robust(r)),
            (want_member, want_actions),
            "robustness {r}"
        );
    }
}

#[test]
fn leave_paths() {
    // Seed lines 463-475, with the RFC 2236 flag rule for DELAYING entered from LAZY.
    #[rustfmt::skip]
    let table = vec![
        (DELAYING, false, Some(MemberMessage::Leave)),
        (IDLE, false, Some(MemberMessage::Leave)),
        (DELAYING_OTHER, false, None),
        (LAZY, false, None),
        (Sleeping, false, None),
        (Awakening, false, None),
        (Silent, false, None),
        (DELAYING, true, None), // IGMPv1 querier present: no Leave in v1
        (IDLE, true, None),
    ];
    for (state, v1, want) in table {
        assert_eq!(
            machine::leave(m(state), &ctx(v1)),
            want,
            "{state:?}, v1 querier {v1}"
        );
    }
}

#[test]
fn state_names() {
    let names: Vec<&str> = [Silent, DELAYING, IDLE, LAZY, Sleeping, Awakening]
        .iter()
        .map(|s| s.name())
        .collect();
    assert_eq!(
        names,
        [
            "silent",
            "delaying",
            "idle",
            "lazy",
            "sleeping",
            "awakening"
        ]
    );
}
