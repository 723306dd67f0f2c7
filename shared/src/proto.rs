//! The messages client and server exchange over the datagram socket.
//!
//! Every datagram is `LKFR` + a little-endian protocol version + a postcard-encoded [`Message`].
//! Decoding checks the magic and version first (so a mismatched build gets a clear answer), then
//! requires the body to consume the datagram exactly. Histograms inside a result are decoded with
//! bounds (see [`crate::histwire`]). Semantic checks on a hello (ranges, CPU, descriptors) live
//! with the server, which knows its own limits.
//!
//! postcard encodes by position: a field added, removed or moved, a type changed, or an enum's
//! variants reordered ([`Variant`], [`Mode`], [`Placement`] and the result's enums travel as
//! their variant index) is an incompatible change, and needs a new [`VERSION`]. The golden bytes
//! in `proto/testdata/` (checked by the `golden` tests) fail on any such change and say how to
//! record the new encoding.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::measure::ContenderStats;
use crate::placement::Placement;
use crate::variant::{Mode, Variant};

/// First four bytes of every datagram.
pub const MAGIC: [u8; 4] = *b"LKFR";
/// Bumped on any incompatible change to [`Message`] (the golden tests say when). 2: `Hello`
/// gained `spin` and `ContenderStats` gained `free`, both without a bump from 1. 3: [`Variant`]
/// gained `std-lock`, `poll-lock` and `fs4` (an older peer cannot decode them). 4:
/// `ContenderStats` gained the hold sums, lock opportunity's input (`held_ns`, `free`'s window
/// stamps, its clocks' start and stop), and the busy work and nice value it ran with; `Hello` gained `hold_ns`, `think_ns`
/// and `nice`.
pub const VERSION: u16 = 4;
/// No lockfair datagram is larger than this; receivers size their buffers to it.
pub const MAX_DATAGRAM: usize = 64 * 1024;

/// Everything that travels between the two sides.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Message {
    /// Client → server: run a session. Carries the arena (and the variant's descriptors).
    Hello(Hello),
    /// Server → client: the hello checked out, the server's side is starting.
    Ready(Ready),
    /// Server → client: the server's side finished; its measurements.
    Result(Box<ContenderStats>),
    /// Server → client: a one-line reason the session was refused or failed.
    Error(String),
}

/// The parameters of one session, as the client asks for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub variant: Variant,
    pub mode: Mode,
    pub placement: Placement,
    /// How many contenders take part (2 for a client/server pair).
    pub contenders: u16,
    /// Which contender the receiver plays (the server is 0, the writer).
    pub contender: u16,
    /// Turns each contender takes.
    pub rounds: u64,
    /// Stop after this many milliseconds even if rounds remain.
    pub max_ms: u64,
    /// Pin the receiver's session thread to this CPU (`None`: leave it free).
    pub cpu: Option<u16>,
    /// `spin-futex`'s spin bound (0: the default).
    pub spin: u32,
    /// The receiver's busy work inside each critical section (`--hold`) and between two
    /// (`--think`), in ns.
    pub hold_ns: u64,
    pub think_ns: u64,
    /// The receiver's session thread's nice value (`--nice`; `None`: as it is).
    pub nice: Option<i8>,
}

/// The server's acknowledgement of a hello.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// The CPU the server pinned its session thread to, if any.
    pub cpu: Option<u16>,
}

/// Why a datagram is not a lockfair message.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("datagram of {0} bytes is too short to be a lockfair message")]
    TooShort(usize),
    #[error("datagram is not a lockfair message (bad magic)")]
    BadMagic,
    /// Each side names itself and its peer when it says this ([`version_mismatch`]).
    #[error(
        "this build speaks lockfair protocol {want}, its peer sent protocol {got}: {SAME_BUILD}"
    )]
    Version { got: u16, want: u16 },
    /// postcard's reason is part of the one line the peer is sent back (refusals travel as text).
    #[error("malformed message body: {0}")]
    Body(postcard::Error),
    #[error("message has {0} trailing bytes")]
    Trailing(usize),
    #[error("expected a hello")]
    NotHello,
}

/// What to do about a peer of another protocol version.
const SAME_BUILD: &str = "run a client and server from the same build";

/// The one line a side gives when its peer speaks protocol `theirs`: `we` and `they` name the
/// two sides as the reader knows them ("this server", "the client").
pub fn version_mismatch(we: &str, they: &str, theirs: u16) -> String {
    format!("{we} speaks lockfair protocol {VERSION}, {they} sent protocol {theirs}: {SAME_BUILD}")
}

/// Encodes `msg` into one datagram.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    postcard::to_io(msg, &mut out).expect("writing into a Vec cannot fail");
    out
}

