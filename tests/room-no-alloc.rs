//! A loaded room ticks 1,000 times without allocating or freeing: three talkers (one losing
//! every 7th packet, one sending RFC 6464 levels), three listeners, a looping prompt, an
//! application endpoint, a recorder tap, an echo, a full output queue, and a member removed and
//! added back mid-run.
//!
//! A counting global allocator counts allocations and frees made by this thread while the
//! measurement runs. Packets are encoded before it starts (the far ends are not the room).

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
mod room_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mediabot::media::codec::{CodecBackend, EncoderConfig, OpusEncoder};
use mediabot::media::frame::{AudioFrame, RTP_TICKS_PER_FRAME};
use mediabot::media::member::Member;
use mediabot::media::packet::{OpusPacket, RtpMeta, RtpPacket};
use mediabot::media::prompt::{PlayMode, Prompt};
use mediabot::media::recorder::RecorderConfig;
use mediabot::media::room::{MemberId, Room, RoomConfig, RoomId};
use room_support::{TICK, leg, level_of, three_voices};

#[global_allocator]
static GLOBAL: counting_alloc::CountingAlloc = counting_alloc::CountingAlloc;

const TICKS: usize = 1_000;

#[test]
fn loaded_room_ticks_without_allocating() {
    let voices = three_voices(500);
    let mut enc = OpusEncoder::new(CodecBackend::default(), &EncoderConfig::default()).unwrap();
    let packets: Vec<Vec<OpusPacket>> = voices
        .iter()
        .map(|v| {
            v.iter()
                .map(|f| {
                    let mut p = OpusPacket::EMPTY;
                    enc.encode(f, &mut p).unwrap();
                    p
                })
                .collect()
        })
        .collect();
    let levels: Vec<_> = voices[1].iter().map(level_of).collect();
    let prompt = Arc::new(
        Prompt::from_wav_file(
            concat!(env!("CARGO_MANIFEST_DIR"), "/media/greeting-16k.wav"),
            CodecBackend::default(),
            &EncoderConfig::default(),
        )
        .unwrap(),
    );

    let mut room = Room::new(RoomId(1), RoomConfig::default()).unwrap();
    let mut peers = Vec::new();
    for id in 1..=6 {
        let (m, p) = leg(id, 8);
        room.add_member(m).unwrap();
        peers.push(p);
    }
    room.add_member(Member::prompt(MemberId(20), prompt, PlayMode::Loop))
        .unwrap();
    let (bot, mut bot_audio) = Member::app_endpoint(MemberId(21), 4).unwrap();
    room.add_member(bot).unwrap();
    let (rec, mut events) = Member::recorder(
        MemberId(22),
        &RecorderConfig {
            legs: vec![MemberId(1), MemberId(2)],
            mix: true,
            capacity: 64,
        },
    );
    room.add_member(rec).unwrap();
    room.add_member(Member::echo(
        MemberId(23),
        MemberId(1),
        Duration::from_millis(200),
    ))
    .unwrap();
    let bot_voice = AudioFrame::silence();

    let t0 = Instant::now();
    let mut seq = 0u16;
    let mut run = |room: &mut Room, from: usize, to: usize, parked: &mut Option<Box<Member>>| {
        for tick in from..to {
            let now = t0 + TICK * tick as u32;
            for (i, peer) in peers.iter_mut().enumerate().take(3) {
                if i == 0 && tick % 7 == 3 {
                    continue; // lost
                }
                let packet = RtpPacket {
                    meta: RtpMeta {
                        seq,
                        timestamp: u32::from(seq).wrapping_mul(RTP_TICKS_PER_FRAME),
                        ssrc: 0x500 + i as u32,
                        marker: false,
                        audio_level: (i == 1).then(|| levels[tick % levels.len()]),
                    },
                    payload: packets[i][tick % packets[i].len()],
                    arrival: now,
                };
                peer.port.push(packet);
            }
            seq = seq.wrapping_add(1);
            if tick % 3 == 0 {
                bot_audio.send(&bot_voice);
            }
            if tick == from + 300 {
                *parked = room.remove_member(MemberId(2));
            }
            if tick == from + 600
                && let Some(m) = parked.take()
            {
                room.add_member(m).expect("slot free");
            }
            room.tick(now);
            // Listener 6's transport never drains: its queue fills and drops.
            for peer in peers.iter_mut().take(5) {
                while peer.port.pop().is_some() {}
            }
            while bot_audio.recv().is_some() {}
            while events.pop().is_ok() {}
        }
    };
    let mut parked = None;
    run(&mut room, 0, 200, &mut parked); // warm-up
    let ((), counted) = counting_alloc::count(|| run(&mut room, 200, 200 + TICKS, &mut parked));
    let events = counted.total();
    assert_eq!(events, 0, "{events} allocations or frees in {TICKS} ticks");

    // The run exercised what it claims to.
    let st = room.stats();
    assert!(st.decodes > 1_000 && st.skipped_decodes > 0, "{st:?}");
    assert!(st.shared_encodes > 0 && st.personal_encodes > 0, "{st:?}");
    assert!(st.concealments > 0 && st.output_dropped > 0, "{st:?}");
    assert_eq!(st.removed, 1);
    assert_eq!(st.members, 10);
}

#[test]
fn members_and_rooms_can_move_to_a_shard_thread() {
    fn is_send<T: Send>() {}
    is_send::<Box<Member>>();
    is_send::<Room>();
}
