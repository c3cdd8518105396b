//! The tool's shared RTP sockets.
//!
//! Why shared: with a socket per leg there is nothing to batch, and the
//! per-packet syscalls, not the packets, bound the tool. Many calls can
//! name one address:port in their SDP: the far end (an engine, rtpengine,
//! or the tool's own other side) relays each call by its *own* per-call
//! ports and sends each call's RTP to whatever address that call's SDP
//! names, so the tool tells calls apart by the probe in the payload (call
//! number and direction), not by the port.
//!
//! Each side has its own sockets: calling legs (which receive B→A) and
//! called legs (which receive A→B) never share one, so a probe that reaches
//! the wrong side is seen as misrouted. With several sockets per side, legs
//! are spread by call number, and a probe arriving on a socket of the right
//! side but not its call's is misrouted too.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use crate::probe::Dir;

/// Receive and send buffer asked for per socket. A shared socket carries
/// what hundreds of per-leg sockets did, so the default (~200 KiB, about
/// 200 small datagrams on loopback) would overflow whenever the receiver
/// thread is preempted for a millisecond or two.
const SOCKET_BUF_BYTES: libc::c_int = 8 << 20;

/// The shared sockets, `per_side` for each side.
pub struct Pool {
    socks: Vec<UdpSocket>,
    per_side: usize,
}

impl Pool {
    pub fn bind(ip: IpAddr, per_side: usize) -> io::Result<Pool> {
        let per_side = per_side.max(1);
        let socks = (0..2 * per_side)
            .map(|_| {
                let s = UdpSocket::bind(SocketAddr::new(ip, 0))?;
                s.set_nonblocking(true)?;
                grow_buffers(&s);
                super::mmsg::enable_rx_timestamps(&s)?;
                Ok(s)
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Pool { socks, per_side })
    }

    /// Every socket; a socket's index is its place here.
    pub fn sockets(&self) -> &[UdpSocket] {
        &self.socks
    }

    /// The socket for a leg that receives `rx`, spread by `nth` (the call
    /// number): calling legs (rx B→A) use the first half, called legs (rx
    /// A→B) the second.
    pub fn pick(&self, rx: Dir, nth: usize) -> usize {
        let side = match rx {
            Dir::BToA => 0,
            Dir::AToB => 1,
        };
        side * self.per_side + nth % self.per_side
    }

    pub fn port(&self, index: usize) -> io::Result<u16> {
        Ok(self.socks[index].local_addr()?.port())
    }
}

/// Asks for big buffers: forced past `rmem_max`/`wmem_max` when the tool
/// may (CAP_NET_ADMIN), else as far as the limits allow. Best effort: a
/// smaller buffer shows up as loss, not as an error.
fn grow_buffers(s: &UdpSocket) {
    let fd = s.as_raw_fd();
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        let set = |opt| {
            // SAFETY: a valid fd and a c_int option value of the right size.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    std::ptr::from_ref(&SOCKET_BUF_BYTES).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            }
        };
        if set(force) != 0 {
            let _ = set(plain);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_never_share_a_socket() {
        let pool = Pool::bind("127.0.0.1".parse().unwrap(), 2).unwrap();
        assert_eq!(pool.sockets().len(), 4);
        let a: Vec<_> = (0..4).map(|i| pool.pick(Dir::BToA, i)).collect();
        let b: Vec<_> = (0..4).map(|i| pool.pick(Dir::AToB, i)).collect();
        assert_eq!(a, [0, 1, 0, 1]);
        assert_eq!(b, [2, 3, 2, 3]);
    }
}
