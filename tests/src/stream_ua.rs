//! A minimal SIP user agent over a TCP or TLS stream, for the transport
//! tests (SIPp here is built without TLS). It writes messages as text and
//! reads them back through sip-stack's own stream framer; everything it
//! checks, it checks on the wire.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use sip_stack::message::{parse, Response, SipMessage};
use sip_stack::transport::{Frame, StreamFramer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A self-signed certificate for 127.0.0.1 written to `dir` as
/// `cert.pem`/`key.pem`; returns (cert path, key path, cert PEM).
pub fn write_test_certificate(dir: &std::path::Path) -> (String, String, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).expect("generate certificate");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let pem = certified.cert.pem();
    std::fs::write(&cert, &pem).expect("write cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    (cert.display().to_string(), key.display().to_string(), pem)
}

/// Opens a TLS connection to `addr`, trusting only `ca_pem`.
pub async fn connect_tls(
    addr: SocketAddr,
    ca_pem: &str,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("PEM certificate")).expect("trust it");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.expect("TCP connect");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .expect("TLS handshake (the engine's certificate must verify)")
}

/// One SIP connection: send text, receive framed messages.
pub struct StreamUa<S> {
    stream: S,
    framer: StreamFramer,
}

impl<S: AsyncRead + AsyncWrite + Unpin> StreamUa<S> {
    pub fn new(stream: S) -> Self {
        StreamUa {
            stream,
            framer: StreamFramer::new(65_535),
        }
    }

    /// Sends `text` with LF line ends turned into CRLF and Content-Length
    /// filled in for the body after the blank line.
    pub async fn send(&mut self, text: &str) {
        let text = text.replace("\r\n", "\n");
        let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
        let body = body.replace('\n', "\r\n");
        let msg = format!(
            "{}\r\nContent-Length: {}\r\n\r\n{body}",
            head.trim_end().replace('\n', "\r\n"),
            body.len()
        );
        self.stream.write_all(msg.as_bytes()).await.expect("send");
        self.stream.flush().await.expect("flush");
    }

    /// The next message, or `None` if the peer closed the connection.
    pub async fn recv(&mut self, limit: Duration) -> Option<SipMessage> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match self
                .framer
                .next_frame()
                .expect("the engine frames correctly")
            {
                Some(Frame::Message(data)) => return Some(parse(&data).expect("parseable")),
                Some(Frame::Ping) => continue,
                None => {}
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no SIP message within {limit:?}"))
                .expect("read");
            if n == 0 {
                return None;
            }
            self.framer.push(&buf[..n]);
        }
    }

    /// Reads until a response with `status` (skipping provisionals).
    pub async fn expect_response(&mut self, status: u16) -> Response {
        loop {
            match self.recv(Duration::from_secs(10)).await {
                Some(SipMessage::Response(r)) if r.status == status => return r,
                Some(SipMessage::Response(r)) if r.status < 200 => continue,
                other => panic!("expected {status}, got {other:?}"),
            }
        }
    }

    pub fn into_inner(self) -> S {
        self.stream
    }
}
