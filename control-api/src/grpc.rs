//! The gRPC control plane: `switchboard.v1.CallControl`, plus the standard
//! health and reflection services so `grpcurl` works out of the box.

use crate::events::EventBus;
use crate::proto::call_control_server::{CallControl, CallControlServer};
use crate::proto::{
    call_event, CallEvent, ConferenceRole, EventsLagged, HangupRequest, HangupResponse,
    JoinConferenceRequest, JoinConferenceResponse, LeaveConferenceRequest, LeaveConferenceResponse,
    ListCallsRequest, ListCallsResponse, RecordingRequest, RecordingResponse, SendDtmfRequest,
    SendDtmfResponse, SetMuteRequest, SetMuteResponse, SubscribeEventsRequest, TransferRequest,
    TransferResponse,
};
use crate::signalling::{CallNotFound, ControlError, JoinRequest, SignallingHandle, TransferTo};
use std::net::SocketAddr;
use std::pin::Pin;
use tokio::sync::watch;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

pub struct CallControlService {
    bus: EventBus,
    signalling: SignallingHandle,
    /// Turns true at shutdown: event streams end so the server can drain.
    stopping: watch::Receiver<bool>,
}

type EventStream = Pin<Box<dyn Stream<Item = Result<CallEvent, Status>> + Send>>;

#[tonic::async_trait]
impl CallControl for CallControlService {
    type SubscribeEventsStream = EventStream;

