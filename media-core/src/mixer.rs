//! The conference mixer: N inputs in, N minus-one mixes out, one frame at
//! a time. Sans-IO and allocation-free per frame: buffers are sized when a
//! member joins.
//!
//! Who hears whom is decided by each member's [`Role`] and mute flag:
//!
//! | role | is heard by | hears |
//! |---|---|---|
//! | [`Role::Participant`] | everyone else | everyone heard, but itself |
//! | [`Role::Listen`] | nobody (silent monitor) | everyone heard |
//! | [`Role::Whisper`] | its target only (coaching an agent) | everyone heard |
//! | [`Role::Barge`] | everyone else | everyone heard, but itself |
//!
//! Barge is a participant that joined as a supervisor: the roles differ in
//! meaning (events, policy), not in the mix. A muted member is heard by
//! nobody, whatever its role, and still hears what its role allows.
//!
//! The mix is computed by subtraction: the sum of everyone heard is taken
//! once in 32-bit, and each member's output is that sum minus its own
//! input (if it is in the sum) plus any whisper aimed at it, saturated to
//! 16 bits. That is O(members × samples) per frame, where mixing each
//! output from scratch would be O(members² × samples).
//!
//! The mixer works at one rate at a time, the conference's mix rate, but
//! that rate may change while members talk (a wideband member joins): every
//! buffer is sized for the largest frame ([`MAX_FRAME_SAMPLES`]) when a
//! member joins, and [`Mixer::set_frame_samples`] only changes how much of
//! it is used, so a rate change allocates nothing. Converting each
//! member's audio to and from the mix rate is the caller's job (see the
//! worker's conference edges).

use crate::frame::MAX_FRAME_SAMPLES;

/// How a member takes part; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Participant,
    Listen,
    /// Heard only by the member with this id (if it is in the conference).
    Whisper {
        to: u64,
    },
    Barge,
}

impl Role {
    /// Whether the member is in the mix everyone hears (unless muted).
    fn is_public(self) -> bool {
        matches!(self, Role::Participant | Role::Barge)
    }
}

struct Member {
    id: u64,
    role: Role,
    muted: bool,
    input: Box<[i16]>,
    output: Box<[i16]>,
}

/// A conference's mixing state. Members are kept in join order and
/// addressed by index (see [`Mixer::position`]) on the per-frame path.
pub struct Mixer {
    samples: usize,
    members: Vec<Member>,
    /// The sum of every heard member's input.
    sum: Box<[i32]>,
}

impl Mixer {
    /// A mixer of `samples`-sample frames (one 20 ms frame at the
    /// conference's rate; at most [`MAX_FRAME_SAMPLES`]).
    pub fn new(samples: usize) -> Mixer {
        Mixer {
            samples: samples.min(MAX_FRAME_SAMPLES),
            members: Vec::new(),
            sum: vec![0; MAX_FRAME_SAMPLES].into_boxed_slice(),
        }
    }

    /// Samples per frame.
    pub fn frame_samples(&self) -> usize {
        self.samples
    }

