//! Messages with descriptors (SCM_RIGHTS) and credentials (SCM_CREDENTIALS): one way to send
//! them, and a `recvmsg` that never leaks a descriptor.
//!
//! Every descriptor the kernel installs for us is wrapped in an `OwnedFd` before anything else can
//! fail, so an early return on a malformed datagram closes it. That includes a datagram whose
//! ancillary data did not fit (`MSG_CTRUNC`): the kernel still installs the descriptors that fit,
//! and nix refuses to iterate a truncated buffer, so this module walks the control buffer itself.
//! The buffer is zeroed before each call, and only the kernel writes it.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::libc;
use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrLike, UnixAddr, recvmsg, sendmsg};

/// Sends `bytes` as one message on `socket`, to `to` (or to the connected peer), with `fds`
/// attached as SCM_RIGHTS.
pub fn send_with_fds(
    socket: impl AsFd,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
    to: Option<&UnixAddr>,
) -> Result<(), Errno> {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let cmsgs: Vec<ControlMessage> = if raw.is_empty() {
        Vec::new()
    } else {
        vec![ControlMessage::ScmRights(&raw)]
    };
    sendmsg(
        socket.as_fd().as_raw_fd(),
        &[IoSlice::new(bytes)],
        &cmsgs,
        MsgFlags::empty(),
        to,
    )
    .map(drop)
}

/// The credentials the kernel attached to a datagram (`SCM_CREDENTIALS`, with `SO_PASSCRED` on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// One received datagram's metadata; the payload is in the caller's buffer.
#[derive(Debug)]
pub struct Received {
    /// Bytes placed in the buffer.
    pub len: usize,
    /// The datagram was longer than the buffer (`MSG_TRUNC`); the rest is gone.
    pub truncated: bool,
    /// Ancillary data did not fit (`MSG_CTRUNC`); some descriptors were discarded by the kernel.
    pub control_truncated: bool,
    /// Descriptors received with `SCM_RIGHTS`, already owned (and close-on-exec).
    pub fds: Vec<OwnedFd>,
    pub credentials: Option<Credentials>,
    /// The sender's address, if it had one (bound or autobound).
    pub from: Option<UnixAddr>,
}

/// Bytes of control buffer that hold `fds` descriptors plus one set of credentials.
pub fn control_space(fds: usize) -> usize {
    cmsg_space(fds * size_of::<RawFd>()) + cmsg_space(size_of::<libc::ucred>())
}

const fn cmsg_align(len: usize) -> usize {
    (len + size_of::<usize>() - 1) & !(size_of::<usize>() - 1)
}

const fn cmsg_data_offset() -> usize {
    cmsg_align(size_of::<libc::cmsghdr>())
}

const fn cmsg_space(data: usize) -> usize {
    cmsg_data_offset() + cmsg_align(data)
}

