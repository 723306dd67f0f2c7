//! A client and a server of different protocol versions (different builds) refuse each other in
//! one line naming both versions, whichever of them is newer.

use std::os::fd::AsRawFd;

use lockfair::arena::Arena;
use lockfair::proto::{self, MAX_DATAGRAM, Message, VERSION};
use lockfair::variant::Variant;
use nix::sys::socket::{MsgFlags, UnixAddr, bind, recvfrom, sendto};

use crate::garbage::hello;
use crate::util::{
    HANG, Server, TestDir, client, error_text, exchange, fds_back_to, raw_client, run_json,
};

/// `datagram` as a build of protocol `version` would have sent it.
fn as_version(mut datagram: Vec<u8>, version: u16) -> Vec<u8> {
    datagram[4..6].copy_from_slice(&version.to_le_bytes());
    datagram
}

#[test]
fn a_hello_of_another_protocol_version_is_refused_naming_both_versions() {
    let server = Server::start();
    // Warm up, so lazily opened descriptors are in the baseline.
    run_json(&server, &["--variant", "ofd", "--rounds", "10"]);
    let baseline = server.fd_count();
    let sock = raw_client(&server);
    let ours = proto::encode(&Message::Hello(hello(Variant::Ofd)));
    let arena = Arena::create(2).unwrap();
    for theirs in [VERSION - 1, VERSION + 1] {
        let datagram = as_version(ours.clone(), theirs);
        let why = error_text(exchange(&sock, &datagram, &[arena.file().as_raw_fd()]));
        assert_eq!(
            why,
            format!(
                "this server speaks lockfair protocol {VERSION}, the client sent protocol \
                 {theirs}: run a client and server from the same build"
            )
        );
    }
    fds_back_to(&server, baseline);
    let report = run_json(&server, &["--variant", "ofd", "--rounds", "10"]);
    assert_eq!(report["server"]["rounds"], 10, "and it still serves");
}

#[test]
fn a_client_answered_in_another_protocol_version_says_so_in_one_line() {
    let dir = TestDir::new("other-version");
    let path = dir.path().join("server.sock");
    let fake = lockfair::channel::datagram_socket().unwrap();
    bind(fake.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
    let theirs = VERSION + 1;
    // A server of the next version: it refuses the hello, in its own version, as any server does.
    let server = std::thread::spawn(move || {
        if !lockfair::channel::wait_readable(&fake, HANG).unwrap() {
            return false;
        }
        let mut buf = vec![0u8; MAX_DATAGRAM];
        // The hello's descriptors are not received: the kernel closes them.
        let (_, from) = recvfrom::<UnixAddr>(fake.as_raw_fd(), &mut buf).unwrap();
        let refusal = proto::encode(&Message::Error("not your version".into()));
        let to = from.expect("the client is bound, so it can be answered");
        sendto(
            fake.as_raw_fd(),
            &as_version(refusal, theirs),
            &to,
            MsgFlags::empty(),
        )
        .unwrap();
        true
    });
    let socket = path.to_str().unwrap();
    let out = client(
        &[
            "run",
            "--socket",
            socket,
            "--variant",
            "ofd",
            "--rounds",
            "10",
        ],
        HANG,
    );
    assert!(server.join().unwrap(), "the client sent no hello");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "lockfair-client: this client speaks lockfair protocol {VERSION}, the server sent \
             protocol {theirs}: run a client and server from the same build"
        )
    );
}
