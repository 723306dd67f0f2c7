//! Golden bytes of the wire format: one fully populated example of every [`Message`] kind, and the
//! variant index of every enum a message carries, compared byte for byte with `testdata/`.
//!
//! Any change to the encoding fails here before it can reach a peer unannounced: bump
//! [`VERSION`], then record the new bytes with [`BLESS`]. Each file records the version it was
//! made with, and blessing writes a file only when it is missing or was made with an older
//! version: new bytes under an unchanged version never pass, blessed or not.

use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::{DecodeError, Hello, Message, Ready, VERSION, decode, encode};
use crate::measure::{ContenderStats, End, FreeStats, Role, Rusage, new_histogram};
use crate::placement::Placement;
use crate::variant::{Mode, Variant};

/// The one step that records the golden files (refused when `CI` is set).
const BLESS: &str = "LOCKFAIR_BLESS=1 cargo test -p lockfair golden";

/// Where the golden files live.
fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/proto/testdata")
}

fn histogram(values: &[u64]) -> Histogram<u64> {
    let mut h = new_histogram();
    for &v in values {
        h.record(v)
            .expect("the examples are within lockfair's bounds");
    }
    h
}

/// Every field distinct and away from its default, several of them wider than one varint byte.
fn example_hello() -> Hello {
    Hello {
        variant: Variant::PiFutex,
        mode: Mode::Free,
        placement: Placement::Split,
        contenders: 5,
        contender: 3,
        rounds: 1_234_567_890_123,
        max_ms: 98_765,
        cpu: Some(7),
        spin: 4_242,
        hold_ns: 100_000,
        think_ns: 2_500,
        nice: Some(-7),
    }
}

/// Every counter distinct and non-zero, every histogram (small) non-empty, `free` present.
fn example_stats() -> ContenderStats {
    ContenderStats {
        contender: 2,
        role: Role::Reader,
        cpu: Some(9),
        rounds: 1_001,
        wall_ns: 123_456_789,
        whoops: 17,
        overlaps: 3,
        wrong_reads: 5,
        end: End::PeerDeadline,
        rusage: Rusage {
            cpu_ns: 1_111_111,
            user_ns: 222_222,
            sys_ns: 333_333,
            voluntary_ctxt_switches: 44,
            involuntary_ctxt_switches: 55,
        },
        handoff: histogram(&[1_000, 2_000, 2_000]),
        round_trip: histogram(&[5_000, 70_000]),
        whoops_per_round: histogram(&[1, 2]),
        free: Some(FreeStats {
            acquisitions_in_window: 900,
            barging: 12,
            wait: histogram(&[300, 40_000]),
            runs: histogram(&[1, 4]),
            held_in_window_ns: 7_654_321,
            joined_ns: 1_000_000_007,
            left_ns: 1_123_456_796,
        }),
        held_ns: 8_765_432,
        hold_ns: 100_000,
        think_ns: 2_500,
        nice: -7,
        started_ns: 1_000_000_001,
        ended_ns: 1_123_456_790,
    }
}

/// One example of every message kind, in the enum's order.
fn examples() -> Vec<Message> {
    vec![
        Message::Hello(example_hello()),
        Message::Ready(Ready { cpu: Some(11) }),
        Message::Result(Box::new(example_stats())),
        Message::Error("refused: spin must be at most 65536, got 70000 (µs ✓)".into()),
    ]
}

/// The golden file of a message kind. A new kind fails to compile here: give it an example in
/// [`examples`] too (a test checks that every kind has one).
fn kind(m: &Message) -> &'static str {
    match m {
        Message::Hello(_) => "hello",
        Message::Ready(_) => "ready",
        Message::Result(_) => "result",
        Message::Error(_) => "error",
    }
}

/// Every value of `T` as `Type::Value index`, where the index is its bytes on the wire.
fn index_lines<T: Serialize + std::fmt::Debug>(ty: &str, all: &[T]) -> String {
    all.iter()
        .map(|v| {
            let bytes = postcard::to_allocvec(v).expect("an enum value always encodes");
            format!("{ty}::{v:?} {}\n", hex(&bytes))
        })
        .collect()
}

