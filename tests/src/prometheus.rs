//! Prometheus text as its own project reads it: the Python parser (`prometheus_client`) over a
//! scrape, the families every `# HELP` / `# TYPE` line declares, and histogram consistency.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// The Prometheus project's parser over `text`: family → {type, help, samples: [[name,
/// labels, value]]}.
pub fn parse_prometheus(text: &str) -> BTreeMap<String, Value> {
    let parser = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    out[family.name] = {"type": family.type, "help": family.documentation,
                        "samples": [[s.name, s.labels, s.value] for s in family.samples]}
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", parser])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused /metrics (pip install prometheus-client):\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every `# HELP` and `# TYPE` line's family, from the text itself (the parser invents a
/// family with type "unknown" for a sample without them).
pub fn declared(text: &str, kind: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix(kind))
        .filter_map(|rest| rest.split(' ').next())
        .map(str::to_string)
        .collect()
}

/// Checks a histogram family: cumulative buckets ending in `+Inf` = `_count`; its count.
pub fn check_histogram(family: &Value, name: &str) -> u64 {
    assert_eq!(family["type"], "histogram", "{name}: {family}");
    let samples = family["samples"].as_array().unwrap();
    let mut last = -1.0;
    let mut last_bound = f64::NEG_INFINITY;
    let mut inf = None;
    let mut count = None;
    for sample in samples {
        let sample_name = sample[0].as_str().unwrap();
        let value = sample[2].as_f64().unwrap();
        if sample_name.ends_with("_bucket") {
            let le = sample[1]["le"].as_str().unwrap();
            let bound: f64 = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            assert!(bound > last_bound, "{name}: bucket bounds not increasing");
            assert!(value >= last, "{name}: buckets not cumulative: {samples:?}");
            (last, last_bound) = (value, bound);
            if le == "+Inf" {
                inf = Some(value);
            }
        } else if sample_name.ends_with("_count") {
            count = Some(value);
        }
    }
    assert_eq!(inf, count, "{name}: +Inf bucket vs _count");
    count.expect("a _count sample") as u64
}

/// Every family the parser found has a HELP and a TYPE line of its own and a known type, and
/// nothing is declared that the parser did not find.
pub fn check_families(text: &str, families: &BTreeMap<String, Value>) {
    let (helps, types) = (declared(text, "# HELP "), declared(text, "# TYPE "));
    for (name, family) in families {
        // The parser names a counter family without its `_total`.
        let declared_as = if family["type"] == "counter" {
            format!("{name}_total")
        } else {
            name.clone()
        };
        assert!(
            helps.contains(&declared_as) && types.contains(&declared_as),
            "{name}: HELP and TYPE"
        );
        assert_ne!(family["type"], "unknown", "{name}");
        assert!(
            family["help"].as_str().is_some_and(|h| !h.is_empty()),
            "{name}"
        );
    }
    assert_eq!(helps, types);
    assert_eq!(helps.len(), families.len());
}
