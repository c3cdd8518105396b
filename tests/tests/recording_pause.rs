//! Pause and resume for card capture: while paused the recording holds
//! silence on both channels, in the same file, on the same timeline; audio
//! before and after the pause is kept.

use control_api::proto::call_event::Event;
use control_api::proto::RecordingRequest;
use std::time::{Duration, Instant};
use switchboard_e2e::audio::{self, Speech};
use switchboard_e2e::engine::Engine;
use switchboard_e2e::sipp::Sipp;
use switchboard_e2e::{event_kinds, events_until_ended, wait_event, Scratch};

const TEXT: &str = "I would like to pay my bill now. My card number is four one one one, \
                    one one one one, one one one one, one one one one. Thank you very much.";

fn nonzero(samples: &[i16], from_s: f64, to_s: f64) -> usize {
    let (a, b) = ((from_s * 8000.0) as usize, (to_s * 8000.0) as usize);
    samples
        .get(a..b.min(samples.len()))
        .unwrap_or(&[])
        .iter()
        .filter(|&&s| s != 0)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_capture_records_silence_in_one_file() {
    let scratch = Scratch::new("pause");
    let speech = Speech::generate(&scratch, TEXT);
    let engine = Engine::start(&scratch, &[]);
    let (mut grpc, mut events) = engine.subscribe().await;

    let speech_ms = speech.reference.len() as u64 / 8;
    let sipp = Sipp::call(
        "uac_pcmu_speech.xml",
        engine.sip,
        &scratch.0,
        speech_ms + 500,
    );
    let answered = wait_event(&mut events, Duration::from_secs(30), |e| {
        matches!(e.event, Some(Event::Answered(_)))
    })
    .await;
    let call_id = answered.call_id.clone();
    let t0 = Instant::now();

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let request = RecordingRequest {
        call_id: call_id.clone(),
    };
    grpc.pause_recording(request.clone()).await.expect("pause");
    let paused_at = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    grpc.resume_recording(request).await.expect("resume");
    let resumed_at = t0.elapsed().as_secs_f64();

    let rest = events_until_ended(&mut events, Duration::from_secs(60)).await;
    tokio::task::spawn_blocking(move || sipp.assert_success(Duration::from_secs(30)))
        .await
        .expect("sipp task");
    assert_eq!(
        event_kinds(&rest),
        ["recording_paused", "recording_resumed", "ended"]
    );
    let Some(Event::Ended(ended)) = rest.last().and_then(|e| e.event.clone()) else {
        unreachable!()
    };

    let (left, right, rate) = audio::read_stereo(std::path::Path::new(&ended.recording_path));
    assert_eq!(rate, 8000);
    // The recording starts when the call is answered; allow 150 ms of slack
    // for the gRPC round trip and the media worker's tick.
    let (from, to) = (paused_at + 0.15, resumed_at - 0.15);
    assert_eq!(
        nonzero(&left, from, to),
        0,
        "caller audio recorded while paused ({from:.2}-{to:.2} s)"
    );
    assert_eq!(
        nonzero(&right, from, to),
        0,
        "engine audio recorded while paused"
    );
    assert!(
        nonzero(&left, 0.2, paused_at - 0.15) > 2000,
        "speech before the pause is kept"
    );
    assert!(
        nonzero(&left, resumed_at + 0.15, resumed_at + 1.5) > 2000,
        "speech after the pause is kept"
    );
    assert!(
        nonzero(&right, resumed_at + 0.15, resumed_at + 2.5) > 2000,
        "the prompt after the pause is kept"
    );
    let total_s = left.len() as f64 / 8000.0;
    assert!(
        total_s > resumed_at,
        "one file covers the whole call ({total_s:.1} s)"
    );

    // Unknown calls are a clear NotFound.
    let err = grpc
        .pause_recording(RecordingRequest {
            call_id: "nope".into(),
        })
        .await
        .expect_err("unknown call");
    assert_eq!(err.code(), tonic::Code::NotFound);
}