/// The variant index of every value of every enum a message carries: their order is part of the
/// format, and an example shows only one value of each.
fn enum_table() -> String {
    // A new role or end fails to compile here: list it below too.
    let roles = [Role::Writer, Role::Reader];
    let ends = [
        End::Completed,
        End::Deadline,
        End::PeerDeadline,
        End::PeerAborted,
    ];
    for r in roles {
        match r {
            Role::Writer | Role::Reader => {}
        }
    }
    for e in ends {
        match e {
            End::Completed | End::Deadline | End::PeerDeadline | End::PeerAborted => {}
        }
    }
    let modes = <Mode as clap::ValueEnum>::value_variants();
    [
        index_lines("Variant", &Variant::ALL),
        index_lines("Mode", modes),
        index_lines("Placement", &Placement::ALL),
        index_lines("Role", &roles),
        index_lines("End", &ends),
    ]
    .concat()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(body: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = body.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

/// A golden file: the protocol version it was made with, and the encoding it pins.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Golden {
    version: u16,
    /// Hex of a whole datagram (32 bytes a line), or the enum table; every line ends in `\n`.
    body: String,
}

impl Golden {
    /// A datagram of this build, recorded under its version.
    fn of_datagram(bytes: &[u8]) -> Golden {
        let body = bytes.chunks(32).map(|l| hex(l) + "\n").collect();
        Golden {
            version: VERSION,
            body,
        }
    }

    fn render(&self, name: &str) -> String {
        format!(
            "# lockfair wire format: {name}. Do not edit by hand. Any change needs a new\n\
             # proto::VERSION, then: {BLESS}\nversion {}\n{}",
            self.version, self.body
        )
    }

    fn parse(text: &str) -> Option<Golden> {
        let mut lines = text.lines().filter(|l| !l.starts_with('#'));
        let version = lines.next()?.strip_prefix("version ")?.parse().ok()?;
        let body = lines.map(|l| format!("{l}\n")).collect();
        Some(Golden { version, body })
    }
}

/// How a golden file compares with this build's encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Same,
    Missing,
    /// Made with an older protocol version: record this one.
    Older(u16),
    /// Different bytes under the same version: the format changed without a bump.
    Changed,
    /// Made with a newer version than this build's: versions only go up.
    Newer(u16),
}

fn verdict(golden: Option<&Golden>, now: &Golden) -> Verdict {
    match golden {
        None => Verdict::Missing,
        Some(g) if g.version < now.version => Verdict::Older(g.version),
        Some(g) if g.version > now.version => Verdict::Newer(g.version),
        Some(g) if g.body == now.body => Verdict::Same,
        Some(_) => Verdict::Changed,
    }
}

/// Whether this run rewrites golden files: only with `LOCKFAIR_BLESS=1`, and never under CI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bless {
    No,
    Yes,
    RefusedInCi,
}

fn bless_from_env() -> Bless {
    let asked = std::env::var("LOCKFAIR_BLESS").is_ok_and(|v| v == "1");
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    match (asked, ci) {
        (false, _) => Bless::No,
        (true, false) => Bless::Yes,
        (true, true) => Bless::RefusedInCi,
    }
}

/// What a golden file pins: its name, this build's encoding, and the message it encodes.
struct Entry {
    name: &'static str,
    now: Golden,
    example: Option<Message>,
}

fn entries() -> Vec<Entry> {
    let mut all: Vec<Entry> = examples()
        .into_iter()
        .map(|m| Entry {
            name: kind(&m),
            now: Golden::of_datagram(&encode(&m)),
            example: Some(m),
        })
        .collect();
    all.push(Entry {
        name: "enums",
        now: Golden {
            version: VERSION,
            body: enum_table(),
        },
        example: None,
    });
    all
}

