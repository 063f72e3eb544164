//! Heart-beats: EOLs between frames are reported so the broker can track liveness; the
//! `heart-beat` header is parsed and negotiated as the spec says.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::run;
use warren_stomp_codec::{
    decode, encode, encode_heartbeat, negotiate_heartbeat, Command, Decoded, Error, Frame,
    HeartBeat, HeartBeatIntervals, Limits, Version,
};

#[test]
fn lone_eols_are_heartbeats() {
    let out = run(b"\n\r\n\n", Version::V1_2);
    assert_eq!(out.items, vec![Decoded::Heartbeat; 3]);
    assert_eq!(out.left, 0);
}

#[test]
fn heartbeats_between_frames() {
    let out = run(b"\nSEND\n\na\0\n\r\nSEND\n\nb\0\n\n", Version::V1_2);
    assert_eq!(out.error, None);
    let kinds: Vec<&str> = out
        .items
        .iter()
        .map(|d| match d {
            Decoded::Heartbeat => "hb",
            Decoded::Frame(_) => "frame",
        })
        .collect();
    assert_eq!(kinds, ["hb", "frame", "hb", "hb", "frame", "hb", "hb"]);
}

#[test]
fn cr_alone_waits_for_its_lf() {
    let limits = Limits::default();
    let mut buf = BytesMut::from(&b"\r"[..]);
    assert_eq!(decode(&mut buf, Version::V1_2, &limits), Ok(None));
    assert_eq!(buf.len(), 1);
    buf.extend_from_slice(b"\n");
    assert_eq!(
        decode(&mut buf, Version::V1_2, &limits),
        Ok(Some(Decoded::Heartbeat))
    );
    assert!(buf.is_empty());
    let mut buf = BytesMut::from(&b"\r\r"[..]);
    assert_eq!(
        decode(&mut buf, Version::V1_2, &limits),
        Err(Error::UnexpectedCr)
    );
}

#[test]
fn heartbeat_encoding_is_one_lf() {
    let mut buf = BytesMut::new();
    encode_heartbeat(&mut buf);
    assert_eq!(&buf[..], b"\n");
}

#[test]
fn encoded_frames_end_with_nul_and_lf() {
    // The trailing LF reads back as a heart-beat.
    let mut buf = BytesMut::new();
    encode(&Frame::new(Command::Receipt), Version::V1_2, &mut buf).unwrap();
    assert_eq!(&buf[..], b"RECEIPT\n\n\0\n");
    assert_eq!(run(&buf, Version::V1_2).heartbeats(), 1);
}

#[test]
fn heart_beat_header_parses() {
    assert_eq!(HeartBeat::parse(b"0,0"), Ok(HeartBeat::NONE));
    assert_eq!(
        HeartBeat::parse(b"10000,5000"),
        Ok(HeartBeat::new(10000, 5000))
    );
    assert_eq!(HeartBeat::parse(b" 10 , 20 "), Ok(HeartBeat::new(10, 20)));
    for bad in [
        &b""[..],
        b"10",
        b"10,",
        b",10",
        b"1,2,3",
        b"-1,0",
        b"a,b",
        b"1.5,2",
        b"99999999999999999999,0",
    ] {
        assert!(HeartBeat::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(HeartBeat::new(4000, 0).to_header_value(), "4000,0");
}

#[test]
fn heart_beat_negotiation_follows_the_spec() {
    // The client can send every 4 s and wants every 6 s; the server can send every 5 s
    // and wants every 3 s. Each direction runs at the slower of offer and wish.
    let client = HeartBeat::new(4000, 6000);
    let server = HeartBeat::new(5000, 3000);
    // Server side: sends at max(5000, 6000), expects at max(4000, 3000).
    assert_eq!(
        negotiate_heartbeat(server, client),
        HeartBeatIntervals {
            send: Some(Duration::from_millis(6000)),
            receive: Some(Duration::from_millis(4000)),
        }
    );
    // The client side sees the mirror image.
    assert_eq!(
        negotiate_heartbeat(client, server),
        HeartBeatIntervals {
            send: Some(Duration::from_millis(4000)),
            receive: Some(Duration::from_millis(6000)),
        }
    );
}

#[test]
fn heart_beat_zero_on_either_side_disables_that_direction() {
    let client = HeartBeat::new(0, 1000);
    let server = HeartBeat::new(500, 0);
    let i = negotiate_heartbeat(server, client);
    assert_eq!(i.send, Some(Duration::from_millis(1000)));
    assert_eq!(i.receive, None, "client cannot send");
    assert_eq!(
        negotiate_heartbeat(HeartBeat::NONE, HeartBeat::new(10, 10)),
        HeartBeatIntervals::default()
    );
}

#[test]
fn rabbitmq_reply_rounds_to_whole_seconds() {
    assert_eq!(
        HeartBeat::rabbitmq_reply(HeartBeat::new(0, 0)),
        HeartBeat::NONE
    );
    // Client sends every 10 s and wants every 5 s: RabbitMQ sends every 5 s and expects
    // every 10 s.
    assert_eq!(
        HeartBeat::rabbitmq_reply(HeartBeat::new(10000, 5000)),
        HeartBeat::new(5000, 10000)
    );
    assert_eq!(
        HeartBeat::rabbitmq_reply(HeartBeat::new(1, 1500)),
        HeartBeat::new(1000, 1000)
    );
}
