//! Where this engine says it is (Via sent-by, Contact) on each transport,
//! and where in-dialog requests to a peer go.

use sip_stack::transport::{Peer, SipTransports, TransportKind};
use std::net::SocketAddr;

/// Our host and ports as written into Via and Contact.
pub struct LocalIdentity {
    host: String,
    udp: u16,
    tcp: Option<u16>,
    tls: Option<u16>,
}

impl LocalIdentity {
    /// `advertised` is `sip.advertised_address`: a host (or host:port, the
    /// port then standing for UDP and TCP, which share a number); empty,
    /// the listeners' own address and ports. TLS always advertises its own
    /// listener's port.
    pub fn new(advertised: &str, transports: &SipTransports) -> LocalIdentity {
        let udp_local = transports
            .local_addr(TransportKind::Udp)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5060)));
        let port_of = |k| transports.local_addr(k).map(|a: SocketAddr| a.port());
        let (host, port) = split_advertised(advertised);
        let host = host.unwrap_or_else(|| bracket(&udp_local.ip().to_string()));
        LocalIdentity {
            host,
            udp: port.unwrap_or(udp_local.port()),
            tcp: port_of(TransportKind::Tcp).map(|p| port.unwrap_or(p)),
            tls: port_of(TransportKind::Tls),
        }
    }

    /// The host part (IPv6 in brackets), e.g. for Call-IDs.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port we answer on for `kind` (the UDP one for a disabled transport).
    pub fn port(&self, kind: TransportKind) -> u16 {
        match kind {
            TransportKind::Udp => self.udp,
            TransportKind::Tcp => self.tcp.unwrap_or(self.udp),
            TransportKind::Tls => self.tls.unwrap_or(self.udp),
        }
    }

    pub fn tcp_port(&self) -> Option<u16> {
        self.tcp
    }

    /// `host:port` for a Via over `kind`.
    pub fn sent_by(&self, kind: TransportKind) -> String {
        format!("{}:{}", self.host, self.port(kind))
    }

    /// A top Via for a new request we send over `kind`: a fresh branch,
    /// and `rport` so the answer comes back to where we sent from.
    pub fn via(&self, kind: TransportKind) -> String {
        format!(
            "SIP/2.0/{} {};branch={};rport",
            kind.via_token(),
            self.sent_by(kind),
            sip_stack::message::generate_branch()
        )
    }

    /// Our Contact URI (no angle brackets) for a dialog over `kind`: `;transport=tcp`/`tls` so the
    /// peer's requests come back the same way; a `sips:` URI when the peer
    /// addressed us with one (RFC 3261 §8.1.1.8, RFC 5630).
    pub fn contact(&self, kind: TransportKind, sips: bool) -> String {
        let sent_by = self.sent_by(kind);
        match kind {
            TransportKind::Tls if sips => format!("sips:switchboard@{sent_by}"),
            TransportKind::Udp => format!("sip:switchboard@{sent_by}"),
            _ => format!("sip:switchboard@{sent_by};transport={kind}"),
        }
    }
}

/// Whether a Request-URI uses the `sips:` scheme.
pub fn is_sips(uri: &str) -> bool {
    uri.get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
}

/// Where a request within a dialog goes: the peer's Contact (`remote_target`)
/// with its transport. A peer that reached us over TCP/TLS is sent to over
/// that connection while it is open, at its Contact address once it has
/// closed (flow reuse as in RFC 5626/5923: a caller behind NAT or a
/// firewall can only be reached over the connection it opened).
pub fn dialog_target(remote_target: &str, arrived: Peer) -> Peer {
    let contact = sip_stack::dialog::request_target(remote_target);
    if arrived.transport.is_reliable() {
        let addr = contact.map_or(arrived.addr, |c| c.addr);
        return Peer { addr, ..arrived };
    }
    contact.unwrap_or(arrived)
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// `host`, `host:port`, `[v6]:port` or a bare IPv6 literal.
fn split_advertised(advertised: &str) -> (Option<String>, Option<u16>) {
    let a = advertised.trim();
    if a.is_empty() {
        return (None, None);
    }
    if let Ok(sa) = a.parse::<SocketAddr>() {
        return (Some(bracket(&sa.ip().to_string())), Some(sa.port()));
    }
    if a.parse::<std::net::Ipv6Addr>().is_ok() {
        return (Some(bracket(a)), None);
    }
    match a.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (Some(h.to_owned()), Some(port)),
            Err(_) => (Some(a.to_owned()), None),
        },
        _ => (Some(a.to_owned()), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip_stack::transport::ConnectionId;

    #[test]
    fn advertised_forms() {
        assert_eq!(split_advertised(""), (None, None));
        assert_eq!(
            split_advertised("sbc.example.com:5070"),
            (Some("sbc.example.com".into()), Some(5070))
        );
        assert_eq!(
            split_advertised("10.0.0.1"),
            (Some("10.0.0.1".into()), None)
        );
        assert_eq!(
            split_advertised("2001:db8::1"),
            (Some("[2001:db8::1]".into()), None)
        );
        assert_eq!(
            split_advertised("[2001:db8::1]:5062"),
            (Some("[2001:db8::1]".into()), Some(5062))
        );
    }

    #[test]
    fn contacts_name_the_transport() {
        let me = LocalIdentity {
            host: "192.0.2.1".into(),
            udp: 5060,
            tcp: Some(5060),
            tls: Some(5061),
        };
        assert_eq!(
            me.contact(TransportKind::Udp, false),
            "sip:switchboard@192.0.2.1:5060"
        );
        assert_eq!(
            me.contact(TransportKind::Tcp, false),
            "sip:switchboard@192.0.2.1:5060;transport=tcp"
        );
        assert_eq!(
            me.contact(TransportKind::Tls, false),
            "sip:switchboard@192.0.2.1:5061;transport=tls"
        );
        assert_eq!(
            me.contact(TransportKind::Tls, true),
            "sips:switchboard@192.0.2.1:5061"
        );
        assert_eq!(me.sent_by(TransportKind::Tls), "192.0.2.1:5061");
    }

    #[test]
    fn dialogs_over_streams_stay_on_their_connection() {
        let conn = Peer::new(TransportKind::Tcp, "10.0.0.7:40123".parse().unwrap())
            .via_connection(Some(ConnectionId(9)));
        let t = dialog_target("sip:caller@10.0.0.7:5060", conn);
        assert_eq!(t.transport, TransportKind::Tcp);
        assert_eq!(t.connection, Some(ConnectionId(9)));
        assert_eq!(
            t.addr,
            "10.0.0.7:5060".parse().unwrap(),
            "Contact once it closes"
        );
        let udp = Peer::udp("10.0.0.7:5060".parse().unwrap());
        let t = dialog_target("<sip:caller@10.0.0.8:5062;transport=tcp>", udp);
        assert_eq!(
            t,
            Peer::new(TransportKind::Tcp, "10.0.0.8:5062".parse().unwrap())
        );
        assert_eq!(dialog_target("sip:caller@pbx.example.com", udp), udp);
    }
}
