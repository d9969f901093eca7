//! JUnit XML: one `<testsuite>` per run, one `<testcase>` per SLA check (per channel where
//! the check is), a `<failure>` with the measured value and the threshold; a run that could
//! not go on is one `<error>`.

use std::fmt::Write as _;

use control::testrun::{Check, RunState, TestReport};

use super::{escape, ms};

/// The check's measured value and threshold, in its unit.
fn describe(check: &Check) -> String {
    let (measured, threshold) = match check.unit.as_str() {
        "ns" => (
            format!("{} ms", ms(check.measured)),
            format!("{} ms", ms(check.threshold)),
        ),
        unit => (
            format!("{} {unit}", check.measured),
            format!("{} {unit}", check.threshold),
        ),
    };
    let relation = if check.pass { "<=" } else { ">" };
    format!(
        "{} {}: measured {measured} {relation} threshold {threshold}",
        check.name, check.scope
    )
}

pub fn render(report: &TestReport) -> String {
    let failures = report.checks.iter().filter(|c| !c.pass).count();
    let errors = usize::from(report.state == RunState::Error);
    let tests = report.checks.len() + errors;
    let time = report.elapsed_ms as f64 / 1000.0;
    let name = escape(&report.name);
    let mut x = String::new();
    let _ = writeln!(x, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        x,
        r#"<testsuites name="tunmcast" tests="{tests}" failures="{failures}" errors="{errors}" time="{time:.3}">"#
    );
    let _ = writeln!(
        x,
        r#"  <testsuite name="{name}" tests="{tests}" failures="{failures}" errors="{errors}" skipped="0" time="{time:.3}">"#
    );
    let _ = writeln!(x, "    <properties>");
    let mut property = |key: &str, value: &str| {
        let _ = writeln!(
            x,
            r#"      <property name="{key}" value="{}"/>"#,
            escape(value)
        );
    };
    property("kind", &report.kind);
    property("schema", &report.schema.to_string());
    property("state", &format!("{:?}", report.state).to_lowercase());
    property("hosts", &report.hosts.to_string());
    property("zaps", &report.zaps.to_string());
    property("join_delay_p50_ms", &ms(report.join_delay.p50_ns));
    property("join_delay_p99_ms", &ms(report.join_delay.p99_ns));
    if let Some(seed) = report.seed {
        property("seed", &seed.to_string());
    }
    if report.state == RunState::Stopped {
        property("partial", "true");
    }
    let _ = writeln!(x, "    </properties>");
    for check in &report.checks {
        let _ = write!(
            x,
            r#"    <testcase classname="tunmcast.{name}" name="{} {}" time="0">"#,
            escape(&check.name),
            escape(&check.scope)
        );
        if check.pass {
            let _ = writeln!(x, "</testcase>");
        } else {
            let text = escape(&describe(check));
            let _ = writeln!(x);
            let _ = writeln!(
                x,
                r#"      <failure type="sla" message="{text}">{text}</failure>"#
            );
            let _ = writeln!(x, "    </testcase>");
        }
    }
    if report.state == RunState::Error {
        let why = escape(report.error.as_deref().unwrap_or("the run could not go on"));
        let _ = writeln!(
            x,
            r#"    <testcase classname="tunmcast.{name}" name="run" time="{time:.3}">"#
        );
        let _ = writeln!(
            x,
            r#"      <error type="run" message="{why}">{why}</error>"#
        );
        let _ = writeln!(x, "    </testcase>");
    }
    let _ = writeln!(x, "  </testsuite>");
    let _ = writeln!(x, "</testsuites>");
    x
}
