use clap::Parser as _;
use membership::Config;

use super::hosts::core_config;
use super::*;
use crate::topology::HostParams;

#[test]
fn answer_burst_and_margin_reach_the_cores_and_zero_sends_every_report_at_once() {
    let config = |extra: &[&str]| {
        let mut argv = vec!["tunmcastd", "--tun", "t0", "--ipv4", "10.99.0.2/24"];
        argv.extend(extra);
        core_config(
            &CoreSettings::of(&Args::parse_from(argv)),
            &HostParams::default(),
        )
    };
    assert_eq!(config(&[]).answer_burst, Config::default().answer_burst);
    assert_eq!(config(&["--answer-burst", "100"]).answer_burst, 100);
    assert_eq!(config(&["--answer-burst", "0"]).answer_burst, u32::MAX);
    assert_eq!(config(&[]).answer_margin, Duration::from_millis(100));
    assert_eq!(
        config(&["--answer-margin-ms", "0"]).answer_margin,
        Duration::ZERO
    );
}
