//! Messages with descriptors (SCM_RIGHTS), credentials (SCM_CREDENTIALS) and the sender's pidfd
//! (SCM_PIDFD, Linux 6.5+): one way to send them, and a `recvmsg` that never leaks a descriptor.
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

/// `SCM_PIDFD` (`include/uapi/asm-generic/socket.h`); the libc crate does not export it yet.
const SCM_PIDFD: i32 = 4;
/// `SO_PASSPIDFD`, the option that asks for it.
const SO_PASSPIDFD: i32 = 76;

/// Asks the kernel to attach the sender's pidfd (`SCM_PIDFD`) to every datagram received on
/// `socket`. Fails with `ENOPROTOOPT` before Linux 6.5.
pub fn pass_pidfd(socket: impl AsFd) -> Result<(), Errno> {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from `&on`, which lives across the call;
    // the descriptor is borrowed for the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PASSPIDFD,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    Errno::result(rc).map(drop)
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
    /// The sender's pidfd (`SCM_PIDFD`, with `SO_PASSPIDFD` on): `Err` when the kernel could not
    /// make one (the sender had exited), `None` when none came (an older kernel, option off).
    pub pidfd: Option<Result<OwnedFd, Errno>>,
    /// The sender's address, if it had one (bound or autobound).
    pub from: Option<UnixAddr>,
}

/// Bytes of control buffer that hold `fds` descriptors plus one set of credentials and a pidfd.
pub fn control_space(fds: usize) -> usize {
    cmsg_space(fds * size_of::<RawFd>())
        + cmsg_space(size_of::<libc::ucred>())
        + cmsg_space(size_of::<RawFd>())
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
    let Control {
        fds,
        credentials,
        pidfd,
    } = parse_control(control);
    Ok(Received {
        len,
        truncated: msg_flags.contains(MsgFlags::MSG_TRUNC),
        control_truncated: msg_flags.contains(MsgFlags::MSG_CTRUNC),
        fds,
        credentials,
        pidfd,
        // An unnamed peer (a socketpair, an unbound socket) has no address to answer to. Check the
        // length first: nix panics when asked about an address shorter than its family field.
        from: from.filter(|a| {
            a.len() as usize > size_of::<libc::sa_family_t>()
                && (a.path().is_some() || a.as_abstract().is_some())
        }),
    })
}

/// What a control buffer held.
#[derive(Debug, Default)]
struct Control {
    fds: Vec<OwnedFd>,
    credentials: Option<Credentials>,
    pidfd: Option<Result<OwnedFd, Errno>>,
}

