//! SDES-SRTP (RFC 4568 + RFC 3711) on TLS trunks, against a real peer:
//! baresip (its `srtp` module, `mediaenc=srtp-mand`) calls the engine over
//! SIP TLS and talks; the engine answers RTP/SAVP with its own key, records
//! the decrypted speech sample for sample and plays its prompt, which
//! baresip decrypts and dumps. And the policy: SDES keys never travel over
//! cleartext signalling, and a `mandatory` engine refuses plain RTP.
//! Last, the B2BUA: a plain SIPp caller is bridged over TLS to a baresip
//! agent on a `srtp = "mandatory"` trunk (RTP/SAVP out) and on an
//! `optional` one (best effort: RTP/AVP with a crypto line), each leg doing
//! its own crypto, packets re-protected on the way.

use control_api::proto::call_event::Event;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use switchboard_e2e::audio::{self, Speech};
use switchboard_e2e::engine::Engine;
use switchboard_e2e::sipp::Sipp;
use switchboard_e2e::stream_ua::write_test_certificate;
use switchboard_e2e::{
    event_kinds, events_until_ended, free_udp_range, run_checked, tests_dir, Scratch,
};

/// baresip as a PCMU user agent speaking SIP over TLS and SRTP only,
/// trusting `ca` for the engine's certificate.
fn baresip_config(scratch: &Scratch, sip_port: u16, source: &Path, ca: &str) -> PathBuf {
    baresip_config_as(
        scratch,
        ("caller", "srtp-mand"),
        sip_port,
        source,
        (ca, None),
    )
}

/// The same as `user` with media encryption `mediaenc` (`srtp-mand`:
/// RTP/SAVP only; `srtp`: best effort, SDES on RTP/AVP); with `cert`
/// (certificate and key in one PEM) it also serves TLS, on `sip_port + 1`
/// (baresip's choice).
fn baresip_config_as(
    scratch: &Scratch,
    (user, mediaenc): (&str, &str),
    sip_port: u16,
    source: &Path,
    (ca, cert): (&str, Option<&Path>),
) -> PathBuf {
    let dir = scratch.path("baresip");
    let dump = scratch.path("baresip-dump");
    let cert = cert
        .map(|c| format!("sip_certificate {}\n", c.display()))
        .unwrap_or_default();
    std::fs::create_dir_all(&dir).expect("config dir");
    std::fs::create_dir_all(&dump).expect("dump dir");
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\nsip_cafile {ca}\n{cert}\
         net_interface 127.0.0.1\ndns_server 127.0.0.1:53\n\
         audio_source aufile,{source}\naudio_player aufile,{heard}\naudio_alert aufile,/dev/null\n\
         audio_srate 8000\naudio_channels 1\nanswermode auto\nsnd_path {dump}\n\
         module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\n\
         module sndfile.so\nmodule srtp.so\nmodule_app account.so\nmodule_app menu.so\n",
        source = source.display(),
        heard = scratch.path("heard.wav").display(),
        dump = dump.display(),
    );
    std::fs::write(dir.join("config"), config).expect("config");
    std::fs::write(
        dir.join("accounts"),
        format!("<sip:{user}@127.0.0.1;transport=tls>;regint=0;mediaenc={mediaenc};answermode=auto;audio_codecs=PCMU\n"),
    )
    .expect("accounts");
    std::fs::write(dir.join("contacts"), "").expect("contacts");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_over_tls_with_srtp() {
    let scratch = Scratch::new("srtp-tls");
    let speech = Speech::generate(
        &scratch,
        "This call is encrypted. The keys travel over TLS, the audio over SRTP.",
    );
    let (cert, key, _) = write_test_certificate(&scratch.0);
    let engine = Engine::start(
        &scratch,
        &[
            ("SWITCHBOARD_SIP__TLS_CERT", cert.clone()),
            ("SWITCHBOARD_SIP__TLS_KEY", key),
        ],
    );
    let (_grpc, mut events) = engine.subscribe().await;
    let config = baresip_config(
        &scratch,
        free_udp_range(1),
        &scratch.path("speech-ref.wav"),
        &cert,
    );
    let target = format!("/dial sip:agent@{};transport=tls", engine.sip_tls);
    let run = tokio::task::spawn_blocking(move || {
        Command::new("baresip")
            .arg("-f")
            .arg(&config)
            .args(["-e", &target, "-t", "12"])
            .output()
            .expect("run baresip (Debian package baresip)")
    });
    let events = events_until_ended(&mut events, Duration::from_secs(40)).await;
    let out = run.await.expect("baresip task");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("Call established"), "{log}");
    assert!(
        log.contains("SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)"),
        "{log}"
    );
    assert_eq!(event_kinds(&events), ["started", "answered", "ended"]);
    let Some(Event::Started(started)) = &events[0].event else {
        unreachable!()
    };
    assert_eq!(started.transport, "tls");
    let Some(Event::Answered(answered)) = &events[1].event else {
        unreachable!()
    };
    assert!(answered.srtp, "{answered:?}");
    assert_eq!(answered.media_proto, "RTP/SAVP");
    let Some(Event::Ended(ended)) = &events.last().expect("ended").event else {
        unreachable!()
    };
    assert_eq!(ended.reason, "remote_bye");
    let lines = engine.log_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("offer accepted srtp=true proto=RTP/SAVP")),
        "the engine did not answer RTP/SAVP"
    );
    let rtp = ended.rtp.expect("rtp counters");
    assert!(rtp.packets_received + 2 >= speech.packets(), "{rtp:?}");
    // baresip's RTCP BYE after its SRTP session is torn down is the one
    // packet a clean call may refuse.
    assert!(rtp.srtp_auth_failures <= 2, "{rtp:?}");

    // The speech, decrypted by the engine, in the recording sample for sample.
    let (left, _, rate) = audio::read_stereo(Path::new(&ended.recording_path));
    assert_eq!(rate, 8000);
    let (lag, corr) = audio::best_alignment(&left, &speech.reference, 8000);
    assert!(corr > 0.95, "baresip's speech correlates {corr:.3}");
    audio::assert_windows_aligned(&left, &speech.reference, lag, 4000, 0.9);

    // What baresip decrypted: the engine's 440 Hz prompt.
    let dump = std::fs::read_dir(scratch.path("baresip-dump"))
        .expect("dump dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .expect("baresip's decoded-audio dump");
    let heard = audio::read_mono(&dump);
    let tone = audio::dominant_frequency(&heard, 8000);
    assert!(
        (tone - 440.0).abs() < 15.0,
        "baresip heard {tone:.1} Hz, not the 440 Hz prompt"
    );
}