    /// Changes the frame size (the mix rate changed). Allocation-free: the
    /// buffers already hold the largest frame. Inputs keep stale samples
    /// until written; each tick writes every input before mixing.
    pub fn set_frame_samples(&mut self, samples: usize) {
        self.samples = samples.min(MAX_FRAME_SAMPLES);
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Adds a member with silent input, or changes its role if present.
    /// Returns its index.
    pub fn join(&mut self, id: u64, role: Role) -> usize {
        if let Some(k) = self.position(id) {
            self.members[k].role = role;
            return k;
        }
        self.members.push(Member {
            id,
            role,
            muted: false,
            input: vec![0; MAX_FRAME_SAMPLES].into_boxed_slice(),
            output: vec![0; MAX_FRAME_SAMPLES].into_boxed_slice(),
        });
        self.members.len() - 1
    }

    /// Removes a member; later members move down one index.
    pub fn leave(&mut self, id: u64) -> bool {
        match self.position(id) {
            Some(k) => {
                self.members.remove(k);
                true
            }
            None => false,
        }
    }

    /// Index of the member with this id.
    pub fn position(&self, id: u64) -> Option<usize> {
        self.members.iter().position(|m| m.id == id)
    }

    pub fn id(&self, k: usize) -> Option<u64> {
        self.members.get(k).map(|m| m.id)
    }

    pub fn role(&self, k: usize) -> Option<Role> {
        self.members.get(k).map(|m| m.role)
    }

    pub fn set_muted(&mut self, k: usize, muted: bool) {
        if let Some(m) = self.members.get_mut(k) {
            m.muted = muted;
        }
    }

    /// Where member `k`'s next input frame goes (silence until written).
    pub fn input_mut(&mut self, k: usize) -> &mut [i16] {
        let n = self.samples;
        self.members
            .get_mut(k)
            .map_or(&mut [], |m| &mut m.input[..n])
    }

    pub fn input(&self, k: usize) -> &[i16] {
        self.members
            .get(k)
            .map_or(&[], |m| &m.input[..self.samples])
    }

    /// What member `k` hears, from the last [`Mixer::mix`].
    pub fn output(&self, k: usize) -> &[i16] {
        self.members
            .get(k)
            .map_or(&[], |m| &m.output[..self.samples])
    }

    /// Computes every member's output from the current inputs.
    pub fn mix(&mut self) {
        let n = self.samples;
        let sum = &mut self.sum[..n];
        sum.fill(0);
        for m in self.members.iter().filter(|m| heard(m)) {
            for (s, &x) in sum.iter_mut().zip(m.input[..n].iter()) {
                *s += i32::from(x);
            }
        }
        for m in self.members.iter_mut() {
            let own = heard(m);
            let (output, input) = (&mut m.output[..n], &m.input[..n]);
            if own {
                for ((o, &s), &x) in output.iter_mut().zip(sum.iter()).zip(input.iter()) {
                    *o = saturate(s - i32::from(x));
                }
            } else {
                for (o, &s) in output.iter_mut().zip(sum.iter()) {
                    *o = saturate(s);
                }
            }
        }
        self.add_whispers();
    }

    /// Adds each unmuted whisperer's input to its target's output.
    fn add_whispers(&mut self) {
        for w in 0..self.members.len() {
            let Role::Whisper { to } = self.members[w].role else {
                continue;
            };
            if self.members[w].muted {
                continue;
            }
            let Some(t) = self.position(to).filter(|&t| t != w) else {
                continue;
            };
            let n = self.samples;
            let (whisperer, target) = pair(&mut self.members, w, t);
            for (o, &x) in target.output[..n]
                .iter_mut()
                .zip(whisperer.input[..n].iter())
            {
                *o = o.saturating_add(x);
            }
        }
    }
}

/// Whether a member is in the sum everyone hears.
fn heard(m: &Member) -> bool {
    m.role.is_public() && !m.muted
}

fn saturate(x: i32) -> i16 {
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// Two distinct members, the first shared and the second mutable.
fn pair(members: &mut [Member], a: usize, b: usize) -> (&Member, &mut Member) {
    if a < b {
        let (lo, hi) = members.split_at_mut(b);
        (&lo[a], &mut hi[0])
    } else {
        let (lo, hi) = members.split_at_mut(a);
        (&hi[0], &mut lo[b])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mixer of 4-sample frames whose member `k` says `values[k]`.
    fn mixer(roles: &[Role], values: &[i16]) -> Mixer {
        let mut m = Mixer::new(4);
        for (k, &role) in roles.iter().enumerate() {
            let idx = m.join(k as u64 + 1, role);
            m.input_mut(idx).fill(values[k]);
        }
        m
    }

    fn heard_by(m: &Mixer, k: usize) -> i16 {
        let out = m.output(k);
        assert!(out.iter().all(|&s| s == out[0]));
        out[0]
    }

    #[test]
    fn participants_hear_everyone_but_themselves() {
        let p = Role::Participant;
        let mut m = mixer(&[p, p, p], &[1, 10, 100]);
        m.mix();
        assert_eq!(heard_by(&m, 0), 110);
        assert_eq!(heard_by(&m, 1), 101);
        assert_eq!(heard_by(&m, 2), 11);
    }

    #[test]
    fn a_lone_participant_hears_silence() {
        let mut m = mixer(&[Role::Participant], &[500]);
        m.mix();
        assert_eq!(heard_by(&m, 0), 0);
    }

    #[test]
    fn listeners_hear_all_and_are_heard_by_none() {
        let p = Role::Participant;
        let mut m = mixer(&[p, p, Role::Listen], &[1, 10, 100]);
        m.mix();
        assert_eq!(heard_by(&m, 0), 10);
        assert_eq!(heard_by(&m, 1), 1);
        assert_eq!(heard_by(&m, 2), 11);
    }

    #[test]
    fn a_whisper_reaches_only_its_target() {
        let p = Role::Participant;
        // Member ids are index + 1: whisper to the agent, member 1 (id 2).
        let roles = [p, p, Role::Whisper { to: 2 }];
        let mut m = mixer(&roles, &[1, 10, 100]);
        m.mix();
        assert_eq!(heard_by(&m, 0), 10, "the customer does not hear the coach");
        assert_eq!(heard_by(&m, 1), 101, "the agent hears customer and coach");
        assert_eq!(heard_by(&m, 2), 11, "the coach hears both");
    }

    #[test]
    fn a_whisper_to_nobody_is_a_listen() {
        let p = Role::Participant;
        let mut m = mixer(&[p, p, Role::Whisper { to: 99 }], &[1, 10, 100]);
        m.mix();
        assert_eq!((heard_by(&m, 0), heard_by(&m, 1)), (10, 1));
    }

    #[test]
    fn barge_is_heard_by_everyone() {
        let p = Role::Participant;
        let mut m = mixer(&[p, p, Role::Barge], &[1, 10, 100]);
        m.mix();
        assert_eq!(heard_by(&m, 0), 110);
        assert_eq!(heard_by(&m, 1), 101);
        assert_eq!(heard_by(&m, 2), 11);
    }

    #[test]
    fn muted_members_are_heard_by_none_and_still_hear() {
        let p = Role::Participant;
        let mut m = mixer(&[p, p, p, Role::Whisper { to: 1 }], &[1, 10, 100, 1000]);
        m.set_muted(1, true);
        m.set_muted(3, true);
        m.mix();
        assert_eq!(heard_by(&m, 0), 100);
        assert_eq!(heard_by(&m, 1), 101);
        assert_eq!(heard_by(&m, 2), 1);
        m.set_muted(1, false);
        m.mix();
        assert_eq!(heard_by(&m, 2), 11);
    }

    #[test]
    fn role_changes_and_leaving_reindex() {
        let p = Role::Participant;
        let mut m = mixer(&[p, Role::Listen, p], &[1, 10, 100]);
        assert_eq!(m.join(2, Role::Barge), 1, "rejoining changes the role");
        m.mix();
        assert_eq!(heard_by(&m, 0), 110);
        assert!(m.leave(1));
        assert!(!m.leave(1));
        assert_eq!(m.position(3), Some(1));
        m.mix();
        assert_eq!(heard_by(&m, 0), 100);
        assert_eq!(heard_by(&m, 1), 10);
    }

    #[test]
    fn the_frame_size_changes_without_losing_members() {
        let p = Role::Participant;
        let mut m = mixer(&[p, p], &[1, 10]);
        m.set_frame_samples(12);
        assert_eq!((m.frame_samples(), m.input(0).len()), (12, 12));
        m.input_mut(0).fill(3);
        m.input_mut(1).fill(30);
        m.mix();
        assert_eq!((heard_by(&m, 0), heard_by(&m, 1)), (30, 3));
        assert_eq!(m.output(0).len(), 12);
        m.set_frame_samples(usize::MAX);
        assert_eq!(
            m.frame_samples(),
            MAX_FRAME_SAMPLES,
            "capped at the largest frame"
        );
    }

    #[test]
    fn loud_mixes_saturate_instead_of_wrapping() {
        let p = Role::Participant;
        let mut m = mixer(&[p, p, p], &[i16::MAX, i16::MAX, i16::MIN]);
        m.mix();
        assert_eq!(heard_by(&m, 2), i16::MAX);
        assert_eq!(heard_by(&m, 0), -1);
        let whisper = Role::Whisper { to: 1 };
        let mut m = mixer(&[p, p, p, whisper], &[0, -30_000, -30_000, -30_000]);
        m.mix();
        assert_eq!(heard_by(&m, 0), i16::MIN);
    }
}
