//! The stamp at the front of every message body: 8 bytes of send time (nanoseconds since
//! the Unix epoch, so a producer and a consumer in different processes on one host agree)
//! and 8 bytes of sequence (producer index in the top 16 bits, that producer's message
//! number in the low 48), both big-endian. Bodies shorter than [`STAMP_LEN`] carry no
//! stamp, and their latency is not measured.

use std::time::{SystemTime, UNIX_EPOCH};

pub const STAMP_LEN: usize = 16;

/// Wall-clock nanoseconds since the Unix epoch (one vDSO call).
#[inline]
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The sequence word for producer `producer`'s `n`th message.
#[inline]
pub fn sequence(producer: u16, n: u64) -> u64 {
    ((producer as u64) << 48) | (n & ((1 << 48) - 1))
}

/// Writes the stamp into the first [`STAMP_LEN`] bytes of `body`.
#[inline]
pub fn write_stamp(body: &mut [u8], ts_ns: u64, seq: u64) {
    body[..8].copy_from_slice(&ts_ns.to_be_bytes());
    body[8..16].copy_from_slice(&seq.to_be_bytes());
}

/// Reads `(send time ns, sequence)` from the front of a body, if it is long enough.
#[inline]
pub fn read_stamp(body: &[u8]) -> Option<(u64, u64)> {
    if body.len() < STAMP_LEN {
        return None;
    }
    let ts = u64::from_be_bytes(body[..8].try_into().ok()?);
    let seq = u64::from_be_bytes(body[8..16].try_into().ok()?);
    Some((ts, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trips() {
        let mut body = [0u8; 20];
        let ts = now_ns();
        let seq = sequence(3, 41);
        write_stamp(&mut body, ts, seq);
        assert_eq!(read_stamp(&body), Some((ts, seq)));
        assert_eq!(seq >> 48, 3);
        assert_eq!(seq & 0xffff_ffff_ffff, 41);
        assert_eq!(read_stamp(&body[..15]), None);
    }

    #[test]
    fn clock_is_wall_time() {
        // 2020-01-01 in ns: the stamp must be comparable across processes.
        assert!(now_ns() > 1_577_836_800_000_000_000);
    }
}
