//! Kamailio (Debian package `kamailio`) as a stateful dispatcher in front
//! of one or more engines: round robin over a dispatcher set, OPTIONS
//! probing of every destination each second, Record-Route so in-dialog
//! requests come back through it. Started per test on its own port, with
//! its log captured; killed when dropped.

use crate::Scratch;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Kamailio {
    child: Option<Child>,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Kamailio {
    /// A dispatcher on 127.0.0.1:`port` that sends new requests to
    /// `engines` in turn (algorithm 4, round robin).
    pub fn dispatcher(scratch: &Scratch, port: u16, engines: &[SocketAddr]) -> Kamailio {
        let list = scratch.path("dispatcher.list");
        let lines: String = engines.iter().map(|e| format!("1 sip:{e}\n")).collect();
        std::fs::write(&list, lines).expect("write dispatcher list");
        let cfg = scratch.path("kamailio.cfg");
        std::fs::write(&cfg, config(port, &list.to_string_lossy())).expect("write kamailio.cfg");
        let mut child = Command::new("kamailio")
            .arg("-f")
            .arg(&cfg)
            .args(["-DD", "-E", "-m", "32", "-M", "8"])
            .arg("-Y")
            .arg(&scratch.0)
            .arg("-w")
            .arg(&scratch.0)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kamailio (Debian package kamailio)");
        let log = Arc::new(Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("[kamailio] {line}");
                    log.lock().expect("log lock").push(line);
                }
            });
        }
        let kamailio = Kamailio {
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        };
        kamailio.wait_for("processes (at least)", Duration::from_secs(10));
        kamailio
    }

    /// Waits (bounded) until Kamailio logged a line containing `needle`.
    pub fn wait_for(&self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.log_lines().iter().any(|l| l.contains(needle)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("kamailio never logged {needle:?} within {limit:?}");
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A minimal stateful dispatcher: max-forwards, loose routing for
/// in-dialog requests, Record-Route on INVITE, ds_select_dst round robin,
/// t_relay. UDP only (`disable_tcp`, see PEERS.md).
fn config(port: u16, list: &str) -> String {
    format!(
        r#"#!KAMAILIO
debug=2
log_stderror=yes
children=2
disable_tcp=yes
auto_aliases=no
listen=udp:127.0.0.1:{port}
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "dispatcher.so"
modparam("dispatcher", "list_file", "{list}")
modparam("dispatcher", "ds_ping_interval", 1)
modparam("dispatcher", "ds_probing_mode", 1)
modparam("dispatcher", "ds_ping_from", "sip:dispatcher@127.0.0.1")

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ xlog("L_INFO", "in-dialog $rm routed\n"); t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here"); exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    t_check_trans();
    if (is_method("INVITE")) {{ record_route(); }}
    if (!ds_select_dst("1", "4")) {{ sl_send_reply("503", "No engine"); exit; }}
    xlog("L_INFO", "dispatching $rm to $du\n");
    t_relay();
    exit;
}}
"#
    )
}