/// Decodes one datagram, which must be exactly one message of this protocol version.
pub fn decode(datagram: &[u8]) -> Result<Message, DecodeError> {
    exactly::<Message>(body(datagram)?)
}

/// Decodes a datagram that must be a hello, without decoding anything else: a peer's `result`
/// (histograms to inflate) is refused unread. Servers use this.
pub fn decode_hello(datagram: &[u8]) -> Result<Hello, DecodeError> {
    // postcard writes the enum's variant index first, as a varint: 0 is `Hello`.
    match body(datagram)?.split_first() {
        Some((0, hello)) => exactly::<Hello>(hello),
        _ => Err(DecodeError::NotHello),
    }
}

/// The body after a checked magic and version.
fn body(datagram: &[u8]) -> Result<&[u8], DecodeError> {
    if datagram.len() < 6 {
        return Err(DecodeError::TooShort(datagram.len()));
    }
    if datagram[..4] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let got = u16::from_le_bytes([datagram[4], datagram[5]]);
    if got != VERSION {
        return Err(DecodeError::Version { got, want: VERSION });
    }
    Ok(&datagram[6..])
}

fn exactly<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes).map_err(DecodeError::Body)?;
    if !rest.is_empty() {
        return Err(DecodeError::Trailing(rest.len()));
    }
    Ok(value)
}

#[cfg(test)]
mod golden;

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            variant: Variant::Ofd,
            mode: Mode::Turns,
            placement: Placement::Split,
            contenders: 2,
            contender: 0,
            rounds: 1000,
            max_ms: 5000,
            cpu: Some(1),
            spin: 0,
            hold_ns: 0,
            think_ns: 0,
            nice: None,
        }
    }

    #[test]
    fn a_hello_round_trips() {
        let back = decode(&encode(&Message::Hello(hello()))).unwrap();
        assert!(matches!(back, Message::Hello(h) if h == hello()));
    }

    #[test]
    fn a_result_round_trips_with_its_histograms() {
        let mut stats = ContenderStats::new(0, Some(1));
        stats.rounds = 3;
        for v in [100, 200, 300] {
            stats.handoff.record(v).unwrap();
        }
        let back = decode(&encode(&Message::Result(Box::new(stats.clone())))).unwrap();
        let Message::Result(back) = back else {
            panic!("not a result")
        };
        assert_eq!(back.rounds, 3);
        assert_eq!(back.handoff, stats.handoff);
    }

    #[test]
    fn a_server_reads_only_hellos() {
        assert_eq!(
            decode_hello(&encode(&Message::Hello(hello()))).unwrap(),
            hello()
        );
        let result = encode(&Message::Result(Box::new(ContenderStats::new(0, None))));
        assert_eq!(decode_hello(&result).unwrap_err(), DecodeError::NotHello);
        let mut trailing = encode(&Message::Hello(hello()));
        trailing.push(1);
        assert_eq!(
            decode_hello(&trailing).unwrap_err(),
            DecodeError::Trailing(1)
        );
    }

    #[test]
    fn trailing_bytes_wrong_versions_and_garbage_are_refused() {
        let mut d = encode(&Message::Error("x".into()));
        d.push(0);
        assert_eq!(decode(&d).unwrap_err(), DecodeError::Trailing(1));
        let mut d = encode(&Message::Error("x".into()));
        d[4] = 9;
        assert!(matches!(
            decode(&d).unwrap_err(),
            DecodeError::Version {
                got: 9,
                want: VERSION
            }
        ));
        assert_eq!(
            decode(b"CACHEDFILE HELLO").unwrap_err(),
            DecodeError::BadMagic
        );
        assert_eq!(decode(b"LK").unwrap_err(), DecodeError::TooShort(2));
    }

    #[test]
    fn another_version_is_refused_before_its_body_is_read_naming_both_versions() {
        for other in [VERSION - 1, VERSION + 1] {
            let mut d = encode(&Message::Hello(hello()));
            d[4..6].copy_from_slice(&other.to_le_bytes());
            // A body this build cannot read either: the version decides first.
            d.truncate(7);
            let want = DecodeError::Version {
                got: other,
                want: VERSION,
            };
            assert_eq!(decode(&d).unwrap_err(), want);
            assert_eq!(decode_hello(&d).unwrap_err(), want);
        }
        assert_eq!(
            version_mismatch("this server", "the client", 1),
            format!(
                "this server speaks lockfair protocol {VERSION}, the client sent protocol 1: \
                 run a client and server from the same build"
            )
        );
    }

    #[test]
    fn every_truncation_of_a_valid_message_is_an_error_not_a_panic() {
        let d = encode(&Message::Hello(hello()));
        for len in 0..d.len() {
            assert!(decode(&d[..len]).is_err(), "prefix of {len} bytes decoded");
        }
    }
}
