//! Conferences as the control plane sees them: named rooms of calls, each
//! backed by one media-core mixer. A room is created by its first join and
//! ended when its last member leaves or hangs up, so nothing lingers.
//!
//! Which calls may join: answered calls the engine terminates alone (not
//! ringing, not bridged: a bridge already mixes its two parties; put each
//! party's own call in the room instead). Whisper names the member that
//! hears it by call id; the media layer knows it by leg id.

use super::{ControlError, Signalling};
use crate::proto::{call_event, ConferenceJoined, ConferenceLeft, ConferenceRole, MuteChanged};
use media_core::{ConferenceHandle, MediaError, Role};
use std::collections::{HashMap, HashSet};
use tracing::info;

/// Longest conference id accepted (ids are chosen by gRPC clients).
const MAX_CONFERENCE_ID: usize = 128;

/// Every room, and which room each member call is in.
#[derive(Default)]
pub(super) struct Conferences {
    rooms: HashMap<String, Room>,
    member_of: HashMap<String, String>,
}

struct Room {
    media: ConferenceHandle,
    members: HashSet<String>,
}

impl Conferences {
    pub(super) fn room_of(&self, call_id: &str) -> Option<&str> {
        self.member_of.get(call_id).map(String::as_str)
    }
}

/// What a join asks for, straight from the RPC.
pub struct JoinRequest {
    pub call_id: String,
    pub conference_id: String,
    pub role: ConferenceRole,
    pub whisper_to: String,
}

impl Signalling {
    pub(super) fn join_conference(&mut self, req: JoinRequest) -> Result<(), ControlError> {
        let JoinRequest {
            call_id,
            conference_id,
            role,
            whisper_to,
        } = req;
        if conference_id.is_empty() || conference_id.len() > MAX_CONFERENCE_ID {
            return Err(ControlError::InvalidArgument(format!(
                "conference_id must be 1 to {MAX_CONFERENCE_ID} bytes"
            )));
        }
        let call = self
            .calls
            .get(&call_id)
            .filter(|c| !c.is_ending())
            .ok_or_else(|| ControlError::NotFound(format!("no call with id {call_id}")))?;
        if call.is_ringing() || call.outbound.is_some() {
            return Err(ControlError::FailedPrecondition(format!(
                "call {call_id} is ringing or bridged; only an answered call the engine \
                 terminates alone can join a conference"
            )));
        }
        let leg = call.leg().clone();
        let media_role = match role {
            ConferenceRole::Unspecified | ConferenceRole::Participant => Role::Participant,
            ConferenceRole::Listen => Role::Listen,
            ConferenceRole::Barge => Role::Barge,
            ConferenceRole::Whisper => {
                let target = self
                    .conferences
                    .room_of(&whisper_to)
                    .filter(|room| *room == conference_id)
                    .and_then(|_| self.calls.get(&whisper_to))
                    .filter(|_| whisper_to != call_id)
                    .ok_or_else(|| {
                        ControlError::FailedPrecondition(format!(
                            "whisper_to {whisper_to:?} is not another member of {conference_id}"
                        ))
                    })?;
                Role::Whisper {
                    to: target.leg().id(),
                }
            }
        };
        if let Some(old) = self.conferences.room_of(&call_id) {
            if old != conference_id {
                self.leave_conference(&call_id)?;
            }
        }
        let media = match self.conferences.rooms.get(&conference_id) {
            Some(room) => room.media.clone(),
            None => {
                // Created at the lowest rate: the room mixes at its highest
                // member's rate, so G.711, G.722 and Opus calls share it.
                let media = self
                    .media
                    .create_conference(conference_id.clone(), 8_000)
                    .map_err(media_error)?;
                info!(conference = %conference_id, "conference created");
                self.conferences.rooms.insert(
                    conference_id.clone(),
                    Room {
                        media: media.clone(),
                        members: HashSet::new(),
                    },
                );
                media
            }
        };
        if let Err(e) = self.media.conference_join(&media, &leg, media_role) {
            self.end_if_empty(&conference_id);
            return Err(media_error(e));
        }
        let members = match self.conferences.rooms.get_mut(&conference_id) {
            Some(room) => {
                room.members.insert(call_id.clone());
                room.members.len()
            }
            None => 0,
        };
        self.conferences
            .member_of
            .insert(call_id.clone(), conference_id.clone());
        if let Some(call) = self.calls.get(&call_id) {
            call.span.in_scope(
                || info!(conference = %conference_id, ?role, members, "joined conference"),
            );
        }
        let whisper_to = if role == ConferenceRole::Whisper {
            whisper_to
        } else {
            String::new()
        };
        let event = ConferenceJoined {
            conference_id,
            role: role as i32,
            whisper_to,
            members: members as u32,
        };
        self.bus
            .publish(&call_id, call_event::Event::ConferenceJoined(event));
        Ok(())
    }

    /// Takes a live call out of its conference, back to its prompt.
    pub(super) fn leave_conference(&mut self, call_id: &str) -> Result<(), ControlError> {
        let call = self
            .calls
            .get(call_id)
            .filter(|c| !c.is_ending())
            .ok_or_else(|| ControlError::NotFound(format!("no call with id {call_id}")))?;
        if self.conferences.room_of(call_id).is_none() {
            return Err(ControlError::FailedPrecondition(format!(
                "call {call_id} is in no conference"
            )));
        }
        self.media
            .conference_leave(call.leg())
            .map_err(media_error)?;
        self.forget_member(call_id, true);
        Ok(())
    }

    /// A member is gone (left, or its call ended): the room forgets it and
    /// ends once empty. `tell` publishes ConferenceLeft on the call.
    pub(super) fn forget_member(&mut self, call_id: &str, tell: bool) {
        let Some(conference_id) = self.conferences.member_of.remove(call_id) else {
            return;
        };
        let members = match self.conferences.rooms.get_mut(&conference_id) {
            Some(room) => {
                room.members.remove(call_id);
                room.members.len()
            }
            None => 0,
        };
        if tell {
            let event = ConferenceLeft {
                conference_id: conference_id.clone(),
                members: members as u32,
            };
            self.bus
                .publish(call_id, call_event::Event::ConferenceLeft(event));
        }
        self.end_if_empty(&conference_id);
    }

    fn end_if_empty(&mut self, conference_id: &str) {
        let empty = self
            .conferences
            .rooms
            .get(conference_id)
            .is_some_and(|r| r.members.is_empty());
        if !empty {
            return;
        }
        if let Some(room) = self.conferences.rooms.remove(conference_id) {
            if let Err(e) = self.media.end_conference(&room.media) {
                tracing::warn!(conference = %conference_id, error = %e, "could not end conference");
            }
            info!(conference = %conference_id, "conference ended");
        }
    }

    pub(super) fn set_muted(&mut self, call_id: &str, muted: bool) -> Result<(), ControlError> {
        let call = self
            .calls
            .get(call_id)
            .filter(|c| !c.is_ending())
            .ok_or_else(|| ControlError::NotFound(format!("no call with id {call_id}")))?;
        call.leg().set_muted(muted);
        call.span.in_scope(|| info!(muted, "mute changed"));
        self.bus.publish(
            call_id,
            call_event::Event::MuteChanged(MuteChanged { muted }),
        );
        Ok(())
    }
}

fn media_error(e: MediaError) -> ControlError {
    match e {
        MediaError::Overloaded | MediaError::ShutDown => ControlError::Unavailable(e.to_string()),
        MediaError::LegStopped(_) => ControlError::NotFound(e.to_string()),
        other => ControlError::FailedPrecondition(other.to_string()),
    }
}
