//! The `switchboard` binary under test, on ports picked per test.

use crate::{free_port, Scratch};
use control_api::proto::call_control_client::CallControlClient;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

pub struct Engine {
    child: Option<Child>,
    /// UDP and TCP (one port number, as in production).
    pub sip: SocketAddr,
    /// SIP over TLS (a self-signed certificate unless the test gives one).
    pub sip_tls: SocketAddr,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub recordings: PathBuf,
    /// Every line the engine logged so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

/// Where cargo put the `switchboard` binary: next to this test's `deps/` folder.
pub fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("SWITCHBOARD_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test exe path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let bin = profile_dir.join("switchboard");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p control-api --bin switchboard)",
        bin.display()
    );
    bin
}

impl Engine {
    /// Starts the engine with defaults plus `env` overrides (SWITCHBOARD_*),
    /// and waits until it answers on HTTP. Ports are picked per attempt; an
    /// engine that exits because another process took one of them in the
    /// meantime is started again on new ones (at most three attempts).
    pub fn start(scratch: &Scratch, env: &[(&str, String)]) -> Engine {
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let mut engine = Engine::spawn(scratch, env);
            match engine.wait_ready(Duration::from_secs(20)) {
                Ready::Yes => return engine,
                Ready::Exited(status) => {
                    // Let the log readers catch up with the last lines.
                    std::thread::sleep(Duration::from_millis(100));
                    let port_taken = engine
                        .log_lines()
                        .iter()
                        .any(|l| l.contains("Address already in use"));
                    assert!(
                        port_taken && attempt < ATTEMPTS,
                        "switchboard exited before it was ready ({status}), attempt {attempt}"
                    );
                    eprintln!("[harness] a port was taken under the engine; starting it again");
                }
                Ready::TimedOut(limit) => {
                    panic!("switchboard did not become ready within {limit:?}")
                }
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// An engine that bridges every call to the SIP UAS on
    /// 127.0.0.1:`agent_port` over UDP (`routing.bridge_to`).
    pub fn bridging_to(scratch: &Scratch, agent_port: u16) -> Engine {
        Engine::start(
            scratch,
            &[(
                "SWITCHBOARD_ROUTING__BRIDGE_TO",
                format!("127.0.0.1:{agent_port}"),
            )],
        )
    }

    /// Starts the process on freshly picked ports without waiting.
    fn spawn(scratch: &Scratch, env: &[(&str, String)]) -> Engine {
        let (sip_port, grpc_port, http_port) = (free_port(), free_port(), free_port());
        let tls_port = free_port();
        let recordings = scratch.path("recordings");
        let rtp_min = 40_000 + (sip_port % 500) * 40;
        let mut cmd = Command::new(binary());
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SWITCHBOARD_SERVER__LOG", "info")
            .env("SWITCHBOARD_SIP__PORT", sip_port.to_string())
            .env("SWITCHBOARD_SIP__TLS_PORT", tls_port.to_string())
            .env("SWITCHBOARD_GRPC__PORT", grpc_port.to_string())
            .env("SWITCHBOARD_HTTP__PORT", http_port.to_string())
            .env("SWITCHBOARD_MEDIA__RTP_PORT_MIN", rtp_min.to_string())
            .env(
                "SWITCHBOARD_MEDIA__RTP_PORT_MAX",
                (rtp_min + 38).to_string(),
            )
            .env("SWITCHBOARD_MEDIA__WORKERS", "2")
            // The audio checks compare recordings sample for sample with
            // the source timeline. The adaptive jitter buffer may rightly
            // drop or insert a frame when a loaded CI machine delays
            // packets, which shifts that timeline; its behaviour is tested
            // on recorded-like traces in media-core. A test may turn it on.
            .env("SWITCHBOARD_MEDIA__JITTER_ADAPTIVE", "false")
            .env("SWITCHBOARD_RECORDING__DIR", &recordings)
            .env("NO_COLOR", "1")
            .current_dir(&scratch.0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start switchboard");
        let log = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("[switchboard] {line}");
                    log.lock().expect("log lock").push(line);
                }
            });
        }
        Engine {
            child: Some(child),
            sip: SocketAddr::from(([127, 0, 0, 1], sip_port)),
            sip_tls: SocketAddr::from(([127, 0, 0, 1], tls_port)),
            grpc: SocketAddr::from(([127, 0, 0, 1], grpc_port)),
            http: SocketAddr::from(([127, 0, 0, 1], http_port)),
            recordings,
            log,
        }
    }

    fn wait_ready(&mut self, limit: Duration) -> Ready {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.http_get("/healthz").is_some_and(|b| b.contains("ok")) {
                return Ready::Yes;
            }
            let child = self.child.as_mut().expect("engine running");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Ready::Exited(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ready::TimedOut(limit)
    }

    /// A plain HTTP/1.0 GET against the engine; the body, or None.
    pub fn http_get(&self, path: &str) -> Option<String> {
        use std::io::{Read, Write};
        let mut s =
            std::net::TcpStream::connect_timeout(&self.http, Duration::from_millis(500)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
    }

    /// The value of an unlabelled Prometheus sample, if present.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let body = self.http_get("/metrics")?;
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// Waits (bounded) until the sample `name` (labels included, e.g.
    /// `switchboard_trunk_up{trunk="a"}`) reads `want`.
    pub fn wait_metric(&self, name: &str, want: f64, limit: Duration) {
        let until = Instant::now() + limit;
        loop {
            let got = self.metric(name);
            if got == Some(want) {
                return;
            }
            assert!(
                Instant::now() < until,
                "{name} is {got:?}, not {want}, after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub async fn grpc(&self) -> CallControlClient<Channel> {
        CallControlClient::connect(format!("http://{}", self.grpc))
            .await
            .expect("gRPC connect")
    }

    /// A gRPC client and its subscription to every call event.
    pub async fn subscribe(
        &self,
    ) -> (
        CallControlClient<Channel>,
        tonic::Streaming<control_api::proto::CallEvent>,
    ) {
        let mut client = self.grpc().await;
        let events = client
            .subscribe_events(control_api::proto::SubscribeEventsRequest::default())
            .await
            .expect("subscribe")
            .into_inner();
        (client, events)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let pid = self.pid().to_string();
        crate::run_checked(Command::new("kill").args(["-TERM", &pid]));
        self.wait_exit(limit)
    }

    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("engine running");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "switchboard did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }
}

/// How waiting for the engine's health check ended.
enum Ready {
    Yes,
    Exited(ExitStatus),
    TimedOut(Duration),
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
