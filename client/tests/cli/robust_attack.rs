//! The robust mutex's attack, as it was done: a third process opens the client's arena through
//! `/proc/PID/fd` while a `robust-mutex` session runs, and writes pointers into the bytes where
//! glibc's `pthread_mutex_t` keeps its robust-list links (`__list`), then garbage over the whole
//! mutex. With glibc's mutex in the arena the server died of SIGSEGV at its next unlock; now the
//! links live in each thread's private memory, and the shared word is only ever an integer.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lockfair::arena::REGION_OFFSET;

use crate::util::{HANG, Server, client_bin, run_json, wait_exit};

/// Where glibc's x86-64 `pthread_mutex_t` keeps `__list.__prev` and `__list.__next`.
const GLIBC_LIST: std::ops::Range<u64> = 24..40;
/// How long the session runs: long enough to be written over while the server holds the mutex.
const SESSION_SECONDS: &str = "4";

#[test]
fn a_third_process_writing_the_robust_mutex_cannot_crash_the_server() {
    let mut server = Server::start();
    let mut client = Command::new(client_bin())
        .args(["run", "--variant", "robust-mutex", "--rounds", "100000000"])
        .args(["--max-seconds", SESSION_SECONDS, "--socket"])
        .arg(&server.socket)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let arena = open_arena_of(&mut client);
    // `robust-mutex`'s region is its mutex room, all of it.
    let room = REGION_OFFSET as u64;

    // First the links alone (the word untouched: the session goes on), then the whole room.
    let pointers = [0x10u64, 0xdead_beef_0000, u64::MAX - 7, 0x7fff_ffff_f000];
    let until = Instant::now() + Duration::from_millis(1500);
    let mut writes = 0u64;
    while Instant::now() < until {
        let p = pointers[(writes % 4) as usize].to_ne_bytes();
        let both = [p, p].concat();
        arena.write_all_at(&both, room + GLIBC_LIST.start).unwrap();
        writes += 1;
    }
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        let byte = (writes % 251) as u8;
        arena.write_all_at(&[byte; 64], room).unwrap();
        writes += 1;
    }
    drop(arena);
    assert!(writes > 1000, "only {writes} writes");

    // The client's session ends within its bound, whatever it met.
    wait_exit(&mut client, HANG).expect("the client ends within its --max-seconds");
    assert!(
        matches!(server.child.try_wait(), Ok(None)),
        "the server died while its mutex was written over: {:?}",
        server.child.try_wait()
    );
    // And it serves the next session, of the same variant, normally.
    let report = run_json(&server, &["--variant", "robust-mutex", "--rounds", "200"]);
    assert_eq!(report["client"]["rounds"], 200, "{report}");
    assert_eq!(report["server"]["overlaps"], 0, "{report}");
}

/// Opens the client's arena memfd through `/proc/PID/fd`, read-write, once the client has made
/// it (a new open file description of the same memory, as any process allowed to ptrace the
/// client could).
fn open_arena_of(client: &mut Child) -> File {
    let fds = format!("/proc/{}/fd", client.id());
    let give_up = Instant::now() + HANG;
    loop {
        let found = std::fs::read_dir(&fds).ok().and_then(|dir| {
            dir.filter_map(Result::ok).find(|e| {
                std::fs::read_link(e.path())
                    .is_ok_and(|t| t.to_string_lossy().starts_with("/memfd:lockfair-arena"))
            })
        });
        if let Some(entry) = found
            && let Ok(file) = File::options().read(true).write(true).open(entry.path())
        {
            return file;
        }
        if let Ok(Some(status)) = client.try_wait() {
            panic!("the client exited before making its arena: {status}");
        }
        assert!(Instant::now() < give_up, "the client never made its arena");
        std::thread::sleep(Duration::from_millis(5));
    }
}