/// Takes ownership of a descriptor number the kernel put in a control message; a negative number
/// is the kernel's errno for a descriptor it could not make.
fn own_installed(data: &[u8]) -> Result<OwnedFd, Errno> {
    let fd = RawFd::from_ne_bytes(data.try_into().unwrap_or([0xff; 4]));
    if fd < 0 {
        return Err(Errno::from_raw(-fd));
    }
    // SAFETY: the kernel just installed this descriptor in our table for this message; nothing
    // else knows its number, so we are its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Walks a kernel-written control buffer. Stops at the first header that is zero or inconsistent
/// (the zeroed tail), so it never reads past what the kernel wrote.
fn parse_control(control: &[u8]) -> Control {
    let word = size_of::<usize>();
    let mut got = Control::default();
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
                let chunks = data.chunks_exact(size_of::<RawFd>());
                got.fds
                    .extend(chunks.filter_map(|raw| own_installed(raw).ok()));
            }
            (libc::SOL_SOCKET, SCM_PIDFD) if data.len() >= size_of::<RawFd>() => {
                got.pidfd = Some(own_installed(&data[..size_of::<RawFd>()]));
            }
            (libc::SOL_SOCKET, libc::SCM_CREDENTIALS) if data.len() >= 12 => {
                got.credentials = Some(Credentials {
                    pid: i32::from_ne_bytes(data[0..4].try_into().unwrap_or_default()),
                    uid: u32::from_ne_bytes(data[4..8].try_into().unwrap_or_default()),
                    gid: u32::from_ne_bytes(data[8..12].try_into().unwrap_or_default()),
                });
            }
            _ => {}
        }
        at += cmsg_align(cmsg_len);
    }
    got
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

    /// Waits (boundedly) for `read_end` to reach end of file: every copy of the pipe's write end,
    /// wherever it was installed, has been closed. Checks those descriptors themselves, unlike a
    /// count of `/proc/self/fd`, which other tests' descriptors change.
    fn write_ends_all_closed(read_end: &OwnedFd, within_ms: i32) -> bool {
        let within = std::time::Duration::from_millis(u64::try_from(within_ms).unwrap_or(0));
        if crate::sys::poll::readable_within(read_end, within) != Ok(true) {
            return false;
        }
        let mut byte = [0u8; 1];
        matches!(nix::unistd::read(read_end, &mut byte), Ok(0))
    }

    #[test]
    fn truncated_control_data_still_yields_and_closes_every_installed_fd() {
        let (a, b) = credential_pair();
        let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let raw = vec![write_end.as_raw_fd(); 12];
        sendmsg::<()>(
            a.as_raw_fd(),
            &[IoSlice::new(b"x")],
            &[ControlMessage::ScmRights(&raw)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        drop(write_end);
        let mut buf = [0u8; 16];
        let mut control = vec![0u8; control_space(2)];
        let got = recv_with_fds(&b, &mut buf, &mut control, MsgFlags::empty()).unwrap();
        assert!(got.control_truncated);
        assert!(got.credentials.is_some(), "credentials come first and fit");
        assert!(!got.fds.is_empty() && got.fds.len() < 12);
        assert!(
            !write_ends_all_closed(&read_end, 0),
            "the received copies are open while owned"
        );
        drop(got);
        assert!(
            write_ends_all_closed(&read_end, 5_000),
            "every installed descriptor was owned and closed"
        );
    }

    #[test]
    fn the_senders_pidfd_arrives_with_its_datagram() {
        let (a, b) = credential_pair();
        pass_pidfd(&b).unwrap();
        sendmsg::<()>(
            a.as_raw_fd(),
            &[IoSlice::new(b"hi")],
            &[],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        let mut buf = [0u8; 16];
        let mut control = vec![0u8; control_space(1)];
        let got = recv_with_fds(&b, &mut buf, &mut control, MsgFlags::empty()).unwrap();
        assert!(!got.control_truncated);
        assert_eq!(got.credentials.unwrap().pid, std::process::id() as i32);
        let pidfd = got.pidfd.expect("SCM_PIDFD came").expect("a live sender");
        let info =
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd())).unwrap();
        assert!(
            info.lines().any(|l| l
                .split_whitespace()
                .eq(["Pid:", &std::process::id().to_string()])),
            "the pidfd names this process: {info}"
        );
    }

    #[test]
    fn a_negative_pidfd_is_the_kernels_errno_and_rights_are_all_owned() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let dup = f.as_fd().try_clone_to_owned().unwrap();
        let dup_raw = dup.as_raw_fd();
        std::mem::forget(dup);
        // A control buffer as the kernel writes it: a pidfd it could not make, then one right.
        let mut control = vec![0u8; control_space(1)];
        let mut at = 0;
        for (kind, value) in [(SCM_PIDFD, -(libc::ESRCH)), (libc::SCM_RIGHTS, dup_raw)] {
            let len = cmsg_data_offset() + size_of::<RawFd>();
            control[at..at + size_of::<usize>()].copy_from_slice(&len.to_ne_bytes());
            let w = size_of::<usize>();
            control[at + w..at + w + 4].copy_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
            control[at + w + 4..at + w + 8].copy_from_slice(&kind.to_ne_bytes());
            let d = at + cmsg_data_offset();
            control[d..d + 4].copy_from_slice(&value.to_ne_bytes());
            at += cmsg_align(len);
        }
        let got = parse_control(&control);
        assert!(matches!(got.pidfd, Some(Err(Errno::ESRCH))));
        assert_eq!(got.fds.len(), 1);
        assert_eq!(got.fds[0].as_raw_fd(), dup_raw);
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