/// Compares `entry` with its golden file in `dir`, recording it when blessing may; the error
/// says what the developer should do.
fn check(dir: &Path, entry: &Entry, bless: Bless) -> Result<(), String> {
    let path = dir.join(format!("{}.golden", entry.name));
    let golden = match std::fs::read_to_string(&path) {
        Ok(text) => Some(Golden::parse(&text).ok_or_else(|| {
            format!(
                "{}: does not parse: restore it with git, or delete it and run {BLESS}",
                path.display()
            )
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let verdict = verdict(golden.as_ref(), &entry.now);
    match (verdict, bless) {
        (Verdict::Same, _) => Ok(()),
        (Verdict::Missing | Verdict::Older(_), Bless::Yes) => {
            std::fs::write(&path, entry.now.render(entry.name))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        _ => Err(advice(&path, entry, verdict, bless, golden.as_ref())),
    }
}

fn advice(
    path: &Path,
    entry: &Entry,
    verdict: Verdict,
    bless: Bless,
    golden: Option<&Golden>,
) -> String {
    let (name, now) = (entry.name, entry.now.version);
    let mut text = match verdict {
        Verdict::Missing => {
            format!(
                "{name}: no golden bytes at {}: record them with {BLESS}",
                path.display()
            )
        }
        Verdict::Older(was) => format!(
            "{name}: proto::VERSION is now {now} but the golden bytes were made with {was}: \
             update them with {BLESS}"
        ),
        Verdict::Newer(was) => format!(
            "{name}: the golden bytes were made with protocol {was}, newer than proto::VERSION \
             {now}: versions only go up"
        ),
        Verdict::Changed | Verdict::Same => format!(
            "{name}: the wire format changed: bump proto::VERSION (now {now}) and update the \
             golden bytes with {BLESS}"
        ),
    };
    match bless {
        Bless::RefusedInCi => text += " (LOCKFAIR_BLESS is ignored when CI is set)",
        Bless::Yes if verdict == Verdict::Changed => {
            text += " (blessing records new bytes only under a new version)"
        }
        _ => {}
    }
    if let (Verdict::Changed, Some(golden)) = (verdict, golden) {
        text += &difference(path, golden, entry);
    }
    text
}

/// Where the recorded and the current encoding part, and whether the recorded bytes still read
/// back as the example (then perhaps only how this build writes the same value changed, e.g. a
/// histogram's deflate stream after a compression library update).
fn difference(path: &Path, golden: &Golden, entry: &Entry) -> String {
    let (was, now) = (golden.body.lines(), entry.now.body.lines());
    let mut text = match was.zip(now).enumerate().find(|(_, (a, b))| a != b) {
        Some((i, (a, b))) => format!(
            "\n  first difference in body line {}:\n    was {a}\n    now {b}",
            i + 1
        ),
        None => "\n  the encoding grew or shrank at its end".to_string(),
    };
    let reads_back = entry.example.as_ref().is_some_and(|example| {
        unhex(&golden.body)
            .and_then(|bytes| decode(&bytes).ok())
            .is_some_and(|m| encode(&m) == encode(example))
    });
    if reads_back {
        text += &format!(
            "\n  the recorded bytes still decode to the example: if no type changed, delete {} \
             and run {BLESS}",
            path.display()
        );
    }
    text + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_and_enum_matches_its_golden_bytes() {
        let bless = bless_from_env();
        let failures: Vec<String> = entries()
            .iter()
            .filter_map(|e| check(&testdata(), e, bless).err())
            .collect();
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn the_golden_examples_cover_every_message_kind_and_decode() {
        let examples = examples();
        for (i, m) in examples.iter().enumerate() {
            let bytes = encode(m);
            assert_eq!(bytes[6] as usize, i, "{} is example {i}", kind(m));
            assert!(decode(&bytes).is_ok(), "{} decodes", kind(m));
        }
        // The kind after the last example must not exist.
        let mut next = encode(&Message::Error(String::new()));
        next[6] = examples.len() as u8;
        assert!(
            matches!(
                decode(&next),
                Err(DecodeError::Body(postcard::Error::SerdeDeCustom))
            ),
            "message kind {} has no golden example",
            examples.len()
        );
    }

    /// A scratch directory for golden files, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("lockfair-golden-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn entry(version: u16, bytes: &[u8]) -> Entry {
        Entry {
            name: "hello",
            now: Golden {
                version,
                ..Golden::of_datagram(bytes)
            },
            example: None,
        }
    }

    #[test]
    fn new_golden_bytes_under_the_same_version_fail_even_when_blessed() {
        let dir = Scratch::new("same");
        assert!(
            check(&dir.0, &entry(2, b"old"), Bless::No)
                .unwrap_err()
                .contains("record them")
        );
        check(&dir.0, &entry(2, b"old"), Bless::Yes).unwrap();
        check(&dir.0, &entry(2, b"old"), Bless::No).unwrap();
        let changed = check(&dir.0, &entry(2, b"new"), Bless::No).unwrap_err();
        assert!(
            changed.starts_with(&format!(
                "hello: the wire format changed: bump proto::VERSION (now 2) and update the \
                 golden bytes with {BLESS}"
            )),
            "{changed}"
        );
        let refused = check(&dir.0, &entry(2, b"new"), Bless::Yes).unwrap_err();
        assert!(refused.contains("only under a new version"), "{refused}");
        check(&dir.0, &entry(2, b"old"), Bless::No).expect("the old bytes were kept");
    }

    #[test]
    fn a_version_bump_with_fresh_golden_bytes_passes() {
        let dir = Scratch::new("bump");
        check(&dir.0, &entry(2, b"old"), Bless::Yes).unwrap();
        let stale = check(&dir.0, &entry(3, b"new"), Bless::No).unwrap_err();
        assert!(
            stale.contains("now 3 but the golden bytes were made with 2"),
            "{stale}"
        );
        let in_ci = check(&dir.0, &entry(3, b"new"), Bless::RefusedInCi).unwrap_err();
        assert!(in_ci.contains("ignored when CI is set"), "{in_ci}");
        check(&dir.0, &entry(3, b"new"), Bless::Yes).unwrap();
        check(&dir.0, &entry(3, b"new"), Bless::No).unwrap();
        let back = check(&dir.0, &entry(2, b"old"), Bless::Yes).unwrap_err();
        assert!(back.contains("versions only go up"), "{back}");
    }

    #[test]
    fn a_golden_file_records_its_version_and_parses_back() {
        let g = Golden::of_datagram(&[7; 40]);
        let text = g.render("hello");
        assert!(text.contains(&format!("\nversion {VERSION}\n")), "{text}");
        assert_eq!(Golden::parse(&text), Some(g.clone()));
        assert_eq!(unhex(&g.body), Some(vec![7; 40]));
        assert_eq!(Golden::parse("no version line"), None);
    }
}
