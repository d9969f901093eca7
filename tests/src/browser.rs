//! Headless Chromium in a namespace: the rendered DOM of a page (`--dump-dom`), a screenshot,
//! and a live tab driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON
//! messages ended by a NUL byte, commands on the browser's fd 3, answers on its fd 4), for
//! watching a page change while the test acts.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::namespace::{ci, skipped, test_name};
use crate::Netns;

/// The flags every run gets: no sandbox (root), no GPU, nothing fetched from the network.
const FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Whether the `chromium` binary (Debian package chromium) can run: false (said loudly) when
/// it is missing, and under `CI=true` a failure instead, as for every missing program.
pub fn chromium_available() -> bool {
    let found = Command::new("chromium")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(!ci(), "chromium is missing (apt-get install chromium)");
        skipped(&format!(
            "SKIPPED the browser part of {} (needs chromium: apt-get install chromium)",
            test_name("a test")
        ));
    }
    found
}

impl Netns {
    fn chromium(&self, profile: &str) -> Command {
        let profile = self.dir().join(profile);
        let _ = std::fs::create_dir_all(&profile);
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", self.name(), "chromium"])
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()));
        command
    }

    /// The DOM of `url` once its scripts ran for `budget` of virtual time (network fetches
    /// pause virtual time, so the page's first answers are in).
    pub fn dump_dom(&self, url: &str, budget: Duration) -> String {
        let out = self
            .chromium("chromium-dump")
            .arg(format!("--virtual-time-budget={}", budget.as_millis()))
            .args(["--dump-dom", url])
            .output()
            .expect("run chromium");
        assert!(
            out.status.success(),
            "chromium --dump-dom {url}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A PNG of `url` after `budget` of virtual time, written to `file`.
    pub fn screenshot(&self, url: &str, budget: Duration, file: &Path) {
        let out = self
            .chromium("chromium-shot")
            .arg(format!("--virtual-time-budget={}", budget.as_millis()))
            .arg("--window-size=1400,1600")
            .arg(format!("--screenshot={}", file.display()))
            .arg(url)
            .output()
            .expect("run chromium");
        assert!(
            out.status.success() && file.exists(),
            "chromium --screenshot {url}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A browser with one tab on `url`, driven over the DevTools pipe.
    pub fn browse(&self, url: &str) -> Browser {
        let (to_browser_read, to_browser_write) = pipe();
        let (from_browser_read, from_browser_write) = pipe();
        let (child_in, child_out) = (to_browser_read.as_raw_fd(), from_browser_write.as_raw_fd());
        let mut command = self.chromium("chromium-live");
        command
            .args(["--remote-debugging-pipe", "about:blank"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe dup2 between fork and exec; the pipes' ends are above
        // 9 (see `pipe`), so the first dup2 cannot close the second's source.
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(child_in, 3) < 0 || libc::dup2(child_out, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start chromium");
        drop((to_browser_read, from_browser_write));
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(std::fs::File::from(from_browser_read));
            let mut message = Vec::new();
            loop {
                message.clear();
                match reader.read_until(0, &mut message) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        message.pop();
                        if let Ok(value) = serde_json::from_slice::<Value>(&message) {
                            if tx.send(value).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        });
        let mut browser = Browser {
            child,
            commands: std::fs::File::from(to_browser_write),
            messages,
            next_id: 0,
            session: None,
        };
        let target = browser.call(None, "Target.createTarget", json!({ "url": url }));
        let target_id = target["targetId"]
            .as_str()
            .expect("a target id")
            .to_string();
        let attached = browser.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
        );
        browser.session = Some(attached["sessionId"].as_str().expect("a session").into());
        browser
    }
}

/// A pipe whose two ends are above 4 (the child's 3 and 4 are made from them), close-on-exec.
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills `fds` with two new descriptors; each is moved above 9 with fcntl
    // (the copy owned from now on) and the original closed.
    unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0, "pipe2");
        let high = |fd: i32| {
            let copy = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
            assert!(copy >= 10, "fcntl F_DUPFD_CLOEXEC");
            libc::close(fd);
            OwnedFd::from_raw_fd(copy)
        };
        (high(fds[0]), high(fds[1]))
    }
}

/// A headless Chromium with one tab; closed (and killed) on drop.
pub struct Browser {
    child: Child,
    commands: std::fs::File,
    messages: Receiver<Value>,
    next_id: u64,
    session: Option<String>,
}

impl Browser {
    /// Sends a DevTools command and waits (10 s at most) for its result.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("JSON");
        bytes.push(0);
        self.commands
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("DevTools pipe: {e}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = self
                .messages
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("chromium did not answer {method} within 10 s"));
            if reply["id"] == json!(id) {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// The value of the JavaScript `expression` in the tab (promises awaited).
    pub fn eval(&mut self, expression: &str) -> Value {
        let session = self.session.clone();
        let result = self.call(
            session.as_deref(),
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let message = b"{\"id\":999999,\"method\":\"Browser.close\",\"params\":{}}\0";
        let _ = self.commands.write_all(message);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
