//! Property tests of the datagram decoder, the first code that touches a peer's bytes: whatever
//! arrives, it returns a value or an error, never panics, and never allocates more than a bound.
//!
//! An instrumented global allocator measures what each decode requests. This test binary holds
//! a single test so no other thread allocates while it measures.

use lockfair::measure::ContenderStats;
use lockfair::placement::Placement;
use lockfair::proto::{self, Hello, MAX_DATAGRAM, Message, Ready};
use lockfair::variant::{Mode, Variant};
use proptest::prelude::*;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// A decode of at most 64 KiB may inflate one histogram (≤ 1 MiB) and allocate its counts
/// (~256 KiB) a few at a time; anything near this bound means a length was trusted.
const ALLOCATION_BOUND: usize = 4 << 20;

/// Decodes `bytes` and checks everything it requested from the allocator (an upper bound on
/// its peak) stays under the bound.
fn decode_bounded(bytes: &[u8]) {
    let region = Region::new(GLOBAL);
    let result = proto::decode(bytes);
    let stats = region.change();
    drop(result);
    let requested = stats.bytes_allocated + stats.bytes_reallocated.max(0) as usize;
    assert!(
        requested < ALLOCATION_BOUND,
        "decoding {} bytes requested {requested} bytes",
        bytes.len()
    );
}

fn valid_messages() -> Vec<Vec<u8>> {
    let hello = Hello {
        variant: Variant::Eventfd,
        mode: Mode::Turns,
        placement: Placement::Split,
        contenders: 2,
        contender: 0,
        rounds: 1000,
        max_ms: 2000,
        cpu: Some(1),
        spin: 0,
        hold_ns: 1_000,
        think_ns: 0,
        nice: Some(5),
    };
    let mut stats = ContenderStats::new(0, Some(1));
    for v in [1u64, 50, 1_000, 123_456, 9_999_999] {
        stats.handoff.record(v).unwrap();
        stats.round_trip.record(v * 2).unwrap();
        stats.whoops_per_round.record(v % 7).unwrap();
    }
    vec![
        proto::encode(&Message::Hello(hello)),
        proto::encode(&Message::Ready(Ready { cpu: None })),
        proto::encode(&Message::Result(Box::new(stats))),
        proto::encode(&Message::Error("refused".into())),
    ]
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
    /// Overwrite 4 bytes with a large little- or big-endian length.
    BigLength(usize, bool),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<bool>()).prop_map(|(i, be)| Mutation::BigLength(i, be)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let n = bytes.len();
    match *m {
        Mutation::Flip(i, b) => bytes[i % n] ^= b | 1,
        Mutation::Insert(i, b) => bytes.insert(i % (n + 1), b),
        Mutation::Remove(i) => {
            bytes.remove(i % n);
        }
        Mutation::Truncate(i) => bytes.truncate(i % n),
        Mutation::BigLength(i, be) => {
            let at = i % n;
            let len = if be {
                0x7fff_fff0u32.to_be_bytes()
            } else {
                0xffff_fff0u32.to_le_bytes()
            };
            for (k, b) in len.iter().enumerate() {
                if at + k < n {
                    bytes[at + k] = *b;
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn the_decoder_never_panics_and_allocates_within_bounds(
        garbage in proptest::collection::vec(any::<u8>(), 0..2048),
        which in 0usize..4,
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        // Pure garbage, garbage behind a valid header, and mutated valid messages.
        decode_bounded(&garbage);
        let mut framed = b"LKFR".to_vec();
        framed.extend_from_slice(&proto::VERSION.to_le_bytes());
        framed.extend_from_slice(&garbage);
        decode_bounded(&framed);
        let mut msg = valid_messages().swap_remove(which);
        for m in &mutations {
            apply(&mut msg, m);
        }
        msg.truncate(MAX_DATAGRAM);
        decode_bounded(&msg);
    }
}