/// A test INVITE (tests/sip/srtp/<name>), with CRLF line ends.
fn message(name: &str) -> Vec<u8> {
    let path = tests_dir().join("sip").join("srtp").join(name);
    let text = std::fs::read_to_string(&path).expect("read message");
    text.replace('\n', "\r\n").into_bytes()
}

/// The final status the engine answers `msg` with, over UDP (responses to
/// earlier messages, retransmitted until an ACK that never comes, skipped).
fn final_status(socket: &UdpSocket, engine: &Engine, msg: &[u8]) -> u16 {
    let call_id = String::from_utf8_lossy(msg)
        .lines()
        .find_map(|l| l.strip_prefix("Call-ID: ").map(|v| v.trim().to_owned()))
        .expect("Call-ID");
    socket.send_to(msg, engine.sip).expect("send");
    let mut buf = [0u8; 4096];
    for _ in 0..20 {
        let (n, _) = socket.recv_from(&mut buf).expect("a response");
        let text = String::from_utf8_lossy(&buf[..n]);
        if !text.contains(&call_id) {
            continue;
        }
        let status = text
            .strip_prefix("SIP/2.0 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if status >= 200 {
            assert!(!text.contains("a=crypto"), "keys went out over UDP: {text}");
            return status;
        }
    }
    panic!("no final response")
}

