//! A contact-center conference driven over gRPC, with three real SIPp
//! callers: a customer saying espeak-ng speech, an agent and a supervisor
//! each playing a tone. The supervisor listens, then whispers to the agent,
//! then barges in while the agent is muted; each call's recording (right
//! channel: what that party heard) shows who heard whom in each phase.

use control_api::proto::call_event::Event;
use control_api::proto::{
    CallEvent, ConferenceRole, HangupRequest, JoinConferenceRequest, LeaveConferenceRequest,
    SetMuteRequest,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use switchboard_e2e::audio::{self, Speech};
use switchboard_e2e::engine::Engine;
use switchboard_e2e::sipp::Sipp;
use switchboard_e2e::{event_kinds, wait_event, Scratch};

const TEXT: &str = "Hello, I am calling about my order. It has not arrived yet, \
                    and I would like to know where it is.";
const AGENT_HZ: f64 = 1_050.0;
const SUPERVISOR_HZ: f64 = 1_650.0;
const PHASE: Duration = Duration::from_secs(3);
/// A tone clearly there: amplitude above ~2000 (the files play at ~9800).
const PRESENT: f64 = 1e6;
/// A tone clearly absent: amplitude below ~350 (speech alone stays far below).
const ABSENT: f64 = 3e4;

struct Party {
    call_id: String,
    answered: Instant,
    sipp: Sipp,
}

fn join(call_id: &str, role: ConferenceRole, whisper_to: &str) -> JoinConferenceRequest {
    JoinConferenceRequest {
        call_id: call_id.into(),
        conference_id: "room-1".into(),
        role: role as i32,
        whisper_to: whisper_to.into(),
    }
}

/// What a party heard between two instants, from its recording's right
/// channel (recordings start when the call is answered, a little before
/// the test hears of it), trimmed so the change of phase falls outside
/// even on a busy machine.
fn heard(right: &[i16], answered: Instant, from: Instant, to: Instant) -> &[i16] {
    let at = |t: Instant| (t.duration_since(answered).as_secs_f64() * 8000.0) as usize;
    let (a, b) = (at(from) + 4_000, at(to).saturating_sub(2_400));
    right.get(a..b.min(right.len())).unwrap_or(&[])
}

fn check(x: &[i16], agent: bool, supervisor: bool, speech: Option<bool>, what: &str) {
    assert!(x.len() > 8_000, "{what}: only {} samples", x.len());
    let (a, s) = (
        audio::tone_power(x, 8000, AGENT_HZ),
        audio::tone_power(x, 8000, SUPERVISOR_HZ),
    );
    let p = audio::mean_power(x);
    let got = format!("agent tone {a:.0}, supervisor tone {s:.0}, mean power {p:.0}");
    println!("{what}: {got}");
    for (power, want, name) in [(a, agent, "agent"), (s, supervisor, "supervisor")] {
        if want {
            assert!(power > PRESENT, "{what}: the {name} is not heard ({got})");
        } else {
            assert!(power < ABSENT, "{what}: the {name} is heard ({got})");
        }
    }
    if let Some(speech) = speech {
        // What is left once the tones are taken out is the customer.
        let rest = p - 2.0 * (a + s);
        if speech {
            assert!(rest > 2e5, "{what}: the customer is not heard ({got})");
        } else {
            assert!(rest < 2e4, "{what}: the customer is heard ({got})");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_whisper_barge_and_mute_in_a_conference() {
    let scratch = Scratch::new("conference");
    let engine = Engine::start(&scratch, &[]);
    let (mut grpc, mut events) = engine.subscribe().await;

    let mut parties = Vec::new();
    for (name, tone) in [
        ("customer", None),
        ("agent", Some(1_050)),
        ("supervisor", Some(1_650)),
    ] {
        let dir = Scratch::new(&format!("conference-{name}"));
        match tone {
            None => drop(Speech::generate(&dir, TEXT)),
            Some(hz) => audio::tone_ulaw(&dir.path("speech.ulaw"), hz, 30),
        }
        let sipp = Sipp::call("uac_pcmu_await_bye.xml", engine.sip, &dir.0, 0);
        let answered = wait_event(&mut events, Duration::from_secs(30), |e| {
            matches!(e.event, Some(Event::Answered(_)))
        })
        .await;
        parties.push(Party {
            call_id: answered.call_id,
            answered: Instant::now(),
            sipp,
        });
    }
    let [customer, agent, supervisor] = [0, 1, 2].map(|i| parties[i].call_id.clone());

    // Each phase starts once its RPCs are answered.
    // Phase 1: customer and agent talk; the supervisor listens in.
    grpc.join_conference(join(&customer, ConferenceRole::Participant, ""))
        .await
        .expect("customer joins");
    grpc.join_conference(join(&agent, ConferenceRole::Unspecified, ""))
        .await
        .expect("agent joins");
    grpc.join_conference(join(&supervisor, ConferenceRole::Listen, ""))
        .await
        .expect("supervisor listens");
    let p1 = Instant::now();
    tokio::time::sleep(PHASE).await;

    // Phase 2: the supervisor coaches the agent.
    let p2_asked = Instant::now();
    grpc.join_conference(join(&supervisor, ConferenceRole::Whisper, &agent))
        .await
        .expect("supervisor whispers");
    let p2 = Instant::now();
    tokio::time::sleep(PHASE).await;

    // Phase 3: the supervisor barges in and the agent is muted.
    let p3_asked = Instant::now();
    grpc.join_conference(join(&supervisor, ConferenceRole::Barge, ""))
        .await
        .expect("supervisor barges");
    grpc.set_mute(SetMuteRequest {
        call_id: agent.clone(),
        muted: true,
    })
    .await
    .expect("mute the agent");
    let p3 = Instant::now();
    tokio::time::sleep(PHASE).await;
    let p4 = Instant::now();

    // Refusals are clear.
    fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> tonic::Code {
        r.expect_err("refused").code()
    }
    assert_eq!(
        code(
            grpc.join_conference(join("no-such-call", ConferenceRole::Participant, ""))
                .await
        ),
        tonic::Code::NotFound
    );
    assert_eq!(
        code(
            grpc.join_conference(join(&supervisor, ConferenceRole::Whisper, "nobody"))
                .await
        ),
        tonic::Code::FailedPrecondition
    );
    let mut unnamed = join(&customer, ConferenceRole::Participant, "");
    unnamed.conference_id.clear();
    assert_eq!(
        code(grpc.join_conference(unnamed).await),
        tonic::Code::InvalidArgument
    );

    grpc.leave_conference(LeaveConferenceRequest {
        call_id: customer.clone(),
    })
    .await
    .expect("customer leaves");
    assert_eq!(
        code(
            grpc.leave_conference(LeaveConferenceRequest {
                call_id: customer.clone(),
            })
            .await
        ),
        tonic::Code::FailedPrecondition
    );

    for id in [&customer, &agent, &supervisor] {
        grpc.hangup(HangupRequest {
            call_id: id.to_string(),
        })
        .await
        .expect("hangup");
    }
    let mut by_call: HashMap<String, Vec<CallEvent>> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while by_call.values().filter(|e| ended(e)).count() < 3 {
        assert!(Instant::now() < deadline, "calls did not end: {by_call:?}");
        let e = wait_event(&mut events, Duration::from_secs(30), |_| true).await;
        by_call.entry(e.call_id.clone()).or_default().push(e);
    }
    let answered: Vec<Instant> = parties.iter().map(|p| p.answered).collect();
    for p in parties {
        tokio::task::spawn_blocking(move || p.sipp.assert_success(Duration::from_secs(30)))
            .await
            .expect("sipp task");
    }

    assert_eq!(
        event_kinds(&by_call[&customer]),
        ["conference_joined", "conference_left", "ended"]
    );
    assert_eq!(
        event_kinds(&by_call[&agent]),
        ["conference_joined", "mute_changed", "ended"]
    );
    assert_eq!(
        event_kinds(&by_call[&supervisor]),
        [
            "conference_joined",
            "conference_joined",
            "conference_joined",
            "ended"
        ]
    );
    let Some(Event::ConferenceJoined(j)) = &by_call[&supervisor][1].event else {
        unreachable!()
    };
    assert_eq!(
        (j.role, j.whisper_to.as_str(), j.members),
        (ConferenceRole::Whisper as i32, agent.as_str(), 3)
    );

    let right = |id: &str| {
        let Some(Event::Ended(ended)) = by_call[id].last().and_then(|e| e.event.clone()) else {
            unreachable!()
        };
        let (_, right, rate) = audio::read_stereo(std::path::Path::new(&ended.recording_path));
        assert_eq!(rate, 8000);
        right
    };
    let (c, a, s) = (right(&customer), right(&agent), right(&supervisor));
    let [tc, ta, ts] = [answered[0], answered[1], answered[2]];

    check(
        heard(&c, tc, p1, p2_asked),
        true,
        false,
        Some(false),
        "customer, phase 1",
    );
    check(
        heard(&a, ta, p1, p2_asked),
        false,
        false,
        Some(true),
        "agent, phase 1",
    );
    check(
        heard(&s, ts, p1, p2_asked),
        true,
        false,
        Some(true),
        "supervisor listening",
    );

    check(
        heard(&c, tc, p2, p3_asked),
        true,
        false,
        Some(false),
        "customer while the agent is coached",
    );
    check(
        heard(&a, ta, p2, p3_asked),
        false,
        true,
        Some(true),
        "agent coached",
    );
    check(
        heard(&s, ts, p2, p3_asked),
        true,
        false,
        Some(true),
        "supervisor whispering",
    );

    check(
        heard(&c, tc, p3, p4),
        false,
        true,
        Some(false),
        "customer, agent muted, supervisor in",
    );
    check(
        heard(&a, ta, p3, p4),
        false,
        true,
        Some(true),
        "agent muted still hears",
    );
    check(
        heard(&s, ts, p3, p4),
        false,
        false,
        Some(true),
        "supervisor barging",
    );
}

fn ended(events: &[CallEvent]) -> bool {
    events
        .iter()
        .any(|e| matches!(e.event, Some(Event::Ended(_))))
}
