//! RFC 3261 §18.1.1: a request larger than 1300 bytes must not go over UDP
//! when the path MTU is unknown (it would fragment, and a lost fragment
//! loses the request); it goes over a congestion-controlled transport —
//! TCP — and its top Via must say so.
//!
//! Applied to the requests the engine originates. Responses are exempt
//! (they follow the request's transport, §18.2.2), and so is an ACK for a
//! 2xx, which must reach the same place as the INVITE's other requests.

use super::{Peer, TransportKind};
use crate::message::{split_comma, Request, Via};

/// Above this a UDP request switches to TCP (path MTU unknown, §18.1.1).
pub const MAX_UDP_REQUEST: usize = 1300;

/// Moves `request` from UDP to TCP when it is too large for UDP, rewriting
/// the top Via's transport token (and its sent-by port to `tcp_port`, the
/// port our TCP listener answers on). Returns the peer to send to. Does
/// nothing for stream transports, small requests, or a Via it cannot read.
pub fn promote_large_request(request: &mut Request, dest: Peer, tcp_port: Option<u16>) -> Peer {
    if dest.transport != TransportKind::Udp || request.to_bytes().len() <= MAX_UDP_REQUEST {
        return dest;
    }
    let Some(line) = request.headers.get("Via").map(str::to_owned) else {
        return dest;
    };
    let mut values = split_comma(&line);
    let Some(mut via) = values.next().and_then(Via::parse) else {
        return dest;
    };
    via.transport = TransportKind::Tcp.via_token().to_owned();
    if let Some(port) = tcp_port {
        via.port = Some(port);
    }
    let rest: Vec<&str> = values.collect();
    let mut rewritten = via.to_string();
    for v in rest {
        rewritten.push_str(", ");
        rewritten.push_str(v);
    }
    request.headers.replace_first("Via", rewritten);
    tracing::debug!(method = %request.method, %dest, "request over 1300 bytes: TCP instead of UDP");
    Peer::new(TransportKind::Tcp, dest.addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Method;

    fn invite(body_len: usize) -> Request {
        let mut req = Request::new(Method::Invite, "sip:agent@10.0.0.2:5060");
        req.headers
            .push("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKbig;rport");
        req.headers.push("Call-ID", "big@10.0.0.1");
        req.headers.push("CSeq", "1 INVITE");
        req.body = vec![b'a'; body_len].into();
        req
    }

    #[test]
    fn large_udp_request_moves_to_tcp_with_its_via() {
        let dest = Peer::udp("10.0.0.2:5060".parse().unwrap());
        let mut small = invite(100);
        assert_eq!(promote_large_request(&mut small, dest, Some(5062)), dest);
        assert!(small.headers.get("Via").unwrap().starts_with("SIP/2.0/UDP"));

        let mut big = invite(1300);
        let moved = promote_large_request(&mut big, dest, Some(5062));
        assert_eq!(moved.transport, TransportKind::Tcp);
        assert_eq!(moved.addr, dest.addr);
        let via = big.top_via().unwrap();
        assert_eq!(via.transport, "TCP");
        assert_eq!(via.sent_by(), "10.0.0.1:5062");
        assert_eq!(via.branch.as_deref(), Some("z9hG4bKbig"));
        assert_eq!(via.rport, Some(None));
    }

    #[test]
    fn stream_transports_are_left_alone() {
        let dest = Peer::new(TransportKind::Tls, "10.0.0.2:5061".parse().unwrap());
        let mut big = invite(5000);
        assert_eq!(promote_large_request(&mut big, dest, Some(5062)), dest);
        assert!(big.headers.get("Via").unwrap().starts_with("SIP/2.0/UDP"));
    }
}
