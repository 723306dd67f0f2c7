//! Histograms on the wire: lockfair's histogram bounds, and HdrHistogram's V2+deflate encoding,
//! decoded against those bounds.
//!
//! The stock deserializer trusts the lengths inside the encoding (it resizes a buffer to whatever
//! the header says, up to 4 GiB) and allocates counts for whatever range it declares. A peer's
//! bytes are untrusted, so before handing them over we inflate with a cap, then check the
//! declared payload length, range and precision against what lockfair itself produces.

use std::io::Read;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::de::Error as _;
use serde::{Deserializer as SerdeDeserializer, Serializer as SerdeSerializer};

use thiserror::Error;

/// Largest value a histogram tracks: one hour in nanoseconds. Larger values (a peer can write any
/// timestamp into the arena) are recorded as this value.
pub const MAX_TRACKED: u64 = 3_600_000_000_000;
/// Significant digits kept by every histogram.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// A histogram with lockfair's standard bounds.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED, SIGNIFICANT_DIGITS)
        .expect("constant bounds are valid")
}

/// Why a peer's histogram bytes were refused.
#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("histogram shorter than its cookie")]
    NoCookie,
    #[error("not an HdrHistogram V2 encoding")]
    NotV2,
    #[error("compressed histogram without a length")]
    NoLength,
    #[error("compressed histogram is truncated")]
    Truncated,
    #[error("histogram does not inflate")]
    Inflate(#[source] std::io::Error),
    #[error("histogram inflates beyond 1 MiB")]
    TooLarge,
    #[error("histogram header is malformed")]
    BadHeader,
    #[error("histogram payload length disagrees with its size")]
    BadLength,
    #[error("histogram bounds are not lockfair's")]
    BadBounds,
    #[error("histogram does not decode")]
    Decode(#[source] hdrhistogram::serialization::DeserializeError),
}

// The base cookies with the word-size bits (0x10) the Java and Rust implementations set.
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_DEFLATE_COOKIE: u32 = 0x1c84_9314;
const V2_HEADER: usize = 40;
/// A lockfair histogram inflates to well under this (its counts array encodes zero runs).
const MAX_INFLATED: usize = 1 << 20;

/// Encodes `h` as V2+deflate bytes.
pub fn encode(h: &Histogram<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut out)
        .expect("serializing into a Vec cannot fail");
    out
}

/// Decodes V2 or V2+deflate bytes from an untrusted peer.
pub fn decode(bytes: &[u8]) -> Result<Histogram<u64>, DecodeError> {
    let cookie = be_u32(bytes, 0).ok_or(DecodeError::NoCookie)?;
    let inflated;
    let plain: &[u8] = match cookie {
        V2_COOKIE => bytes,
        V2_DEFLATE_COOKIE => {
            let len = be_u32(bytes, 4).ok_or(DecodeError::NoLength)? as usize;
            let body = bytes.get(8..8 + len).ok_or(DecodeError::Truncated)?;
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(body)
                .take(MAX_INFLATED as u64 + 1)
                .read_to_end(&mut out)
                .map_err(DecodeError::Inflate)?;
            if out.len() > MAX_INFLATED {
                return Err(DecodeError::TooLarge);
            }
            inflated = out;
            &inflated
        }
        _ => return Err(DecodeError::NotV2),
    };
    check_header(plain)?;
    Deserializer::new()
        .deserialize(&mut &plain[..])
        .map_err(DecodeError::Decode)
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn check_header(plain: &[u8]) -> Result<(), DecodeError> {
    if plain.len() < V2_HEADER || be_u32(plain, 0) != Some(V2_COOKIE) {
        return Err(DecodeError::BadHeader);
    }
    let payload = be_u32(plain, 4).unwrap_or(u32::MAX) as usize;
    if payload != plain.len() - V2_HEADER {
        return Err(DecodeError::BadLength);
    }
    let digits = be_u32(plain, 12).unwrap_or(u32::MAX);
    let low = be_u64(plain, 16).unwrap_or(0);
    let high = be_u64(plain, 24).unwrap_or(u64::MAX);
    if digits > SIGNIFICANT_DIGITS as u32 || low < 1 || high > MAX_TRACKED || low > high / 2 {
        return Err(DecodeError::BadBounds);
    }
    Ok(())
}

/// `#[serde(with = "histwire")]`: a histogram as V2+deflate bytes.
pub fn serialize<S: SerdeSerializer>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(&encode(h))
}

/// `#[serde(with = "histwire")]`: bytes back into a histogram, bounded.
pub fn deserialize<'de, D: SerdeDeserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
    let bytes: Vec<u8> = serde_bytes_vec(d)?;
    // On one line with its sources: serde's custom errors keep only a message.
    decode(&bytes).map_err(|e| D::Error::custom(crate::errors::error_chain(&e)))
}

fn serde_bytes_vec<'de, D: SerdeDeserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("histogram bytes")
        }
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::new();
            while let Some(b) = seq.next_element::<u8>()? {
                if out.len() >= MAX_INFLATED {
                    return Err(A::Error::custom("histogram bytes too long"));
                }
                out.push(b);
            }
            Ok(out)
        }
    }
    d.deserialize_bytes(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut h = new_histogram();
        for v in [0, 1, 17, 1_000, 2_000_000, MAX_TRACKED] {
            h.record(v).unwrap();
        }
        let back = decode(&encode(&h)).unwrap();
        assert_eq!(back, h);
    }

    #[test]
    fn rejects_a_header_that_claims_a_huge_payload() {
        let mut plain = Vec::new();
        plain.extend_from_slice(&V2_COOKIE.to_be_bytes());
        plain.extend_from_slice(&u32::MAX.to_be_bytes());
        plain.extend_from_slice(&[0u8; 32]);
        assert!(decode(&plain).is_err());
    }

    #[test]
    fn rejects_extreme_bounds_without_overflowing() {
        // A plain V2 header whose lowest value is near u64::MAX: `low * 2` would overflow.
        let mut plain = Vec::new();
        plain.extend_from_slice(&V2_COOKIE.to_be_bytes());
        plain.extend_from_slice(&0u32.to_be_bytes());
        plain.extend_from_slice(&0u32.to_be_bytes());
        plain.extend_from_slice(&3u32.to_be_bytes());
        plain.extend_from_slice(&(u64::MAX - 1).to_be_bytes());
        plain.extend_from_slice(&u64::MAX.to_be_bytes());
        plain.extend_from_slice(&1.0f64.to_be_bytes());
        assert!(decode(&plain).is_err());
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let _ = decode(&junk);
        }
        let mut cookie = V2_DEFLATE_COOKIE.to_be_bytes().to_vec();
        cookie.extend_from_slice(&100u32.to_be_bytes());
        cookie.extend_from_slice(&[0x78, 0x9c, 1, 2, 3]);
        assert!(matches!(decode(&cookie), Err(DecodeError::Truncated)));
    }

    #[test]
    fn a_stream_that_does_not_inflate_keeps_the_reason() {
        let mut bytes = V2_DEFLATE_COOKIE.to_be_bytes().to_vec();
        bytes.extend_from_slice(&5u32.to_be_bytes());
        bytes.extend_from_slice(&[0x78, 0x9c, 0xff, 0xff, 0xff]);
        let err = decode(&bytes).unwrap_err();
        assert!(matches!(err, DecodeError::Inflate(_)), "{err}");
        assert!(std::error::Error::source(&err).is_some());
    }
}
