//! The connection table against real loopback sockets.

use super::super::{Received, SipTransports, TransportConfig};
use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MSG: &[u8] =
    b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKt\r\n\
    From: <sip:p@127.0.0.1>;tag=t\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: table\r\nCSeq: 1 OPTIONS\r\n\
    Content-Length: 0\r\n\r\n";

async fn transports(stream: StreamConfig) -> SipTransports {
    SipTransports::bind(TransportConfig {
        udp: "127.0.0.1:0".parse().unwrap(),
        tcp: Some("127.0.0.1:0".parse().unwrap()),
        tls: None,
        tls_client: None,
        stream,
    })
    .await
    .unwrap()
}

async fn recv(t: &mut SipTransports) -> Received {
    tokio::time::timeout(Duration::from_secs(5), t.recv())
        .await
        .expect("something received")
        .unwrap()
}

async fn read_exactly(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .expect("read in time")
        .unwrap();
    buf
}

async fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn the_peers_connection_carries_responses_and_requests_back() {
    let mut t = transports(StreamConfig::default()).await;
    let tcp = t.local_addr(TransportKind::Tcp).unwrap();
    let mut client = TcpStream::connect(tcp).await.unwrap();
    client.write_all(MSG).await.unwrap();
    let Received::Message { source, data } = recv(&mut t).await else {
        panic!("expected a message");
    };
    assert_eq!(&data[..], MSG);
    assert_eq!(source.transport, TransportKind::Tcp);
    assert_eq!(source.addr, client.local_addr().unwrap());
    assert!(source.connection.is_some());
    // The response on the named connection; a request to the bare address
    // finds the same connection (RFC 3261 §18.1.1).
    t.send(&source, b"first".to_vec()).await.unwrap();
    let bare = Peer::new(TransportKind::Tcp, source.addr);
    t.send(&bare, b"second".to_vec()).await.unwrap();
    assert_eq!(read_exactly(&mut client, 11).await, b"firstsecond");
    assert_eq!(t.connections(), 1);
}

#[tokio::test]
async fn outbound_connections_open_once_and_are_reused() {
    let t = transports(StreamConfig::default()).await;
    let far = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dest = Peer::new(TransportKind::Tcp, far.local_addr().unwrap());
    t.send(&dest, b"one".to_vec()).await.unwrap();
    t.send(&dest, b"two".to_vec()).await.unwrap();
    let (mut conn, _) = far.accept().await.unwrap();
    assert_eq!(read_exactly(&mut conn, 6).await, b"onetwo");
    t.send(&dest, b"three".to_vec()).await.unwrap();
    assert_eq!(read_exactly(&mut conn, 5).await, b"three");
    // Nobody opened a second connection.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), far.accept())
            .await
            .is_err()
    );
    assert_eq!(t.connections(), 1);
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let config = StreamConfig {
        idle_timeout: Duration::from_millis(200),
        ..StreamConfig::default()
    };
    let t = transports(config).await;
    let mut client = TcpStream::connect(t.local_addr(TransportKind::Tcp).unwrap())
        .await
        .unwrap();
    // Pings keep it alive past the idle time...
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(120)).await;
        client.write_all(b"\r\n\r\n").await.unwrap();
        assert_eq!(read_exactly(&mut client, 2).await, b"\r\n");
    }
    // ...silence does not.
    assert!(closed(&mut client).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(t.connections(), 0);
}

#[tokio::test]
async fn connections_beyond_the_bound_are_shed() {
    let config = StreamConfig {
        max_connections: 1,
        ..StreamConfig::default()
    };
    let t = transports(config).await;
    let tcp = t.local_addr(TransportKind::Tcp).unwrap();
    let mut first = TcpStream::connect(tcp).await.unwrap();
    first.write_all(b"\r\n\r\n").await.unwrap();
    assert_eq!(read_exactly(&mut first, 2).await, b"\r\n");
    let mut second = TcpStream::connect(tcp).await.unwrap();
    assert!(closed(&mut second).await, "the second is shed");
    let elsewhere = Peer::new(TransportKind::Tcp, "127.0.0.1:9".parse().unwrap());
    assert!(matches!(
        t.send(&elsewhere, b"x".to_vec()).await,
        Err(SendError::TooManyConnections)
    ));
    first.write_all(b"\r\n\r\n").await.unwrap();
    assert_eq!(
        read_exactly(&mut first, 2).await,
        b"\r\n",
        "the first lives on"
    );
}

#[tokio::test]
async fn a_refused_connection_is_reported() {
    let mut t = transports(StreamConfig::default()).await;
    let gone = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = gone.local_addr().unwrap();
    drop(gone);
    let dest = Peer::new(TransportKind::Tcp, addr);
    t.send(&dest, b"hello".to_vec()).await.unwrap();
    assert_eq!(recv(&mut t).await, Received::ConnectFailed { dest });
    assert!(matches!(
        t.send(&Peer::new(TransportKind::Tls, addr), b"x".to_vec())
            .await,
        Err(SendError::TlsNotConfigured)
    ));
}
