//! SIPp, the real SIP peer: runs a scenario from `tests/scenarios/`.

use crate::{free_udp_range, tests_dir};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Sipp {
    child: Option<Child>,
}

impl Sipp {
    /// Starts one call of `scenario` (a file in tests/scenarios) against
    /// `target`, in `workdir` (where `speech.ulaw` must be). `pause_ms` is the
    /// scenario's `<pause/>`.
    pub fn call(scenario: &str, target: SocketAddr, workdir: &Path, pause_ms: u64) -> Sipp {
        Self::call_with(scenario, target, workdir, pause_ms, &[])
    }

    /// As [`Sipp::call`], with extra SIPp arguments (e.g. `-trace_msg`).
    pub fn call_with(
        scenario: &str,
        target: SocketAddr,
        workdir: &Path,
        pause_ms: u64,
        extra: &[&str],
    ) -> Sipp {
        let media_port = free_udp_range(8).to_string();
        let sip_port = free_udp_range(1).to_string();
        let pause = pause_ms.to_string();
        let mut args = vec![target.to_string()];
        args.extend(
            [
                "-p",
                &sip_port,
                "-mp",
                &media_port,
                "-l",
                "1",
                "-d",
                &pause,
                "-s",
                "agent",
            ]
            .map(String::from),
        );
        args.extend(extra.iter().map(|a| a.to_string()));
        Self::spawn(scenario, &args, workdir)
    }

    /// Starts SIPp as a UAS running `scenario` for one call on `port`, in
    /// `workdir` (where the scenario's audio file must be).
    pub fn serve(scenario: &str, port: u16, workdir: &Path) -> Sipp {
        Self::serve_with(scenario, port, workdir, &[])
    }

    /// As [`Sipp::serve`], with extra SIPp arguments (e.g. `-t t1` for TCP).
    pub fn serve_with(scenario: &str, port: u16, workdir: &Path, extra: &[&str]) -> Sipp {
        let media_port = free_udp_range(8).to_string();
        let mut args = ["-p", &port.to_string(), "-mp", &media_port]
            .map(String::from)
            .to_vec();
        args.extend(extra.iter().map(|a| a.to_string()));
        Self::spawn(scenario, &args, workdir)
    }

    /// One call of `scenario` on loopback, with `args` for ports and roles;
    /// bounded by SIPp's own 60 s timeout.
    fn spawn(scenario: &str, args: &[String], workdir: &Path) -> Sipp {
        let child = Command::new("sipp")
            .arg("-sf")
            .arg(tests_dir().join("scenarios").join(scenario))
            .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-m", "1"])
            .args([
                "-timeout",
                "60s",
                "-timeout_error",
                "-nostdin",
                "-trace_err",
            ])
            .args(args)
            .current_dir(workdir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sipp (Debian package sip-tester)");
        Sipp { child: Some(child) }
    }

    /// Waits (bounded) for SIPp to finish and returns its output.
    pub fn finish(mut self, limit: Duration) -> Output {
        let mut child = self.child.take().expect("sipp running");
        let start = Instant::now();
        while start.elapsed() < limit {
            if child.try_wait().expect("wait sipp").is_some() {
                return child.wait_with_output().expect("sipp output");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let out = child.wait_with_output().expect("sipp output");
        panic!(
            "sipp did not finish within {limit:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Waits for SIPp and asserts that its call succeeded.
    pub fn assert_success(self, limit: Duration) {
        let out = self.finish(limit);
        assert!(
            out.status.success(),
            "sipp failed ({:?}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
