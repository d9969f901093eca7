//! The read side of the loop: what `show`, `stats`, `delays`, `streams`, `test status` and the
//! HTTP view read, every owner borrowed shared. Nothing reached through a [`View`] can change.

use super::hosts::Hosts;
use super::links::Links;
use super::{Clock, HostId, IoStats, LinkId};
use crate::delays::DelayTracker;
use crate::listeners::Listeners;
use crate::streams::Streams;
use crate::testrun::TestRuns;
use crate::topology::Topology;
use crate::Args;

/// Every owner of the loop, read only.
pub(super) struct View<'a> {
    pub hosts: &'a Hosts,
    pub links: &'a Links,
    pub listeners: &'a Listeners,
    pub delays: &'a DelayTracker,
    pub streams: &'a Streams,
    pub tests: &'a TestRuns<HostId, LinkId>,
    pub topology: &'a Topology,
    pub args: &'a Args,
    /// Why the last reload was refused.
    pub config_error: Option<&'a str>,
    /// The control socket's counters.
    pub control_io: &'a IoStats,
    pub clock: Clock,
}
