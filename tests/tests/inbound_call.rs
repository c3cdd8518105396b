//! A real inbound call end to end: SIPp calls over UDP offering PCMU and
//! streams espeak-ng speech; the engine answers, plays a tone, records stereo,
//! forks 16 kHz frames to a WebSocket and reports the call over gRPC.

use control_api::proto::call_event::Event;
use std::time::Duration;
use switchboard_e2e::audio::{self, Speech};
use switchboard_e2e::engine::Engine;
use switchboard_e2e::fork_server::ForkServer;
use switchboard_e2e::sipp::Sipp;
use switchboard_e2e::{event_kinds, events_until_ended, quality_reports, Scratch};

const TEXT: &str =
    "Thank you for calling. Your account number is four two seven. Please hold for an agent.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_call_is_answered_recorded_forked_and_reported() {
    let scratch = Scratch::new("inbound");
    let speech = Speech::generate(&scratch, TEXT);
    let fork = ForkServer::start().await;
    let engine = Engine::start(&scratch, &[("SWITCHBOARD_ASR__FORK_URL", fork.url())]);

    let (_grpc, mut events) = engine.subscribe().await;

    // The call lasts the speech plus a second, then SIPp hangs up.
    let speech_ms = speech.reference.len() as u64 / 8;
    let sipp = Sipp::call(
        "uac_pcmu_speech.xml",
        engine.sip,
        &scratch.0,
        speech_ms + 1000,
    );
    let sipp_done =
        tokio::task::spawn_blocking(move || sipp.assert_success(Duration::from_secs(60)));
    let events = events_until_ended(&mut events, Duration::from_secs(60)).await;
    sipp_done.await.expect("sipp task");

    // Events: started → answered → ended, one call, in sequence order.
    let kinds = event_kinds(&events);
    assert_eq!(kinds, ["started", "answered", "ended"], "{events:?}");
    assert!(events.windows(2).all(|w| w[0].sequence < w[1].sequence));
    // The call outlives the 5 s report period: quality reached the stream.
    let reports = quality_reports(&events);
    assert!(!reports.is_empty(), "no quality report during the call");
    let caller = reports[0].caller.expect("caller quality");
    assert!(
        caller.mos > 4.0,
        "clean loopback call has MOS {}",
        caller.mos
    );
    assert!(reports[0].callee.is_none(), "no bridged party");
    let call_id = events[0].call_id.clone();
    assert!(events.iter().all(|e| e.call_id == call_id));
    let Some(Event::Answered(answered)) = &events[1].event else {
        unreachable!()
    };
    assert_eq!(answered.codec, "PCMU");
    let Some(Event::Ended(ended)) = &events.last().expect("ended").event else {
        unreachable!()
    };
    assert_eq!(ended.reason, "remote_bye");
    let quality = ended.quality.expect("final quality");
    assert!(
        quality.mos > 4.0 && quality.cumulative_lost == 0,
        "{quality:?}"
    );
    let rtp = ended.rtp.expect("rtp counters");
    let expected = speech.packets();
    assert!(
        rtp.packets_received + 1 >= expected && rtp.packets_received <= expected + 1,
        "received {} RTP packets, SIPp sent {expected}",
        rtp.packets_received
    );
    assert_eq!(rtp.packets_lost, 0);
    // The harness runs the jitter buffer in fixed mode at its 40 ms start.
    assert_eq!(rtp.jitter_buffer_ms, 40, "{rtp:?}");
    assert_eq!(
        (rtp.frames_dropped_for_delay, rtp.frames_inserted_for_delay),
        (0, 0)
    );
    assert!(
        rtp.packets_sent >= expected,
        "engine sent only {} packets",
        rtp.packets_sent
    );

    // The recording: left is the caller's speech, sample for sample; right is our tone.
    let recording = std::path::PathBuf::from(&ended.recording_path);
    assert!(
        recording.starts_with(&engine.recordings),
        "{}",
        recording.display()
    );
    let (left, right, rate) = audio::read_stereo(&recording);
    assert_eq!(rate, 8000);
    assert_eq!(left.len(), right.len());
    let (lag, corr) = audio::best_alignment(&left, &speech.reference, 8000);
    assert!(
        corr > 0.95,
        "caller channel correlates {corr:.3} with the speech sent"
    );
    audio::assert_windows_aligned(&left, &speech.reference, lag, 4000, 0.9);
    let tone = audio::dominant_frequency(&right, rate);
    assert!(
        (tone - 440.0).abs() < 15.0,
        "engine channel is {tone:.1} Hz, not the 440 Hz prompt"
    );

    // The audio fork: one stream, start/stop framing, every frame in order.
    let stream = fork.wait_stopped(Duration::from_secs(10)).await;
    assert!(stream.violations.is_empty(), "{:?}", stream.violations);
    let start = stream.start.as_ref().expect("start message");
    assert_eq!(start["call_id"], call_id.as_str());
    assert_eq!(start["channel"], "caller");
    assert_eq!(start["sample_rate"], 16000);
    assert_eq!(start["encoding"], "linear16");
    let stop = stream.stop.as_ref().expect("stop message");
    assert_eq!(
        stop["frames"],
        stream.frames.len() as u64,
        "every frame sent arrived"
    );
    assert_eq!(stop["dropped"], 0);
    assert!(
        stream.frames.iter().all(|f| f.len() == 320),
        "20 ms frames at 16 kHz"
    );
    let forked = stream.samples();
    let (corr, lag8k) = [0, 1]
        .iter()
        .map(|&phase| {
            let down = audio::decimate_by_2(&forked, phase);
            let (lag, corr) = audio::best_alignment(&down, &speech.reference, 8000);
            (corr, (lag, down))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .expect("two phases");
    assert!(
        corr > 0.9,
        "forked audio correlates {corr:.3} with the speech sent"
    );
    audio::assert_windows_aligned(&lag8k.1, &speech.reference, lag8k.0, 4000, 0.85);

    // Operable: metrics count the call's RTP; every log line of the call names it.
    let received = engine
        .metric("switchboard_rtp_packets_received_total")
        .unwrap_or(0.0);
    assert!(
        received >= expected as f64 - 1.0,
        "metrics show {received} packets received"
    );
    assert_eq!(engine.metric("switchboard_active_calls"), Some(0.0));
    let lines = engine.log_lines();
    for needle in ["INVITE received", "call answered", "call ended"] {
        let line = lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no log line with {needle:?}"));
        assert!(
            line.contains(&call_id),
            "log line lacks the call id: {line}"
        );
    }
}
