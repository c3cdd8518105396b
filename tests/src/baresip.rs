//! baresip, a real SIP user agent, pinned to one codec: it dials the engine
//! (or waits for the engine's call, answering automatically), plays a WAV
//! file as its microphone and dumps what it hears. Its log (stdout) says
//! what happened, including RFC 4733 key presses it received.

use crate::{free_udp_range, Scratch};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How baresip talks: its codec module, the codec name and the audio rate.
#[derive(Clone, Copy, Debug)]
pub struct BaresipCodec {
    pub module: &'static str,
    /// The codec name in the engine's `answered` event.
    pub name: &'static str,
    /// How baresip's account names it (`audio_codecs`).
    pub account_name: &'static str,
    pub rate: u32,
    /// Its opus codec is always 2 channels (RFC 7587's `opus/48000/2`),
    /// and its file source must match.
    pub channels: u16,
}

pub const PCMU: BaresipCodec = BaresipCodec {
    module: "g711.so",
    name: "PCMU",
    account_name: "PCMU",
    rate: 8000,
    channels: 1,
};

pub const G722: BaresipCodec = BaresipCodec {
    module: "g722.so",
    name: "G722",
    account_name: "G722",
    rate: 16000,
    channels: 1,
};

pub const OPUS: BaresipCodec = BaresipCodec {
    module: "opus.so",
    name: "opus",
    account_name: "opus/48000/2",
    rate: 48000,
    channels: 2,
};

/// One running baresip.
pub struct Baresip {
    child: Option<Child>,
    pub sip_port: u16,
    /// Where its `*-dec.wav` (what it heard) lands.
    pub dump_dir: PathBuf,
}

impl Baresip {
    /// Writes a config under `scratch/<name>` playing `source` (a WAV at
    /// the codec's rate and channels) and starts baresip; with `dial`, it
    /// calls that URI at once. `-t seconds` bounds its life.
    pub fn start(
        scratch: &Scratch,
        name: &str,
        source: &Path,
        codec: BaresipCodec,
        dial: Option<String>,
        seconds: u32,
    ) -> Baresip {
        let sip_port = free_udp_range(1);
        let dir = scratch.path(name);
        let dump_dir = scratch.path(&format!("{name}-dump"));
        std::fs::create_dir_all(&dir).expect("config dir");
        std::fs::create_dir_all(&dump_dir).expect("dump dir");
        let config = format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\nsip_transports udp\n\
             net_interface 127.0.0.1\ndns_server 127.0.0.1:53\n\
             audio_source aufile,{source}\naudio_player aufile,{heard}\naudio_alert aufile,/dev/null\n\
             audio_srate {rate}\naudio_channels {channels}\nanswermode auto\nsnd_path {dump}\n\
             module_path /usr/lib/baresip/modules\nmodule {module}\nmodule aufile.so\nmodule sndfile.so\n\
             module_app account.so\nmodule_app menu.so\n",
            source = source.display(),
            heard = dir.join("heard.wav").display(),
            dump = dump_dir.display(),
            rate = codec.rate,
            channels = codec.channels,
            module = codec.module,
        );
        std::fs::write(dir.join("config"), config).expect("config");
        std::fs::write(
            dir.join("accounts"),
            format!(
                "<sip:{name}@127.0.0.1:{sip_port}>;regint=0;answermode=auto;audio_codecs={}\n",
                codec.account_name
            ),
        )
        .expect("accounts");
        std::fs::write(dir.join("contacts"), "").expect("contacts");
        let mut cmd = Command::new("baresip");
        cmd.arg("-f").arg(&dir).args(["-t", &seconds.to_string()]);
        if let Some(uri) = dial {
            cmd.args(["-e", &format!("/dial {uri}")]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run baresip (Debian package baresip)");
        Baresip {
            child: Some(child),
            sip_port,
            dump_dir,
        }
    }

    /// Where it listens, for the engine to call it.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.sip_port))
    }

    /// Stops it (if still running) and returns its output.
    pub fn finish(mut self, limit: Duration) -> Output {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + limit;
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait_with_output().expect("baresip output")
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A WAV of `wav` (any rate) at `rate` and `channels`, with `lead` seconds
/// of silence before and `tail` after: a baresip microphone that speaks
/// once, at a known moment of its call.
pub fn padded_source(wav: &Path, out: &Path, rate: u32, channels: u16, lead: f64, tail: f64) {
    crate::run_checked(
        Command::new("sox")
            .arg("-D")
            .arg(wav)
            .args([
                "-r",
                &rate.to_string(),
                "-c",
                &channels.to_string(),
                "-b",
                "16",
            ])
            .arg(out)
            .args(["pad", &lead.to_string(), &tail.to_string()]),
    );
}
