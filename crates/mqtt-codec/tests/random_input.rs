//! Property-style tests on pseudo-random input (std only, fixed seeds, so a failure
//! reproduces): the decoder never panics, never consumes anything but exactly one packet,
//! and whatever it accepts re-encodes to bytes that decode to the same packet. The fuzz
//! target in `fuzz/` checks the same properties with coverage guidance.

mod common;

use bytes::BytesMut;
use common::*;
use warren_mqtt_codec::{decode, encode, encoded_len, wire::parse_var_int, ProtocolVersion};

/// Decodes `input` in `v` and checks the properties. Returns whether a packet came out.
fn check(input: &[u8], v: ProtocolVersion, max: u32) -> bool {
    let mut buf = BytesMut::from(input);
    let result = decode(&mut buf, v, max);
    let consumed = input.len() - buf.len();
    match result {
        Ok(None) => {
            assert_eq!(consumed, 0, "Ok(None) consumed bytes of {input:02x?}");
            false
        }
        Err(_) => false,
        Ok(Some(p)) => {
            // Exactly the packet the fixed header announced was consumed.
            let (remaining, len_len) = parse_var_int(&input[1..]).unwrap().unwrap();
            assert_eq!(consumed, 1 + len_len + remaining as usize);
            let mut out = BytesMut::new();
            encode(&p, v, &mut out)
                .unwrap_or_else(|e| panic!("{p:?} decoded but does not encode: {e}"));
            assert_eq!(out.len(), encoded_len(&p, v).unwrap());
            let again = decode(&mut out, v, 0)
                .unwrap_or_else(|e| panic!("{p:?} re-encoded does not decode: {e}"))
                .expect("whole packet");
            assert!(out.is_empty());
            assert_eq!(again, p, "from {input:02x?}");
            true
        }
    }
}

#[test]
fn random_byte_strings_never_panic() {
    let mut rng = Rng::new(1);
    for _ in 0..100_000 {
        let len = rng.below(48);
        let input = rng.bytes(len);
        for v in VERSIONS {
            check(&input, v, 0);
            check(&input, v, 16);
        }
    }
}

#[test]
fn random_bodies_behind_valid_headers() {
    // Most random first bytes announce a huge remaining length and stop at Ok(None); here
    // every input is one complete frame with a valid type, so the body decoders run.
    let mut rng = Rng::new(2);
    let mut decoded = 0;
    for _ in 0..200_000 {
        let packet_type = 1 + rng.below(15) as u8;
        let flags = match rng.below(4) {
            0 => rng.byte() & 0x0F,
            _ if matches!(packet_type, 6 | 8 | 10) => 0b0010,
            _ if packet_type == 3 => (rng.byte() & 0b1001) | ((rng.below(3) as u8) << 1),
            _ => 0,
        };
        let body_len = rng.below(40);
        let mut body = rng.bytes(body_len);
        // Bias towards plausible shapes: small string lengths, small property lengths.
        for b in body.iter_mut() {
            if rng.below(3) == 0 {
                *b &= 0x07;
            }
        }
        let input = raw((packet_type << 4) | flags, &body);
        for v in VERSIONS {
            if check(&input, v, 0) {
                decoded += 1;
            }
        }
    }
    // The test is only worth something if some of it gets through.
    assert!(decoded > 1_000, "only {decoded} random packets decoded");
}

#[test]
fn mutated_valid_packets_never_panic() {
    let mut rng = Rng::new(3);
    let mut seeds = Vec::new();
    for v in VERSIONS {
        for rich in [false, true] {
            for p in sample_packets(v, rich) {
                seeds.push((v, enc(&p, v).to_vec()));
            }
        }
    }
    let mut decoded = 0;
    for _ in 0..100_000 {
        let (v, seed) = &seeds[rng.below(seeds.len())];
        let mut input = seed.clone();
        for _ in 0..1 + rng.below(3) {
            match rng.below(4) {
                // Flip a bit.
                0 => {
                    let i = rng.below(input.len());
                    input[i] ^= 1 << rng.below(8);
                }
                // Replace a byte.
                1 => {
                    let i = rng.below(input.len());
                    input[i] = rng.byte();
                }
                // Cut the tail, then fix up the remaining length so the body decoders
                // see the cut rather than waiting for more.
                2 => {
                    let (_, len_len) = match parse_var_int(&input[1..]) {
                        Ok(Some(x)) => x,
                        _ => continue,
                    };
                    let body_start = 1 + len_len;
                    let cut = body_start + rng.below(input.len() - body_start + 1);
                    input = raw(input[0], &input[body_start..cut]);
                }
                // Insert a byte into the body, fixing up the remaining length.
                _ => {
                    let (_, len_len) = match parse_var_int(&input[1..]) {
                        Ok(Some(x)) => x,
                        _ => continue,
                    };
                    let mut body = input[1 + len_len..].to_vec();
                    let at = rng.below(body.len() + 1);
                    body.insert(at, rng.byte());
                    input = raw(input[0], &body);
                }
            }
        }
        if check(&input, *v, 0) {
            decoded += 1;
        }
        for other in VERSIONS {
            check(&input, other, 0);
        }
    }
    assert!(decoded > 1_000, "only {decoded} mutants decoded");
}
