//! Datagrams that are not a proper hello get an `error` reply; the server keeps serving and
//! closes every descriptor it received.

use std::os::fd::AsRawFd;

use lockfair::arena::Arena;
use lockfair::placement::Placement;
use lockfair::proto::{self, Hello, Message};
use lockfair::variant::{Mode, Variant};

use crate::util::{Server, error_text, exchange, raw_client, run_json};

pub fn hello(variant: Variant) -> Hello {
    Hello {
        variant,
        mode: Mode::Turns,
        placement: Placement::Free,
        contenders: 2,
        contender: 0,
        rounds: 10,
        max_ms: 1000,
        cpu: None,
        spin: 0,
        hold_ns: 0,
        think_ns: 0,
        nice: None,
    }
}

#[test]
fn garbage_and_a_hello_without_its_arena_get_errors_and_the_server_carries_on() {
    let server = Server::start();
    // Warm up, so lazily opened descriptors (tokio's, the signal pipes) are in the baseline.
    run_json(&server, &["--variant", "ofd", "--rounds", "10"]);
    let baseline = server.fd_count();
    let sock = raw_client(&server);

    let why = error_text(exchange(&sock, b"CACHEDFILE HELLO", &[]));
    assert!(why.contains("bad magic"), "{why}");

    let bare = proto::encode(&Message::Hello(hello(Variant::Ofd)));
    let why = error_text(exchange(&sock, &bare, &[]));
    assert!(why.contains("exactly 1 descriptor"), "{why}");

    let file = std::fs::File::open("/proc/self/exe").unwrap();
    let why = error_text(exchange(
        &sock,
        b"garbage with a descriptor",
        &[file.as_raw_fd()],
    ));
    assert!(why.contains("bad magic"), "{why}");

    let why = error_text(exchange(&sock, &bare, &[file.as_raw_fd()]));
    assert!(why.contains("not a memfd"), "{why}");

    // A real arena for a hello that lies about the contenders.
    let arena = Arena::create(2).unwrap();
    let mut lying = hello(Variant::Ofd);
    lying.contenders = 3;
    let why = error_text(exchange(
        &sock,
        &proto::encode(&Message::Hello(lying)),
        &[arena.file().as_raw_fd()],
    ));
    assert!(why.contains("hello says 3"), "{why}");

    // Every received descriptor was closed.
    crate::util::fds_back_to(&server, baseline);
    let report = run_json(&server, &["--variant", "ofd", "--rounds", "100"]);
    assert_eq!(report["server"]["rounds"], 100, "and it still serves");
}
