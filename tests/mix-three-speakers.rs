//! Three real voices talk at once through a room of five call legs: each speaker hears the
//! other two but not itself, both listeners hear all three, and the listeners' stream is
//! encoded once per tick and shared (identical bytes to both).
//!
//! Audio is judged by correlation against each source after decoding the Opus the room sent,
//! never by bytes (except for the shared-encode proof, where identical bytes are the point).

mod room_support;

use std::time::Instant;

use mediabot::media::room::{Room, RoomConfig, RoomId};
use room_support::{TICK, concat, correlation_at, find_lag, leg, three_voices};

const TICKS: usize = 250;

#[test]
fn speakers_hear_the_others_not_themselves_and_listeners_hear_all() {
    let voices = three_voices(TICKS);
    let mut room = Room::new(RoomId(1), RoomConfig::default()).expect("room");
    let mut peers = Vec::new();
    for id in 1..=5 {
        let (member, peer) = leg(id, 16);
        room.add_member(member).expect("room has space");
        peers.push(peer);
    }
    let t0 = Instant::now();
    let mut shared_ticks = 0u64;
    for tick in 0..TICKS {
        let now = t0 + TICK * tick as u32;
        for (voice, peer) in voices.iter().zip(peers.iter_mut()) {
            assert!(peer.say(&voice[tick], None, now));
        }
        let shared_before = room.stats().shared_encodes;
        room.tick(now);
        let shared_now = room.stats().shared_encodes - shared_before;
        assert!(shared_now <= 1, "tick {tick}: {shared_now} shared encodes");
        assert!(room.stats().speakers <= 3);
        for peer in &mut peers {
            peer.listen();
        }
        // The two listeners got the same bytes: one encode, shared.
        let (l1, l2) = (&peers[3], &peers[4]);
        let got1 = l1.received.last().filter(|p| p.arrival == now);
        let got2 = l2.received.last().filter(|p| p.arrival == now);
        assert_eq!(got1.is_some(), got2.is_some());
        if let (Some(a), Some(b)) = (got1, got2) {
            assert_eq!(a.payload, b.payload, "tick {tick}");
            assert_ne!(a.meta.ssrc, b.meta.ssrc, "each leg has its own SSRC");
            shared_ticks += 1;
        }
        assert_eq!(shared_now, u64::from(got1.is_some()));
    }

    let stats = *room.stats();
    assert_eq!(stats.shared_encodes, shared_ticks);
    assert!(shared_ticks > 200, "{shared_ticks}");
    assert_eq!(stats.encodes, stats.shared_encodes + stats.personal_encodes);
    // Cost grows with speakers, not listeners: ≤ 3 personal + 1 shared per tick.
    assert!(stats.encodes <= 4 * TICKS as u64);
    assert_eq!(
        stats.encode_errors + stats.decode_errors + stats.output_dropped,
        0
    );

    let sources: Vec<Vec<f32>> = voices.iter().map(|v| concat(v)).collect();
    let heard: Vec<Vec<f32>> = peers.iter().map(|p| p.heard_signal()).collect();
    // The path's delay (jitter buffer + two Opus passes), measured on a listener.
    let lag = find_lag(&sources[1], &heard[3], 6_000);
    assert!((0..6_000).contains(&lag), "lag {lag}");

    for (who, signal) in heard.iter().enumerate() {
        let corr: Vec<f32> = sources
            .iter()
            .map(|s| correlation_at(s, signal, lag))
            .collect();
        for (src, c) in corr.iter().enumerate() {
            if src == who {
                assert!(c.abs() < 0.1, "member {who} hears itself: {corr:?}");
            } else {
                assert!(*c > 0.3, "member {who} misses source {src}: {corr:?}");
            }
        }
    }
}
