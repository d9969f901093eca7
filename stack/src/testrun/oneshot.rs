//! `tunmcastd --run-test FILE [--out DIR]`: the daemon as a one-shot test runner. The file is
//! read and checked before anything starts (a bad one is refused with the file, the line and
//! the key: exit 2); the daemon then starts with its links, runs the file's first `[[test]]`
//! table (its `[[stream]]` tables sent for the run, as `tunmcastctl test run` has them),
//! writes the three reports with the writers `tunmcastctl` gets them from
//! ([`super::report`]), leaves every group and exits: 0 pass, 1 an SLA threshold broken, 2
//! the test could not run (or was stopped).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use control::streams::StreamSpecArgs;
use control::testrun::{ReportFormat, RunState, TestReport, TestSpec, Verdict};

use super::report;

/// Exit status: the run passed.
pub const PASS: u8 = control::testrun::EXIT_PASS;
/// Exit status: an SLA threshold was broken.
pub const FAIL: u8 = control::testrun::EXIT_FAIL;
/// Exit status: the test could not run, or was stopped before its end.
pub const CANNOT_RUN: u8 = control::testrun::EXIT_CANNOT_RUN;

/// A line of progress on standard error at most this often (ns), as `tunmcastctl --wait`
/// prints when not on a terminal.
pub const PROGRESS_EVERY: u64 = 5_000_000_000;

/// The reports written, and their names in the output directory.
pub const REPORT_FILES: [(ReportFormat, &str); 3] = [
    (ReportFormat::Json, "report.json"),
    (ReportFormat::Junit, "junit.xml"),
    (ReportFormat::Html, "report.html"),
];

/// The test of a `--run-test` file, and where its outcome goes.
#[derive(Debug)]
pub struct OneShot {
    pub file: PathBuf,
    /// `--out`: the reports' directory (created before the daemon starts).
    pub out: Option<PathBuf>,
    pub spec: TestSpec,
    /// The file's `[[stream]]` tables: started with the run, removed at its end.
    pub streams: Vec<StreamSpecArgs>,
    /// The exit status, once the run is over and its reports are written.
    exit: OnceLock<u8>,
    /// When the last line of progress was printed (ns on the daemon's clock).
    progress_at: AtomicU64,
}

impl OneShot {
    /// Reads `file` (its first `[[test]]` table and its `[[stream]]` tables) and makes `out`;
    /// what is wrong names the file, the line and the key.
    pub fn load(file: &Path, out: Option<PathBuf>) -> Result<OneShot, String> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
        let tables = control::test_file::test_tables(&text)
            .map_err(|e| format!("{}:{e}", file.display()))?;
        let Some(first) = tables.into_iter().next() else {
            return Err(format!("{}: no [[test]] table", file.display()));
        };
        let streams = control::test_file::stream_tables(&text)
            .map_err(|e| format!("{}:{e}", file.display()))?;
        if let Some(dir) = &out {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("--out {}: cannot create: {e}", dir.display()))?;
        }
        Ok(OneShot {
            file: file.to_path_buf(),
            out,
            spec: first.spec,
            streams,
            exit: OnceLock::new(),
            progress_at: AtomicU64::new(0),
        })
    }

    /// A line of the running run's progress (`progress`, O(1)) for standard error, when
    /// [`PROGRESS_EVERY`] has passed since the last (or since the first call).
    pub fn progress(&self, now: u64, progress: impl FnOnce() -> TestReport) -> Option<String> {
        let last = self.progress_at.load(Ordering::Relaxed);
        if last == 0 {
            self.progress_at.store(now.max(1), Ordering::Relaxed);
            return None;
        }
        if now.saturating_sub(last) < PROGRESS_EVERY {
            return None;
        }
        self.progress_at.store(now, Ordering::Relaxed);
        let report = progress();
        Some(format!(
            "{}: {}/{} zaps, {} s",
            report.name,
            report.zaps.min(report.zaps_planned),
            report.zaps_planned,
            report.elapsed_ms / 1000
        ))
    }

    /// The exit status, once [`OneShot::finish`] or [`OneShot::could_not_run`] set it.
    pub fn exit_code(&self) -> Option<u8> {
        self.exit.get().copied()
    }

    /// Whether the run is over (its reports written, or it could not start).
    pub fn is_over(&self) -> bool {
        self.exit.get().is_some()
    }

    /// The test could not start, for `why` (said on standard error): exit 2.
    pub fn could_not_run(&self, why: &str) {
        eprintln!(
            "tunmcastd: --run-test {}: test {} cannot start: {why}",
            self.file.display(),
            self.spec.name()
        );
        let _ = self.exit.set(CANNOT_RUN);
    }

    /// The run is over with `report` (records included): its three reports written to
    /// `--out`, a line of its figures on standard output; the exit status set. A report that
    /// cannot be written is an error of the run (exit 2).
    pub fn finish(&self, report: &TestReport) -> Result<(), String> {
        let code = report.exit_status();
        let written = match &self.out {
            Some(dir) => write_reports(dir, report),
            None => Ok(()),
        };
        println!("{}", summary_line(report));
        let _ = self
            .exit
            .set(if written.is_ok() { code } else { CANNOT_RUN });
        written
    }
}

/// `report.json`, `junit.xml` and `report.html` of `report` in `dir`.
pub fn write_reports(dir: &Path, report: &TestReport) -> Result<(), String> {
    for (format, name) in REPORT_FILES {
        let path = dir.join(name);
        std::fs::write(&path, report::render(report, format))
            .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    }
    Ok(())
}