    async fn subscribe_events(
        &self,
        request: Request<SubscribeEventsRequest>,
    ) -> Result<Response<Self::SubscribeEventsStream>, Status> {
        let only = request.into_inner().call_id;
        let events = crate::events::until_stopped(self.bus.subscribe(), self.stopping.clone());
        let stream = events.filter_map(move |item| match item {
            Ok(event) if only.is_empty() || event.call_id == only => Some(Ok(event)),
            Ok(_) => None,
            Err(missed) => Some(Ok(CallEvent {
                event: Some(call_event::Event::Lagged(EventsLagged { missed })),
                ..Default::default()
            })),
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_calls(
        &self,
        _request: Request<ListCallsRequest>,
    ) -> Result<Response<ListCallsResponse>, Status> {
        let calls = self.signalling.list_calls().await;
        Ok(Response::new(ListCallsResponse { calls }))
    }

    async fn pause_recording(
        &self,
        request: Request<RecordingRequest>,
    ) -> Result<Response<RecordingResponse>, Status> {
        self.set_capture_paused(request, true).await
    }

    async fn resume_recording(
        &self,
        request: Request<RecordingRequest>,
    ) -> Result<Response<RecordingResponse>, Status> {
        self.set_capture_paused(request, false).await
    }

    async fn hangup(
        &self,
        request: Request<HangupRequest>,
    ) -> Result<Response<HangupResponse>, Status> {
        let call_id = request.into_inner().call_id;
        match self.signalling.hangup(&call_id).await {
            Ok(()) => Ok(Response::new(HangupResponse {})),
            Err(e @ CallNotFound::NotFound(_)) => Err(Status::not_found(e.to_string())),
        }
    }

    async fn join_conference(
        &self,
        request: Request<JoinConferenceRequest>,
    ) -> Result<Response<JoinConferenceResponse>, Status> {
        let r = request.into_inner();
        let role = ConferenceRole::try_from(r.role)
            .map_err(|_| Status::invalid_argument(format!("unknown role {}", r.role)))?;
        let join = JoinRequest {
            call_id: r.call_id,
            conference_id: r.conference_id,
            role,
            whisper_to: r.whisper_to,
        };
        self.signalling
            .join_conference(join)
            .await
            .map_err(status)?;
        Ok(Response::new(JoinConferenceResponse {}))
    }

    async fn leave_conference(
        &self,
        request: Request<LeaveConferenceRequest>,
    ) -> Result<Response<LeaveConferenceResponse>, Status> {
        let call_id = request.into_inner().call_id;
        self.signalling
            .leave_conference(&call_id)
            .await
            .map_err(status)?;
        Ok(Response::new(LeaveConferenceResponse {}))
    }

    async fn set_mute(
        &self,
        request: Request<SetMuteRequest>,
    ) -> Result<Response<SetMuteResponse>, Status> {
        let r = request.into_inner();
        self.signalling
            .set_muted(&r.call_id, r.muted)
            .await
            .map_err(status)?;
        Ok(Response::new(SetMuteResponse {}))
    }

    async fn send_dtmf(
        &self,
        request: Request<SendDtmfRequest>,
    ) -> Result<Response<SendDtmfResponse>, Status> {
        let r = request.into_inner();
        self.signalling
            .send_dtmf(&r.call_id, r.digits, r.duration_ms)
            .await
            .map_err(status)?;
        Ok(Response::new(SendDtmfResponse {}))
    }

    async fn transfer(
        &self,
        request: Request<TransferRequest>,
    ) -> Result<Response<TransferResponse>, Status> {
        let r = request.into_inner();
        let to = match (r.target.is_empty(), r.consultation_call_id.is_empty()) {
            (false, true) => TransferTo::Target(r.target),
            (true, false) => TransferTo::Consultation(r.consultation_call_id),
            _ => {
                return Err(Status::invalid_argument(
                    "set exactly one of target and consultation_call_id",
                ))
            }
        };
        self.signalling
            .transfer(&r.call_id, to)
            .await
            .map_err(status)?;
        Ok(Response::new(TransferResponse {}))
    }
}

/// The gRPC status for a refused command.
fn status(e: ControlError) -> Status {
    match e {
        ControlError::NotFound(m) => Status::not_found(m),
        ControlError::InvalidArgument(m) => Status::invalid_argument(m),
        ControlError::FailedPrecondition(m) => Status::failed_precondition(m),
        ControlError::Unavailable(m) => Status::unavailable(m),
    }
}

impl CallControlService {
    async fn set_capture_paused(
        &self,
        request: Request<RecordingRequest>,
        paused: bool,
    ) -> Result<Response<RecordingResponse>, Status> {
        let call_id = request.into_inner().call_id;
        match self.signalling.set_capture_paused(&call_id, paused).await {
            Ok(()) => Ok(Response::new(RecordingResponse {})),
            Err(e @ CallNotFound::NotFound(_)) => Err(Status::not_found(e.to_string())),
        }
    }
}

/// Checks `authorization: Bearer <token>` when a token is configured.
#[derive(Clone)]
struct BearerAuth {
    expected: Option<String>,
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.expected else {
            return Ok(request);
        };
        let given = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given.is_some_and(|g| constant_time_eq(g.as_bytes(), expected.as_bytes())) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("missing or wrong bearer token"))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Serves gRPC on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    bus: EventBus,
    signalling: SignallingHandle,
    auth_token: String,
    stopping: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<CallControlServer<CallControlService>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let auth = BearerAuth {
        expected: (!auth_token.is_empty()).then_some(auth_token),
    };
    let mut stopped = stopping.clone();
    let shutdown = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    let calls = CallControlService {
        bus,
        signalling,
        stopping,
    };
    let service = CallControlServer::with_interceptor(calls, auth);
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(grpc = %addr, "gRPC listening");
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(service)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown,
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    #[test]
    fn bearer_token_is_checked_when_configured() {
        let mut open = BearerAuth { expected: None };
        assert!(open.call(Request::new(())).is_ok());
        let mut auth = BearerAuth {
            expected: Some("s3cret".into()),
        };
        assert!(auth.call(Request::new(())).is_err());
        let mut req = Request::new(());
        req.metadata_mut()
            .insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(auth.call(req).is_ok());
        let mut wrong = Request::new(());
        wrong
            .metadata_mut()
            .insert("authorization", "Bearer s3cres".parse().unwrap());
        assert!(auth.call(wrong).is_err());
    }
}
