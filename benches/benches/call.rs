//! The per-call cost of a bridged G.711 call through the real media engine
//! (`MediaEngine`, its worker threads and UDP sockets on loopback):
//!
//! - `bridged_call/relay_one_packet`: one 20 ms PCMU packet from the
//!   caller's far end, through leg A, the bridge and leg B, to the agent's
//!   far end (send to receive, loopback);
//! - `bridged_call/relay_one_packet_each/200_calls`: a packet into each of
//!   200 bridged calls and all 200 out: divided by 200, the CPU a call's
//!   packet costs (worker, syscalls, loopback);
//! - `bridged_call/setup_and_teardown`: two legs created, bridged and
//!   stopped;
//! - memory: the heap one bridged call holds, counted by a global
//!   allocator over 100 calls (printed once; the README carries it).
//!
//!   cargo bench -p switchboard-benches --bench call

use criterion::{criterion_group, criterion_main, Criterion};
use media_core::rtp::RtpWriter;
use media_core::{Codec, LegHandle, LegSpec, MediaConfig, MediaEngine, Prompt};
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Live heap bytes of the whole process (engine workers included).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn engine() -> MediaEngine {
    MediaEngine::start(MediaConfig {
        workers: 1,
        rtp_port_min: 41_000,
        rtp_port_max: 43_000,
        ..MediaConfig::default()
    })
    .expect("media engine")
}

/// A bridged PCMU call: legs A and B sending to `a_far` and `b_far`.
fn bridged_call(
    engine: &MediaEngine,
    a_far: &UdpSocket,
    b_far: &UdpSocket,
) -> (LegHandle, LegHandle) {
    let leg = |label: &str, far: &UdpSocket, with: Option<&LegHandle>| {
        let mut spec = LegSpec::new(label, Codec::Pcmu);
        spec.remote = Some(far.local_addr().expect("far end"));
        spec.prompt = Prompt::Silence;
        spec.colocate_with = with.cloned();
        engine.create_leg(spec).expect("leg")
    };
    let a = leg("a", a_far, None);
    let b = leg("b", b_far, Some(&a));
    engine.bridge(&a, &b).expect("bridge");
    (a, b)
}

fn stop(legs: (LegHandle, LegHandle)) {
    for receipt in [legs.0.stop(), legs.1.stop()] {
        receipt.wait(Duration::from_secs(5));
    }
}

fn far_end() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("far end");
    s.set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    s
}

/// Reads until a packet of `len` bytes arrives (skipping anything else the
/// legs sent meanwhile, e.g. RTCP-free silence before the bridge).
fn recv_len(sock: &UdpSocket, len: usize, buf: &mut [u8]) {
    for _ in 0..100 {
        match sock.recv(buf) {
            Ok(n) if n == len => return,
            Ok(_) => continue,
            Err(e) => panic!("relayed packet never came: {e}"),
        }
    }
    panic!("relayed packet never came");
}

fn relay(c: &mut Criterion) {
    let engine = engine();
    let sink = far_end();
    let mut group = c.benchmark_group("bridged_call");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1));

    // Latency of one packet through one call. Paced at 1 ms (outside the
    // measurement): a leg reads at most 32 datagrams per 20 ms tick, so
    // back-to-back sends would measure that cap, not the relay.
    {
        let (a_far, b_far) = (far_end(), far_end());
        let call = bridged_call(&engine, &a_far, &b_far);
        let to = call.0.local_addr();
        let mut writer = RtpWriter::with_initial(0, 160, 0x5157_0001, 1, 0);
        let (mut pkt, mut buf) = ([0u8; 200], [0u8; 1500]);
        group.bench_function("relay_one_packet", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    std::thread::sleep(Duration::from_micros(700));
                    let n = writer.write(&[0xffu8; 160], &mut pkt).expect("rtp");
                    let start = Instant::now();
                    a_far.send_to(&pkt[..n], to).expect("send");
                    recv_len(&b_far, n, &mut buf);
                    total += start.elapsed();
                }
                total
            })
        });
        stop(call);
    }

    // Throughput: one packet into each of 200 calls, all 200 relayed out;
    // the time per iteration divided by 200 is the per-call cost of a
    // packet (worker, both syscalls, loopback), as in a 20 ms tick.
    {
        const CALLS: usize = 200;
        let (a_far, b_far) = (far_end(), far_end());
        let calls: Vec<_> = (0..CALLS)
            .map(|_| bridged_call(&engine, &a_far, &b_far))
            .collect();
        let targets: Vec<_> = calls.iter().map(|c| c.0.local_addr()).collect();
        let mut writers: Vec<_> = (0..CALLS as u32)
            .map(|i| RtpWriter::with_initial(0, 160, 0x5157_1000 + i, 1, 0))
            .collect();
        let (mut pkt, mut buf) = ([0u8; 200], [0u8; 1500]);
        group.bench_function("relay_one_packet_each/200_calls", |b| {
            b.iter(|| {
                for (writer, to) in writers.iter_mut().zip(&targets) {
                    let n = writer.write(&[0xffu8; 160], &mut pkt).expect("rtp");
                    a_far.send_to(&pkt[..n], to).expect("send");
                }
                for _ in 0..CALLS {
                    recv_len(&b_far, 172, &mut buf);
                }
            })
        });
        calls.into_iter().for_each(stop);
    }

    group.bench_function("setup_and_teardown", |b| {
        let (a_far, b_far) = (far_end(), far_end());
        b.iter(|| stop(bridged_call(&engine, &a_far, &b_far)))
    });
    group.finish();
    memory_per_call(&engine, &sink);
}

/// Heap held per bridged call: live bytes before and after 100 calls.
fn memory_per_call(engine: &MediaEngine, sink: &UdpSocket) {
    const CALLS: usize = 100;
    // Let the workers settle (first-use allocations) before counting.
    stop(bridged_call(engine, sink, sink));
    std::thread::sleep(Duration::from_millis(100));
    let before = LIVE.load(Relaxed);
    let calls: Vec<_> = (0..CALLS)
        .map(|_| bridged_call(engine, sink, sink))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let after = LIVE.load(Relaxed);
    let per_call = (after - before) as f64 / CALLS as f64;
    println!(
        "bridged_call/memory: {:.1} KiB of heap per bridged G.711 call (two legs, {CALLS} calls)",
        per_call / 1024.0
    );
    calls.into_iter().for_each(stop);
}

criterion_group!(call, relay);
criterion_main!(call);
