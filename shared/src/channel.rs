//! The client's end of the Unix datagram socket.
//!
//! The client autobinds (an abstract address the kernel picks, so nothing is left in the file
//! system) so the server can reply, then connects to the server's path, which also filters out
//! datagrams from anyone else. `SO_PASSCRED` makes the kernel attach the sender's credentials to
//! every datagram: the client learns the server's pid from the `ready` reply and watches it.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr, bind, connect, setsockopt, socket,
    sockopt,
};
use nix::sys::time::TimeVal;
use thiserror::Error;

use crate::proto::{self, DecodeError, MAX_DATAGRAM, Message, version_mismatch};
use crate::sys::scm::{Credentials, control_space, recv_with_fds, send_with_fds};

/// How the channel failed.
#[derive(Debug, Error)]
pub enum ChannelError {
    #[error("no server is listening at {0}: start `lockfair-server` first (or pass --socket)")]
    NoServer(PathBuf),
    #[error("cannot {what}: {errno}")]
    Sys { what: &'static str, errno: Errno },
    #[error("no reply from the server within {0:?}")]
    Timeout(Duration),
    #[error("the server sent something lockfair cannot read")]
    Decode(#[source] DecodeError),
    /// The server's protocol version (its every reply carries it, a refusal too).
    #[error("{}", version_mismatch("this client", "the server", *.0))]
    Version(u16),
    #[error("the server's reply was larger than {MAX_DATAGRAM} bytes")]
    Truncated,
}

impl From<DecodeError> for ChannelError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Version { got, .. } => ChannelError::Version(got),
            other => ChannelError::Decode(other),
        }
    }
}

/// A new Unix datagram socket, close-on-exec: what every socket of lockfair's starts as.
pub fn datagram_socket() -> Result<OwnedFd, Errno> {
    socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
}

/// Whether `errno`, from a `connect` or a send to a socket path, means nobody listens there: no
/// such file, a socket nobody holds, or a path through something that is not a directory.
pub fn nobody_listening(errno: Errno) -> bool {
    matches!(errno, Errno::ENOENT | Errno::ECONNREFUSED | Errno::ENOTDIR)
}

/// Connects a fresh socket to `addr`: `Ok` only if a socket is bound there now (a datagram
/// `connect` to a socket that nobody holds any more is refused).
pub fn probe(addr: &UnixAddr) -> Result<(), Errno> {
    connect(datagram_socket()?.as_raw_fd(), addr)
}

/// How long a send may wait on a full queue before it fails: a server that never reads must not
/// block its client forever.
pub const SEND_TIMEOUT: TimeVal = TimeVal::new(5, 0);

fn sys(what: &'static str) -> impl FnOnce(Errno) -> ChannelError {
    move |errno| ChannelError::Sys { what, errno }
}

/// A received message and what came with it.
#[derive(Debug)]
pub struct Incoming {
    pub message: Message,
    pub credentials: Option<Credentials>,
}

/// The client's socket, connected to one server.
#[derive(Debug)]
pub struct ClientChannel {
    socket: OwnedFd,
    buf: Vec<u8>,
    control: Vec<u8>,
}

impl ClientChannel {
    /// Autobinds a datagram socket and connects it to the server at `server`.
    pub fn connect(server: &Path) -> Result<Self, ChannelError> {
        let socket = datagram_socket().map_err(sys("create a socket"))?;
        bind(socket.as_raw_fd(), &UnixAddr::new_unnamed())
            .map_err(sys("bind the client socket"))?;
        setsockopt(&socket, sockopt::PassCred, &true).map_err(sys("enable SO_PASSCRED"))?;
        setsockopt(&socket, sockopt::SendTimeout, &SEND_TIMEOUT)
            .map_err(sys("set a send timeout"))?;
        let addr = UnixAddr::new(server).map_err(sys("use the socket path"))?;
        match connect(socket.as_raw_fd(), &addr) {
            Ok(()) => {}
            Err(errno) if nobody_listening(errno) => {
                return Err(ChannelError::NoServer(server.to_path_buf()));
            }
            Err(errno) => {
                return Err(ChannelError::Sys {
                    what: "connect to the server",
                    errno,
                });
            }
        }
        Ok(ClientChannel {
            socket,
            buf: vec![0; MAX_DATAGRAM],
            control: vec![0; control_space(4)],
        })
    }

