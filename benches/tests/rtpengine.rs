//! A short run relayed by a real rtpengine (userspace, no kernel module),
//! skipped with a notice when the `rtpengine` binary is absent (Debian
//! package `rtpengine-daemon`).

mod common;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use switchboard_bench::{run, BenchConfig, Mode};

fn find_rtpengine() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join("rtpengine"))
        .find(|p| p.is_file())
}

/// Kills the rtpengine this test started, by its own handle.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn rtpengine_counts_add_up() {
    let Some(bin) = find_rtpengine() else {
        eprintln!("NOTICE: rtpengine not installed (apt-get install rtpengine-daemon); skipping");
        return;
    };
    // A free UDP port for ng.
    let ng = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .unwrap();
    let child = Command::new(bin)
        .args([
            "--config-file=none",
            "--foreground",
            "--log-stderr",
            "--table=-1",
            "--interface=127.0.0.1",
            &format!("--listen-ng={ng}"),
            "--port-min=31000",
            "--port-max=31199",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rtpengine");
    let guard = Guard(child);
    // run() pings ng for up to 3 s before it starts.
    let report = run(BenchConfig {
        mode: Mode::Rtpengine,
        ng,
        levels: vec![5],
        cps: 20.0,
        hold_secs: 2.0,
        give_up_secs: 4.0,
        rtpengine_pid: Some(guard.0.id()),
        ..BenchConfig::default()
    })
    .expect("rtpengine run");
    common::assert_counts_add_up(&report, 5);
    let engine = report.modes[0].levels[0].engine.clone();
    assert!(engine.is_some(), "rtpengine's CPU sampled");
}