/// One line: the run, its verdict and its join delays.
pub fn summary_line(report: &TestReport) -> String {
    let j = &report.join_delay;
    let state = match report.state {
        RunState::Stopped => " (stopped: partial)",
        _ => "",
    };
    format!(
        "test {} ({}): {}{state}; {} of {} zaps, not received {}; join delay ms: p50 {} p99 {} \
         max {} ({} measured){}",
        report.name,
        report.kind,
        verdict_name(report.verdict),
        report.zaps,
        report.zaps_planned,
        report.not_received,
        report::ms(j.p50_ns),
        report::ms(j.p99_ns),
        report::ms(j.max_ns),
        j.count,
        report
            .error
            .as_ref()
            .map(|e| format!("; error: {e}"))
            .unwrap_or_default()
    )
}

fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Error => "error",
        Verdict::Pending => "pending",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tunmcast-oneshot-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_bad_file_is_refused_with_its_line_and_key_and_nothing_is_made() {
        let dir = temp_dir("bad");
        let file = dir.join("bad.toml");
        std::fs::write(
            &file,
            "[[test]]\nkind = \"zapping\"\nchannels = [\"239.1.1.1\"]\nview = 100\n",
        )
        .unwrap();
        let out = dir.join("out");
        let error = OneShot::load(&file, Some(out.clone())).unwrap_err();
        assert!(
            error.contains("bad.toml:4: [[test]]: unknown field `view`"),
            "{error}"
        );
        assert!(!out.exists(), "nothing made for a refused file");
        std::fs::write(&file, "[[stream]]\nlink = \"tap0\"\n").unwrap();
        let error = OneShot::load(&file, None).unwrap_err();
        assert!(error.ends_with("bad.toml: no [[test]] table"), "{error}");
        std::fs::write(
            &file,
            "[[test]]\nkind = \"zapping\"\nchannels = [\"239.1.1.1\"]\n[[stream]]\nlink = \"tap0\"\nsource = \"10.0.0.1\"\ngroup = \"239.1.1.1\"\npps = \"many\"\n",
        )
        .unwrap();
        let error = OneShot::load(&file, None).unwrap_err();
        assert!(error.contains("bad.toml:8: [[stream]]"), "{error}");
        let missing = OneShot::load(&dir.join("none.toml"), None).unwrap_err();
        assert!(missing.contains("none.toml: cannot read"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_good_file_gives_its_first_test_and_its_streams() {
        let dir = temp_dir("good");
        let file = dir.join("lab.toml");
        std::fs::write(
            &file,
            "[[test]]\nkind = \"zapping\"\nname = \"first\"\nchannels = [\"239.1.1.1\"]\n\
             [[test]]\nkind = \"zapping\"\nname = \"second\"\nchannels = [\"239.1.1.2\"]\n\
             [[stream]]\nlink = \"tap0\"\nsource = \"10.0.0.1\"\ngroup = \"239.1.1.1+2\"\n",
        )
        .unwrap();
        let out = dir.join("reports");
        let one = OneShot::load(&file, Some(out.clone())).unwrap();
        assert_eq!(one.spec.name(), "first");
        assert_eq!(one.streams.len(), 1);
        assert!(out.is_dir(), "--out made");
        assert_eq!(one.exit_code(), None);
        // Progress: nothing at the first call, then a line every PROGRESS_EVERY.
        let report = crate::testrun::report::tests::scripted_report();
        let line = |now| one.progress(now, || report.clone());
        assert_eq!(line(1_000), None);
        assert_eq!(line(1_000 + PROGRESS_EVERY - 1), None);
        let shown = line(1_000 + PROGRESS_EVERY).expect("a line after 5 s");
        assert_eq!(
            shown,
            format!(
                "{}: {}/{} zaps, {} s",
                report.name,
                report.zaps,
                report.zaps_planned,
                report.elapsed_ms / 1000
            )
        );
        assert_eq!(line(1_000 + PROGRESS_EVERY + 1), None, "not again at once");
        one.could_not_run("no host");
        assert_eq!(one.exit_code(), Some(CANNOT_RUN));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_reports_are_written_and_the_exit_status_is_the_verdict_s() {
        let dir = temp_dir("reports");
        let mut report = crate::testrun::report::tests::scripted_report();
        write_reports(&dir, &report).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(json["name"], report.name.as_str());
        for (format, name) in REPORT_FILES {
            assert_eq!(
                std::fs::read_to_string(dir.join(name)).unwrap(),
                report::render(&report, format),
                "{name}"
            );
        }
        report.state = RunState::Finished;
        for (verdict, code) in [
            (Verdict::Pass, PASS),
            (Verdict::Fail, FAIL),
            (Verdict::Error, CANNOT_RUN),
        ] {
            report.verdict = verdict;
            assert_eq!(report.exit_status(), code, "{verdict:?}");
        }
        report.state = RunState::Stopped;
        report.verdict = Verdict::Pass;
        assert_eq!(report.exit_status(), CANNOT_RUN, "a partial run");
        assert!(summary_line(&report).contains("(stopped: partial)"));
        let unwritable = dir.join("report.json").join("below-a-file");
        let one = OneShot {
            file: dir.join("lab.toml"),
            out: Some(unwritable),
            spec: report.spec.clone(),
            streams: Vec::new(),
            exit: OnceLock::new(),
            progress_at: AtomicU64::new(0),
        };
        report.state = RunState::Finished;
        assert!(one.finish(&report).unwrap_err().contains("cannot write"));
        assert_eq!(
            one.exit_code(),
            Some(CANNOT_RUN),
            "reports not written: exit 2"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
