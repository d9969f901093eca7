//! Kernel features some tests need and no script can add (a kernel built without them has
//! none of their `/proc` files). A test that needs one checks first with [`kernel_has`]; where
//! it is missing the test is not run, says so in one line, and `scripts/test.sh` lists it in
//! its final summary (the file `$TUNMCAST_NOT_RUN`). A missing *package* is never handled here:
//! it stays a failure under `CI=true`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use crate::namespace::{skipped, test_name};

/// A kernel feature, named by the configuration option that builds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelFeature {
    /// IPv4 multicast routing (`MRT_INIT`): FRR's pimd cannot be an IGMP querier without it
    /// (`setsockopt(MRT_INIT): errno=92: Protocol not available`).
    Ipv4MulticastRouting,
    /// IPv6 multicast routing (`MRT6_INIT`): FRR's pim6d needs it for MLD.
    Ipv6MulticastRouting,
}

impl KernelFeature {
    /// The kernel configuration option.
    pub fn config_option(self) -> &'static str {
        match self {
            KernelFeature::Ipv4MulticastRouting => "CONFIG_IP_MROUTE",
            KernelFeature::Ipv6MulticastRouting => "CONFIG_IPV6_MROUTE",
        }
    }

    /// The file the feature creates in every network namespace's `/proc/net`: present if and
    /// only if the kernel was built with it.
    fn proc_file(self) -> &'static str {
        match self {
            KernelFeature::Ipv4MulticastRouting => "/proc/net/ip_mr_vif",
            KernelFeature::Ipv6MulticastRouting => "/proc/net/ip6_mr_vif",
        }
    }

    /// Whether the running kernel has it.
    pub fn present(self) -> bool {
        Path::new(self.proc_file()).exists()
    }
}

/// True if the kernel has `feature`. Otherwise prints `not run: TEST: this kernel lacks
/// CONFIG_X (WHO needs it)` on stderr, appends the same line to `$TUNMCAST_NOT_RUN` for
/// `scripts/test.sh`'s summary, and returns false: the caller returns without asserting.
pub fn kernel_has(feature: KernelFeature, who_needs_it: &str) -> bool {
    if feature.present() {
        return true;
    }
    let line = format!(
        "{}: this kernel lacks {} ({who_needs_it} needs it; {} is missing)",
        test_name("?"),
        feature.config_option(),
        feature.proc_file()
    );
    skipped(&format!("not run: {line}"));
    record_not_run(&line);
    false
}

/// Appends `line` to the not-run list `scripts/test.sh` prints at the end. Tests run in
/// parallel threads and processes: one `write` of one whole line in append mode each.
fn record_not_run(line: &str) {
    let Some(path) = std::env::var_os("TUNMCAST_NOT_RUN").filter(|p| !p.is_empty()) else {
        return;
    };
    let written = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(format!("{line}\n").as_bytes()));
    if let Err(e) = written {
        panic!(
            "cannot record a test not run in {}: {e}",
            Path::new(&path).display()
        );
    }
}
