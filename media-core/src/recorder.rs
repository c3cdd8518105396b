//! Stereo WAV recording on a writer thread, off the media path.
//!
//! Media workers never touch files: each tick a leg copies its inbound
//! (left) and outbound (right) frame into a fixed-size message and
//! `try_send`s it on a bounded channel to the engine's one writer thread.
//! When the channel is full the frame is dropped and counted, and the next
//! message that gets through carries the number of missing samples so the
//! writer pads with silence: the file's timeline always matches the call's.
//! The writer flushes each file's header at least every second (hound
//! `flush`), so a recording is playable up to the last second after a crash;
//! it finalizes the file when the leg closes it.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::MediaError;

/// Stereo sample frames carried per message: 20 ms at 16 kHz. Wider legs
/// send several messages per tick, so a message stays small (1.3 KB)
/// whatever the rate.
pub(crate) const CHUNK_FRAMES: usize = 320;

/// How often the writer updates each file's header at most 1 s apart.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

type Wav = hound::WavWriter<BufWriter<File>>;

/// What the writer reports when it has finalized a file.
#[derive(Debug)]
pub(crate) struct Finished {
    /// Stereo sample frames in the file (including padded gaps).
    pub samples: u64,
    pub error: Option<String>,
}

pub(crate) type OnFinished = Box<dyn FnOnce(Finished) + Send>;

// The chunk variant is large on purpose: it travels by value so the media
// path does not allocate, and channel slots are preallocated anyway.
#[allow(clippy::large_enum_variant)]
pub(crate) enum RecMsg {
    Open {
        id: u64,
        path: PathBuf,
        wav: Box<Wav>,
    },
    Chunk(RecChunk),
    Close {
        id: u64,
        on_finished: OnFinished,
    },
}

/// One message of interleaved L/R samples, sent by value.
pub(crate) struct RecChunk {
    id: u64,
    /// Silent stereo frames to write first (dropped chunks before this one).
    gap: u32,
    len: u16,
    samples: [i16; CHUNK_FRAMES * 2],
}

/// The engine's writer thread.
pub(crate) struct Recorder {
    tx: Sender<RecMsg>,
    thread: Option<JoinHandle<()>>,
}

impl Recorder {
    pub(crate) fn start(capacity: usize, flush_interval: Duration) -> Result<Recorder, MediaError> {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let name = "media-recorder".to_string();
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || writer_loop(rx, flush_interval))
            .map_err(|source| MediaError::Thread { name, source })?;
        Ok(Recorder {
            tx,
            thread: Some(thread),
        })
    }

    /// Creates the file now (so the caller learns about a bad path at once)
    /// and hands it to the writer thread.
    pub(crate) fn open(&self, id: u64, path: &Path, rate: u32) -> Result<LegRecording, MediaError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| MediaError::RecordingDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let wav = hound::WavWriter::create(path, spec).map_err(|source| MediaError::Recording {
            path: path.to_owned(),
            source,
        })?;
        let msg = RecMsg::Open {
            id,
            path: path.to_owned(),
            wav: Box::new(wav),
        };
        self.tx
            .send_timeout(msg, Duration::from_secs(2))
            .map_err(|_| MediaError::Overloaded)?;
        Ok(LegRecording {
            id,
            path: path.to_owned(),
            tx: self.tx.clone(),
            gap: 0,
        })
    }

    /// Waits for every leg's sender to go, then for the writer to finalize.
    pub(crate) fn shutdown(self) {
        let Recorder { tx, thread } = self;
        drop(tx);
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// A leg's end of its recording; lives on the media worker.
pub(crate) struct LegRecording {
    id: u64,
    path: PathBuf,
    tx: Sender<RecMsg>,
    gap: u32,
}

impl LegRecording {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Queues one tick of audio; false if (part of) it had to be dropped.
    pub(crate) fn write_frame(&mut self, left: &[i16], right: &[i16]) -> bool {
        let mut ok = true;
        for (l, r) in left.chunks(CHUNK_FRAMES).zip(right.chunks(CHUNK_FRAMES)) {
            let mut chunk = RecChunk {
                id: self.id,
                gap: self.gap,
                len: l.len() as u16,
                samples: [0; CHUNK_FRAMES * 2],
            };
            for (dst, (&a, &b)) in chunk.samples.chunks_exact_mut(2).zip(l.iter().zip(r)) {
                dst[0] = a;
                dst[1] = b;
            }
            match self.tx.try_send(RecMsg::Chunk(chunk)) {
                Ok(()) => self.gap = 0,
                Err(_) => {
                    self.gap = self.gap.saturating_add(l.len() as u32);
                    ok = false;
                }
            }
        }
        ok
    }

    /// Asks the writer to finalize. Never blocks: on a full queue the
    /// request comes back and the worker retries next tick.
    pub(crate) fn close(self, on_finished: OnFinished) -> Result<(), (LegRecording, OnFinished)> {
        let msg = RecMsg::Close {
            id: self.id,
            on_finished,
        };
        match self.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(RecMsg::Close { on_finished, .. })) => Err((self, on_finished)),
            Err(e) => {
                // Writer gone (engine shutting down): report what we know.
                if let RecMsg::Close { on_finished, .. } = e.into_inner() {
                    on_finished(Finished {
                        samples: 0,
                        error: Some("recorder thread stopped".into()),
                    });
                }
                Ok(())
            }
        }
    }
}

struct OpenFile {
    path: PathBuf,
    wav: Box<Wav>,
    samples: u64,
    last_flush: Instant,
    error: Option<String>,
}

