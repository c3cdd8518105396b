//! Feeds arbitrary bytes to the stream framer, cut into reads at positions
//! taken from the input. Invariants: no panic; the frames do not depend on
//! how the stream was cut; every frame is a ping or a message no larger
//! than the bound; the framer never holds more than the bound plus one
//! read; every error can be asked for its stateless reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_stack::transport::{Frame, FrameError, StreamFramer};

const MAX: usize = 4096;

fn run(chunks: &[&[u8]]) -> (Vec<Frame>, Option<FrameError>) {
    let mut framer = StreamFramer::new(MAX);
    let mut frames = Vec::new();
    for chunk in chunks {
        framer.push(chunk);
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => {
                    if let Frame::Message(m) = &frame {
                        assert!(m.len() <= MAX);
                        let _ = sip_stack::message::parse(m);
                    }
                    frames.push(frame);
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = e.reply_400();
                    return (frames, Some(e));
                }
            }
        }
        assert!(framer.buffered() <= MAX + chunk.len());
    }
    (frames, None)
}

fuzz_target!(|data: &[u8]| {
    // First byte: the read size for the cut run.
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let whole = run(&[stream]);
    let cut: Vec<&[u8]> = stream.chunks(step).collect();
    let pieces = run(&cut);
    // Errors may be found at a different point (e.g. an oversized header
    // section is noticed only once enough bytes are in), but every frame
    // delivered before either error must agree.
    let n = whole.0.len().min(pieces.0.len());
    assert_eq!(whole.0[..n], pieces.0[..n]);
    if whole.1.is_none() && pieces.1.is_none() {
        assert_eq!(whole.0, pieces.0);
    }
});