    /// Sends `msg` with `fds` attached as SCM_RIGHTS.
    pub fn send(&self, msg: &Message, fds: &[BorrowedFd<'_>]) -> Result<(), ChannelError> {
        send_to(self.socket.as_fd(), msg, fds, None)
    }

    /// Waits up to `timeout` for the next message from the server.
    pub fn recv(&mut self, timeout: Duration) -> Result<Incoming, ChannelError> {
        if !wait_readable(&self.socket, timeout)? {
            return Err(ChannelError::Timeout(timeout));
        }
        let got = recv_with_fds(
            &self.socket,
            &mut self.buf,
            &mut self.control,
            MsgFlags::empty(),
        )
        .map_err(sys("receive from the server"))?;
        if got.truncated {
            return Err(ChannelError::Truncated);
        }
        Ok(Incoming {
            message: proto::decode(&self.buf[..got.len])?,
            credentials: got.credentials,
        })
    }

    /// Looks at the next message without consuming it (for the watchdog), if one is waiting.
    pub fn peek(socket: impl AsFd) -> Option<Message> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut control = vec![0u8; control_space(4)];
        let got = recv_with_fds(
            socket,
            &mut buf,
            &mut control,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
        )
        .ok()?;
        proto::decode(&buf[..got.len]).ok()
    }

    /// A duplicate of the socket, for the watchdog to poll.
    pub fn dup_socket(&self) -> Result<OwnedFd, ChannelError> {
        self.socket.try_clone().map_err(|e| ChannelError::Sys {
            what: "duplicate the socket",
            errno: crate::sys::io_errno(&e),
        })
    }
}

/// Sends one message on `socket` (to `to`, or to the connected peer).
pub fn send_to(
    socket: BorrowedFd<'_>,
    msg: &Message,
    fds: &[BorrowedFd<'_>],
    to: Option<&UnixAddr>,
) -> Result<(), ChannelError> {
    send_with_fds(socket, &proto::encode(msg), fds, to).map_err(sys("send a datagram"))
}

/// Waits until `fd` is readable or `timeout` passes. A signal does not cut the wait short,
/// except SIGINT/SIGTERM (then it returns `Ok(false)` and the caller sees `stop_requested`).
pub fn wait_readable(fd: impl AsFd, timeout: Duration) -> Result<bool, ChannelError> {
    let give_up = crate::sys::clock::monotonic_ns().saturating_add(timeout.as_nanos() as u64);
    loop {
        let left = give_up.saturating_sub(crate::sys::clock::monotonic_ns());
        match crate::sys::poll::readable_within(&fd, Duration::from_nanos(left)) {
            Ok(readable) => return Ok(readable),
            Err(Errno::EINTR) if crate::sys::signal::stop_requested() => return Ok(false),
            Err(Errno::EINTR) => continue,
            Err(errno) => {
                return Err(ChannelError::Sys {
                    what: "wait for the server",
                    errno,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::error_chain;
    use crate::proto::{Ready, VERSION};

    #[test]
    fn a_reply_of_another_protocol_version_is_one_line_naming_both() {
        let theirs = VERSION + 1;
        let mut reply = proto::encode(&Message::Ready(Ready { cpu: None }));
        reply[4..6].copy_from_slice(&theirs.to_le_bytes());
        let e = ChannelError::from(proto::decode(&reply).unwrap_err());
        assert_eq!(
            error_chain(&e),
            format!(
                "this client speaks lockfair protocol {VERSION}, the server sent protocol \
                 {theirs}: run a client and server from the same build"
            )
        );
        let garbled = ChannelError::from(proto::decode(b"LKFR").unwrap_err());
        assert!(matches!(garbled, ChannelError::Decode(_)), "{garbled}");
    }
}
