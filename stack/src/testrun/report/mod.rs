//! A run's report in its three formats: the JSON of [`TestReport`] (schema
//! `control::testrun::REPORT_SCHEMA`), JUnit XML (one test case per SLA check), and one
//! self-contained HTML page with inline SVG plots.

use control::testrun::{ReportFormat, TestReport};

pub mod html;
pub mod junit;

/// `report` rendered as `format`.
pub fn render(report: &TestReport, format: ReportFormat) -> String {
    match format {
        ReportFormat::Json => json(report),
        ReportFormat::Junit => junit::render(report),
        ReportFormat::Html => html::render(report),
    }
}

/// The typed report, pretty-printed, with a final newline.
pub fn json(report: &TestReport) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("a report always serializes");
    text.push('\n');
    text
}

/// Nanoseconds as milliseconds with three decimals: `12.345`.
pub fn ms(ns: u64) -> String {
    format!("{}.{:03}", ns / 1_000_000, ns % 1_000_000 / 1_000)
}

/// Text made safe for XML and HTML, in text and in quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;