impl OpenFile {
    fn write(&mut self, chunk: &RecChunk) {
        if self.error.is_some() {
            return;
        }
        let len = (chunk.len as usize).min(CHUNK_FRAMES);
        let silence = std::iter::repeat_n(0i16, chunk.gap as usize * 2);
        let audio = chunk.samples[..len * 2].iter().copied();
        for s in silence.chain(audio) {
            if let Err(e) = self.wav.write_sample(s) {
                tracing::warn!(path = %self.path.display(), error = %e, "recording write failed; dropping the rest");
                self.error = Some(e.to_string());
                return;
            }
        }
        self.samples += chunk.gap as u64 + len as u64;
    }

    fn flush(&mut self, now: Instant) {
        self.last_flush = now;
        if self.error.is_none() {
            if let Err(e) = self.wav.flush() {
                tracing::warn!(path = %self.path.display(), error = %e, "recording flush failed");
                self.error = Some(e.to_string());
            }
        }
    }

    fn finalize(self) -> Finished {
        let OpenFile {
            path,
            wav,
            samples,
            error,
            ..
        } = self;
        let error = error.or_else(|| wav.finalize().err().map(|e| e.to_string()));
        match &error {
            None => tracing::debug!(path = %path.display(), samples, "recording finalized"),
            Some(e) => tracing::warn!(path = %path.display(), error = %e, "recording incomplete"),
        }
        Finished { samples, error }
    }
}

fn writer_loop(rx: Receiver<RecMsg>, flush_interval: Duration) {
    let mut files: HashMap<u64, OpenFile> = HashMap::new();
    let mut last_scan = Instant::now();
    let scan_every = flush_interval / 4;
    loop {
        match rx.recv_timeout(scan_every) {
            Ok(RecMsg::Open { id, path, wav }) => {
                let file = OpenFile {
                    path,
                    wav,
                    samples: 0,
                    last_flush: Instant::now(),
                    error: None,
                };
                files.insert(id, file);
            }
            Ok(RecMsg::Chunk(chunk)) => {
                if let Some(f) = files.get_mut(&chunk.id) {
                    f.write(&chunk);
                }
            }
            Ok(RecMsg::Close { id, on_finished }) => {
                let finished = match files.remove(&id) {
                    Some(f) => f.finalize(),
                    None => Finished {
                        samples: 0,
                        error: Some("recording was never opened".into()),
                    },
                };
                on_finished(finished);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let now = Instant::now();
        if now.duration_since(last_scan) >= scan_every {
            last_scan = now;
            for f in files.values_mut() {
                // Flush a little early so the gap between flushes stays
                // under the interval even with scan granularity.
                if now.duration_since(f.last_flush) + scan_every >= flush_interval {
                    f.flush(now);
                }
            }
        }
    }
    for (_, f) in files.drain() {
        f.finalize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir()
            .join(format!("mc-rec-{}-{name}", std::process::id()))
            .join("sub")
            .join("call.wav")
    }

    #[test]
    fn writes_stereo_wav_readable_before_and_after_finalize() {
        let path = temp_path("basic");
        let rec = Recorder::start(64, Duration::from_millis(40)).unwrap();
        let mut leg = rec.open(1, &path, 8_000).unwrap();
        let left = [1_000i16; 160];
        let right = [-2_000i16; 160];
        for _ in 0..10 {
            assert!(leg.write_frame(&left, &right));
        }
        // Readable while still open, once the writer has flushed the header.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let len = hound::WavReader::open(&path)
                .map(|r| r.duration())
                .unwrap_or(0);
            if len == 1_600 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "header never flushed (len {len})"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        assert!(leg
            .close(Box::new(move |f| done_tx.send(f).unwrap()))
            .is_ok());
        let finished = done_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(finished.samples, 1_600);
        assert!(finished.error.is_none());
        let mut r = hound::WavReader::open(&path).unwrap();
        let spec = r.spec();
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (2, 8_000, 16)
        );
        let s: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
        assert_eq!(s.len(), 3_200);
        assert!(s.chunks(2).all(|p| p == [1_000, -2_000]));
        rec.shutdown();
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }

    #[test]
    fn wide_frames_are_chunked_and_gaps_padded() {
        let path = temp_path("gap");
        let rec = Recorder::start(64, FLUSH_INTERVAL).unwrap();
        let mut leg = rec.open(7, &path, 48_000).unwrap();
        let frame = [5i16; 960];
        assert!(leg.write_frame(&frame, &frame));
        // Simulate a full queue: the next chunk that gets through pads.
        leg.gap = 960;
        assert!(leg.write_frame(&frame, &frame));
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let _ = leg.close(Box::new(move |f| done_tx.send(f).unwrap()));
        let finished = done_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(finished.samples, 960 * 3);
        let mut r = hound::WavReader::open(&path).unwrap();
        let s: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
        assert_eq!(s.len(), 960 * 3 * 2);
        assert!(s[1_920..3_840].iter().all(|&x| x == 0));
        assert!(s[3_840..].iter().all(|&x| x == 5));
        rec.shutdown();
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }

    #[test]
    fn bad_path_fails_at_open() {
        let rec = Recorder::start(4, FLUSH_INTERVAL).unwrap();
        let dir = std::env::temp_dir().join(format!("mc-rec-{}-file", std::process::id()));
        std::fs::write(&dir, b"not a dir").unwrap();
        assert!(rec.open(1, &dir.join("x.wav"), 8_000).is_err());
        let _ = std::fs::remove_file(&dir);
        rec.shutdown();
    }
}
