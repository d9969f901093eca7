//! Received queries and v1/v2 (MLDv1) reports, handled once for both protocols. Each family's
//! adapter (`crate::igmp`, `crate::mld`) parses its messages and makes its own checks (IP
//! options, source address), then hands a query over as a [`QueryView`] (as netstack3's `gmp`
//! reads its `QueryMessage`s) and a report as its group; the checks that are the same for both
//! (destination, group, sources), the counting (in each family's counters, through
//! [`Protocol::count`]), the `QueryHeard` event and the dispatch to the right state machine
//! are here.

use core::net::IpAddr;
use core::time::Duration;

use super::{
    answer_window, check_report, query_target, Compat, Env, Family, Protocol, QueryProblem,
};
use crate::event::Event;
use crate::stats::DropReason;
use crate::time::Instant;
use crate::IfIndex;

/// What the engine reads of a received query, whatever its protocol and version.
pub(crate) trait QueryView<A> {
    /// The version the query speaks, by its form: `V1` an IGMPv1 query (Max Resp Code 0),
    /// `V2` an IGMPv2 or MLDv1 one, `V3` an IGMPv3 or MLDv2 one.
    fn form(&self) -> Compat;
    /// The group field; unspecified in a General Query. An IGMPv1 query's is never read.
    fn group(&self) -> A;
    /// The Maximum Response Time the query allows, decoded (10 s for IGMPv1).
    fn max_resp(&self) -> Duration;
    /// The sources a v3 query asks about; none for the older forms.
    fn sources(&self) -> &[A];
    /// A v3 query's Querier's Robustness Variable and Query Interval (QQIC decoded); zero
    /// for the older forms.
    fn querier(&self) -> (u8, Duration);
}

/// What the engine counts on input, each family in its own counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heard {
    /// A query of this form, before its checks.
    Query(Compat),
    /// A query refused by the checks.
    QueryRejected,
    /// A v1/v2 (MLDv1) report, before its checks; `v1`: an IGMPv1 report.
    Report { v1: bool },
    /// A report refused by the checks.
    ReportRejected,
    /// Our own report, looped back.
    Looped,
    /// Another host's report of a group we are a member of.
    OurGroup,
}

impl<P: Protocol> Family<P> {
    /// A query received on `ifindex`, sent to `dst`, where this host's address is `own`:
    /// counted, checked, noted as an event, then handled by the state machine of its form (a
    /// v3 query in an older mode as a query of that mode, RFC 9776 §7.2.1, RFC 9777 §8.2.1).
    pub fn handle_query(
        &mut self,
        ifindex: IfIndex,
        query: &impl QueryView<P::Addr>,
        (dst, own): (P::Addr, Option<P::Addr>),
        now: Instant,
        env: &mut Env<'_>,
    ) -> Result<(), DropReason> {
        let form = query.form();
        P::count(env.stats, Heard::Query(form));
        let target = if form == Compat::V1 {
            // IGMPv1 queries are always general and go to all-hosts (RFC 1112 App. I), or to
            // our own address (RFC 9776 §4.1.12, see `query_target`). The seed marks the v1
            // router present before checking; we change no state for a query we reject.
            if dst != P::ALL_SYSTEMS && Some(dst) != own {
                Err(QueryProblem::BadDestination)
            } else {
                Ok(None)
            }
        } else {
            query_target::<P>(query.group(), dst, own, query.sources().len())
        };
        let target = target.map_err(|problem| {
            P::count(env.stats, Heard::QueryRejected);
            env.stats.reject(P::query_drop(problem))
        })?;
        let max = query.max_resp();
        env.event(Event::QueryHeard {
            iface: ifindex,
            version: P::version(form).into(),
            group: target.map(Into::<IpAddr>::into),
            max_resp: max,
        });
        if form == Compat::V3 {
            let sources = query.sources().iter().copied().collect();
            self.v3_query(ifindex, target, sources, max, query.querier(), now, env);
        } else {
            self.older_querier_heard(ifindex, form, now, env);
            let window = answer_window(max, env.config);
            self.query(ifindex, target, window, form == Compat::V1, now, env);
        }
        Ok(())
    }

    /// Another host's v1/v2 (MLDv1) report of `group` (an IGMPv1 one if `v1`), from `src` to
    /// `dst`, where this host's address is `own`: counted, checked, and heard by the group's
    /// state machine. Our own report looped back is counted and changes nothing: it must not
    /// clear the last-reporter flag (the seed makes the same check under MROUTING).
    pub fn handle_report(
        &mut self,
        ifindex: IfIndex,
        group: P::Addr,
        v1: bool,
        (src, dst, own): (P::Addr, P::Addr, Option<P::Addr>),
        now: Instant,
        env: &mut Env<'_>,
    ) -> Result<(), DropReason> {
        P::count(env.stats, Heard::Report { v1 });
        if let Err(problem) = check_report::<P>(group, dst) {
            P::count(env.stats, Heard::ReportRejected);
            return Err(env.stats.reject(P::report_drop(problem)));
        }
        if Some(src) == own {
            P::count(env.stats, Heard::Looped);
            return Ok(());
        }
        if self.report_heard(ifindex, group, v1, now, env) {
            P::count(env.stats, Heard::OurGroup);
        }
        Ok(())
    }
}