/// Receives one datagram into `buf`, with up to `control.len()` bytes of ancillary data.
pub fn recv_with_fds(
    socket: impl AsFd,
    buf: &mut [u8],
    control: &mut [u8],
    flags: MsgFlags,
) -> Result<Received, Errno> {
    control.fill(0);
    let (len, msg_flags, from) = {
        let mut iov = [IoSliceMut::new(buf)];
        let msg = recvmsg::<UnixAddr>(
            socket.as_fd().as_raw_fd(),
            &mut iov,
            Some(&mut *control),
            flags | MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        (msg.bytes, msg.flags, msg.address)
    };
    let (fds, credentials) = parse_control(control);
    Ok(Received {
        len,
        truncated: msg_flags.contains(MsgFlags::MSG_TRUNC),
        control_truncated: msg_flags.contains(MsgFlags::MSG_CTRUNC),
        fds,
        credentials,
        // An unnamed peer (a socketpair, an unbound socket) has no address to answer to. Check the
        // length first: nix panics when asked about an address shorter than its family field.
        from: from.filter(|a| {
            a.len() as usize > size_of::<libc::sa_family_t>()
                && (a.path().is_some() || a.as_abstract().is_some())
        }),
    })
}

/// Walks a kernel-written control buffer. Stops at the first header that is zero or inconsistent
/// (the zeroed tail), so it never reads past what the kernel wrote.
fn parse_control(control: &[u8]) -> (Vec<OwnedFd>, Option<Credentials>) {
    let word = size_of::<usize>();
    let mut fds = Vec::new();
    let mut credentials = None;
    let mut at = 0;
    while at + cmsg_data_offset() <= control.len() {
        let cmsg_len = usize::from_ne_bytes(control[at..at + word].try_into().unwrap_or_default());
        if cmsg_len < cmsg_data_offset() {
            break;
        }
        let level = i32::from_ne_bytes(
            control[at + word..at + word + 4]
                .try_into()
                .unwrap_or_default(),
        );
        let kind = i32::from_ne_bytes(
            control[at + word + 4..at + word + 8]
                .try_into()
                .unwrap_or_default(),
        );
        let end = (at + cmsg_len).min(control.len());
        let data = &control[at + cmsg_data_offset()..end];
        match (level, kind) {
            (libc::SOL_SOCKET, libc::SCM_RIGHTS) => {
                for raw in data.chunks_exact(size_of::<RawFd>()) {
                    let fd = RawFd::from_ne_bytes(raw.try_into().unwrap_or_default());
                    if fd >= 0 {
                        // SAFETY: the kernel just installed this descriptor in our table for this
                        // message; nothing else knows its number, so we are its only owner.
                        fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                    }
                }
            }
            (libc::SOL_SOCKET, libc::SCM_CREDENTIALS) if data.len() >= 12 => {
                credentials = Some(Credentials {
                    pid: i32::from_ne_bytes(data[0..4].try_into().unwrap_or_default()),
                    uid: u32::from_ne_bytes(data[4..8].try_into().unwrap_or_default()),
                    gid: u32::from_ne_bytes(data[8..12].try_into().unwrap_or_default()),
                });
            }
            _ => {}
        }
        at += cmsg_align(cmsg_len);
    }
    (fds, credentials)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{
        AddressFamily, ControlMessage, SockFlag, SockType, sendmsg, setsockopt, socketpair, sockopt,
    };
    use std::io::IoSlice;

    /// A datagram socketpair whose second end receives SCM_CREDENTIALS.
    fn credential_pair() -> (OwnedFd, OwnedFd) {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Datagram,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        setsockopt(&b, sockopt::PassCred, &true).unwrap();
        (a, b)
    }

    fn open_fd_count() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }

    #[test]
    fn truncated_control_data_still_yields_and_closes_every_installed_fd() {
        let (a, b) = credential_pair();
        let files: Vec<std::fs::File> = (0..6)
            .map(|_| std::fs::File::open("/dev/null").unwrap())
            .collect();
        let raw: Vec<RawFd> = files.iter().map(|f| f.as_raw_fd()).collect();
        sendmsg::<()>(
            a.as_raw_fd(),
            &[IoSlice::new(b"x")],
            &[ControlMessage::ScmRights(&raw)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        drop(files);
        let before = open_fd_count();
        let mut buf = [0u8; 16];
        let mut control = vec![0u8; control_space(2)];
        let got = recv_with_fds(&b, &mut buf, &mut control, MsgFlags::empty()).unwrap();
        assert!(got.control_truncated);
        assert!(got.credentials.is_some(), "credentials come first and fit");
        assert!(!got.fds.is_empty() && got.fds.len() < 6);
        assert_eq!(open_fd_count(), before + got.fds.len());
        drop(got);
        assert_eq!(
            open_fd_count(),
            before,
            "every installed descriptor was owned and closed"
        );
    }

    #[test]
    fn credentials_and_fds_arrive_together() {
        let (a, b) = credential_pair();
        let f = std::fs::File::open("/dev/null").unwrap();
        sendmsg::<()>(
            a.as_raw_fd(),
            &[IoSlice::new(b"hello")],
            &[ControlMessage::ScmRights(&[f.as_raw_fd()])],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        let mut buf = [0u8; 16];
        let mut control = vec![0u8; control_space(4)];
        let got = recv_with_fds(&b, &mut buf, &mut control, MsgFlags::empty()).unwrap();
        assert_eq!(&buf[..got.len], b"hello");
        assert_eq!(got.fds.len(), 1);
        assert!(!got.truncated && !got.control_truncated);
        let creds = got.credentials.unwrap();
        assert_eq!(creds.pid, std::process::id() as i32);
        assert_eq!(creds.uid, nix::unistd::getuid().as_raw());
    }
}
