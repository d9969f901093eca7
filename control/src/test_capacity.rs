//! RFC 3918 §7.1 multicast group capacity (`kind = "rfc3918-capacity"`): with a stream on
//! every group, a host joins groups in steps (`start_groups`, then `step_groups` more each
//! time, up to `max_groups`); at the end of each step every group joined must be forwarded (a datagram of each
//! within the last `window_ms`, at most `max_loss_per_group` lost in the step). The result is
//! the largest count forwarded correctly.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::protocol::{nth_address, HostRange};
use crate::test_traffic::TestTraffic;
use crate::testrun::{host_range, Sla, DEFAULT_THRESHOLDS_MS};

/// The most groups a capacity run joins.
pub const MAX_CAPACITY_GROUPS: u32 = 4096;

fn default_name() -> String {
    "capacity".into()
}
fn default_start() -> u32 {
    16
}
fn default_step() -> u32 {
    16
}
fn default_max() -> u32 {
    256
}
fn default_step_ms() -> u64 {
    2000
}
fn default_window_ms() -> u64 {
    500
}
fn default_thresholds() -> Vec<u64> {
    DEFAULT_THRESHOLDS_MS.to_vec()
}
fn default_leave_grace_ms() -> u64 {
    3000
}

/// `kind = "rfc3918-capacity"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacitySpec {
    #[serde(default = "default_name")]
    pub name: String,
    /// The daemon's interface; default: the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iface: Option<String>,
    /// The one host that joins (default: the interface's first).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "host_range"
    )]
    pub hosts: Option<HostRange>,
    /// The first of the consecutive groups.
    pub first_group: IpAddr,
    /// Groups joined at the first step.
    #[serde(default = "default_start")]
    pub start_groups: u32,
    /// Groups added at each next step.
    #[serde(default = "default_step")]
    pub step_groups: u32,
    /// The most groups joined (the last step).
    #[serde(default = "default_max")]
    pub max_groups: u32,
    /// How long each step lasts from its joins to its verdict.
    #[serde(default = "default_step_ms")]
    pub step_ms: u64,
    /// At the end of a step, a group is forwarded when a datagram of it was read within
    /// this.
    #[serde(default = "default_window_ms")]
    pub window_ms: u64,
    /// Datagrams of a group that may be lost in a step (its first datagram to its end).
    #[serde(default)]
    pub max_loss_per_group: u64,
    /// Datagrams of a group left are its leave delay for this long.
    #[serde(default = "default_leave_grace_ms")]
    pub leave_grace_ms: u64,
    #[serde(default = "default_thresholds")]
    pub thresholds_ms: Vec<u64>,
    /// The streams: one per group, `max_groups` of them (required).
    pub streams: Option<Box<TestTraffic>>,
    #[serde(default)]
    pub sla: Sla,
}

impl CapacitySpec {
    /// Every group it may join, `max_groups` of them (fewer when the range ends: refused by
    /// [`CapacitySpec::check`]).
    pub fn groups(&self) -> Vec<IpAddr> {
        (0..self.max_groups.min(MAX_CAPACITY_GROUPS))
            .map_while(|n| nth_address(self.first_group, n).filter(IpAddr::is_multicast))
            .collect()
    }

    /// The group counts of the steps: `start_groups`, then `step_groups` more, ..., `max_groups`.
    pub fn steps(&self) -> Vec<u32> {
        let mut steps = Vec::new();
        let mut n = self.start_groups.min(self.max_groups);
        loop {
            steps.push(n);
            if n >= self.max_groups {
                return steps;
            }
            n = n.saturating_add(self.step_groups).min(self.max_groups);
        }
    }

    /// What is wrong with it: names the key.
    pub fn check(&self) -> Result<(), String> {
        if !self.first_group.is_multicast() {
            return Err(format!(
                "first_group: {} is not a multicast address",
                self.first_group
            ));
        }
        if self.max_groups == 0 || self.max_groups > MAX_CAPACITY_GROUPS {
            return Err(format!("max_groups: 1 to {MAX_CAPACITY_GROUPS} groups"));
        }
        if self.start_groups == 0 || self.start_groups > self.max_groups {
            return Err(format!(
                "start_groups: 1 to max_groups ({}) groups",
                self.max_groups
            ));
        }
        if self.step_groups == 0 {
            return Err("step_groups: 1 or more groups".into());
        }
        if self.groups().len() != self.max_groups as usize {
            return Err(format!(
                "first_group: {}+{} runs past the multicast range",
                self.first_group, self.max_groups
            ));
        }
        if self.window_ms == 0 || self.window_ms > self.step_ms {
            return Err(format!("window_ms: 1 to step_ms ({}) ms", self.step_ms));
        }
        if self.streams.is_none() {
            return Err("streams: a capacity run needs its own streams (link and source)".into());
        }
        Ok(())
    }
}

/// One step of a capacity run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityStep {
    /// Groups joined.
    pub groups: u32,
    /// Of them, forwarded correctly (a datagram within the window, loss within the limit).
    pub forwarded: u32,
    /// Datagrams lost in the step, over every group.
    pub lost: u64,
}

/// The result of a capacity run (the report's `capacity`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityResult {
    /// The largest count of groups forwarded correctly.
    pub groups: u32,
    /// Every step joined `max` groups and all were forwarded: the device may do more.
    pub limit_reached: bool,
    pub steps: Vec<CapacityStep>,
}