#[test]
fn sdes_over_udp_gets_488_and_mandatory_refuses_plain_rtp() {
    let scratch = Scratch::new("srtp-policy");
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");

    // Default policy (optional): RTP/SAVP over UDP would put our key in
    // cleartext: 488. A plain offer is still answered.
    let engine = Engine::start(&scratch, &[]);
    assert_eq!(
        final_status(&socket, &engine, &message("savp-offer.sip")),
        488
    );
    assert_eq!(
        final_status(&socket, &engine, &message("plain-offer.sip")),
        200
    );
    drop(engine);

    // Mandatory: a plain RTP/AVP offer gets 488 (and over UDP so does
    // everything else).
    let engine = Engine::start(&scratch, &[("SWITCHBOARD_SIP__SRTP", "mandatory".into())]);
    assert_eq!(
        final_status(&socket, &engine, &message("plain-offer.sip")),
        488
    );
    assert_eq!(
        final_status(&socket, &engine, &message("savp-offer.sip")),
        488
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b2bua_bridges_a_plain_caller_to_an_srtp_agent_over_tls() {
    bridge_to_srtp_agent("mandatory", "srtp-mand", "RTP/SAVP").await;
}

/// `optional` offers RTP/AVP with a crypto line; baresip in best-effort
/// mode takes it, so the agent leg is SRTP all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b2bua_offers_best_effort_srtp_on_an_optional_trunk() {
    bridge_to_srtp_agent("optional", "srtp", "RTP/AVP+crypto").await;
}

/// A plain SIPp caller bridged to a baresip agent over TLS on a trunk with
/// `srtp = trunk_mode`; the engine must offer `offered`.
async fn bridge_to_srtp_agent(trunk_mode: &str, mediaenc: &str, offered: &str) {
    let scratch = Scratch::new(&format!("srtp-bridge-{trunk_mode}"));
    let caller = Speech::generate(&scratch, "Hello, I am calling about my invoice.");
    let agent = Speech::generate_as(&scratch, "agent", "Of course, let me look that up.");
    let talk_ms = caller.reference.len().max(agent.reference.len()) as u64 / 8;
    // The agent talks, then stays silent until the caller hangs up.
    let agent_source = scratch.path("agent-padded.wav");
    run_checked(
        Command::new("sox")
            .arg("-D")
            .arg(scratch.path("agent-ref.wav"))
            .arg(&agent_source)
            .args(["pad", "0", "8"]),
    );
    let (cert, key, _) = write_test_certificate(&scratch.0);
    let both = scratch.path("agent-cert-key.pem");
    let pem = std::fs::read_to_string(&cert).expect("cert")
        + &std::fs::read_to_string(&key).expect("key");
    std::fs::write(&both, pem).expect("write cert+key");
    let agent_sip = free_udp_range(2);
    let config = baresip_config_as(
        &scratch,
        ("agent", mediaenc),
        agent_sip,
        &agent_source,
        (&cert, Some(&both)),
    );
    let mut baresip = Command::new("baresip")
        .arg("-f")
        .arg(&config)
        .args(["-t", "40"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run baresip (Debian package baresip)");
    std::thread::sleep(Duration::from_millis(500));

    let engine_config = scratch.path("switchboard.toml");
    std::fs::write(
        &engine_config,
        format!(
            "[sip]\ntls_ca = \"{cert}\"\n\n\
             [[trunks]]\nname = \"agents\"\naddress = \"sip:127.0.0.1:{tls};transport=tls\"\n\
             options_interval_secs = 0\nsrtp = \"{trunk_mode}\"\n\n\
             [[routes]]\ndid = \"*\"\ntrunks = [\"agents\"]\n",
            tls = agent_sip + 1
        ),
    )
    .expect("engine config");
    let engine = Engine::start(
        &scratch,
        &[("SWITCHBOARD_CONFIG", engine_config.display().to_string())],
    );
    let (_grpc, mut events) = engine.subscribe().await;
    let caller_sipp = Sipp::call(
        "uac_pcmu_speech.xml",
        engine.sip,
        &scratch.0,
        talk_ms + 1500,
    );
    let events = events_until_ended(&mut events, Duration::from_secs(60)).await;
    tokio::task::spawn_blocking(move || caller_sipp.assert_success(Duration::from_secs(30)))
        .await
        .expect("sipp task");
    let _ = baresip.kill();
    let out = baresip.wait_with_output().expect("baresip output");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        log.contains("SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)"),
        "{log}"
    );

    assert_eq!(event_kinds(&events), ["started", "answered", "ended"]);
    let Some(Event::Ended(ended)) = &events.last().expect("ended").event else {
        unreachable!()
    };
    let lines = engine.log_lines();
    let said = |needle: &str| lines.iter().any(|l| l.contains(needle));
    assert!(
        said(&format!("offered=\"{offered}\"")),
        "the INVITE did not offer {offered}"
    );
    assert!(
        said("SRTP keys set srtp=true remote_key=true"),
        "no SRTP on the agent leg"
    );
    assert!(
        said("offer accepted srtp=false"),
        "the caller's leg is plain RTP"
    );

    // The agent (SRTP, decrypted by the engine) in the recording's right
    // channel; the caller (plain) on the left.
    let (left, right, _) = audio::read_stereo(Path::new(&ended.recording_path));
    let (_, corr) = audio::best_alignment(&left, &caller.reference, 16_000);
    assert!(corr > 0.95, "caller channel correlates {corr:.3}");
    let (_, corr) = audio::best_alignment(&right, &agent.reference, 16_000);
    assert!(corr > 0.95, "agent channel (SRTP) correlates {corr:.3}");

    // What baresip decrypted: the caller's speech, relayed and re-protected.
    let dump = std::fs::read_dir(scratch.path("baresip-dump"))
        .expect("dump dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .expect("baresip's decoded-audio dump");
    let heard = audio::read_mono(&dump);
    let (_, corr) = audio::best_alignment(&heard, &caller.reference, 16_000);
    assert!(
        corr > 0.9,
        "the agent heard the caller with correlation {corr:.3}"
    );
}
