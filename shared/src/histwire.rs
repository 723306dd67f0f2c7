//! Histograms on the wire: HdrHistogram's V2+deflate encoding, decoded with bounds.
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

use crate::measure::{MAX_TRACKED, SIGNIFICANT_DIGITS};

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
pub fn decode(bytes: &[u8]) -> Result<Histogram<u64>, String> {
    let cookie = be_u32(bytes, 0).ok_or("histogram shorter than its cookie")?;
    let inflated;
    let plain: &[u8] = match cookie {
        V2_COOKIE => bytes,
        V2_DEFLATE_COOKIE => {
            let len = be_u32(bytes, 4).ok_or("compressed histogram without a length")? as usize;
            let body = bytes
                .get(8..8 + len)
                .ok_or("compressed histogram is truncated")?;
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(body)
                .take(MAX_INFLATED as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("histogram does not inflate: {e}"))?;
            if out.len() > MAX_INFLATED {
                return Err("histogram inflates beyond 1 MiB".into());
            }
            inflated = out;
            &inflated
        }
        _ => return Err("not an HdrHistogram V2 encoding".into()),
    };
    check_header(plain)?;
    Deserializer::new()
        .deserialize(&mut &plain[..])
        .map_err(|e| format!("histogram does not decode: {e:?}"))
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn check_header(plain: &[u8]) -> Result<(), String> {
    if plain.len() < V2_HEADER || be_u32(plain, 0) != Some(V2_COOKIE) {
        return Err("histogram header is malformed".into());
    }
    let payload = be_u32(plain, 4).unwrap_or(u32::MAX) as usize;
    if payload != plain.len() - V2_HEADER {
        return Err("histogram payload length disagrees with its size".into());
    }
    let digits = be_u32(plain, 12).unwrap_or(u32::MAX);
    let low = be_u64(plain, 16).unwrap_or(0);
    let high = be_u64(plain, 24).unwrap_or(u64::MAX);
    if digits > SIGNIFICANT_DIGITS as u32 || low < 1 || high > MAX_TRACKED || low > high / 2 {
        return Err("histogram bounds are not lockfair's".into());
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
    decode(&bytes).map_err(D::Error::custom)
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
    use crate::measure::new_histogram;

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
        assert!(decode(&cookie).is_err());
    }
}
