//! Room membership and the paths around mixing: prompt passthrough, RFC 6464 skipped decodes,
//! the soft limiter, application endpoints, recorder timelines, removal mid-sequence, full
//! input and output queues, and the RTP headers the room stamps on what it sends.

mod room_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mediabot::media::codec::{CodecBackend, EncoderConfig};
use mediabot::media::frame::{AudioFrame, RTP_TICKS_PER_FRAME};
use mediabot::media::member::{Member, MemberKind};
use mediabot::media::packet::AudioLevel;
use mediabot::media::prompt::{PlayMode, Prompt};
use mediabot::media::recorder::{RecordEntry, RecordStream, RecorderConfig, TimelineCheck};
use mediabot::media::room::{MemberId, Room, RoomConfig, RoomError, RoomId};
use room_support::{TICK, concat, correlation_at, find_lag, leg, level_of, speech, three_voices};

fn room() -> Room {
    Room::new(RoomId(7), RoomConfig::default()).expect("room")
}

fn greeting() -> Arc<Prompt> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/media/greeting-16k.wav");
    Arc::new(
        Prompt::from_wav_file(path, CodecBackend::default(), &EncoderConfig::default())
            .expect("prompt loads"),
    )
}

#[test]
fn prompt_alone_is_sent_pre_encoded_without_any_encode() {
    let prompt = greeting();
    let mut room = room();
    room.add_member(Member::prompt(MemberId(1), prompt.clone(), PlayMode::Once))
        .unwrap();
    let (a, mut pa) = leg(2, 8);
    let (b, mut pb) = leg(3, 8);
    room.add_member(a).unwrap();
    room.add_member(b).unwrap();
    let t0 = Instant::now();
    let n = prompt.len_frames();
    for tick in 0..n + 10 {
        room.tick(t0 + TICK * tick as u32);
        pa.listen();
        pb.listen();
    }
    // Every pre-encoded packet, in order, byte for byte, to both listeners; then nothing.
    for peer in [&pa, &pb] {
        assert_eq!(peer.received.len(), n);
        for (got, want) in peer.received.iter().zip(prompt.packets()) {
            assert_eq!(&got.payload, want);
        }
    }
    let stats = room.stats();
    assert_eq!(stats.encodes, 0);
    assert_eq!(stats.decodes, 0);
    assert_eq!(stats.passthrough_ticks, n as u64);
    assert_eq!(stats.packets_sent, 2 * n as u64);
    match room.member(MemberId(1)).unwrap().kind() {
        MemberKind::Prompt(p) => assert!(p.is_finished()),
        other => panic!("not a prompt: {other:?}"),
    }
}

#[test]
fn prompt_mixed_with_a_talker_is_encoded_and_heard_by_the_talker() {
    let ticks = 150;
    let voice = speech("caller-48k.wav", ticks);
    let prompt = greeting();
    let mut room = room();
    room.add_member(Member::prompt(MemberId(1), prompt.clone(), PlayMode::Loop))
        .unwrap();
    let (talker, mut pt) = leg(2, 8);
    let (listener, mut pl) = leg(3, 8);
    room.add_member(talker).unwrap();
    room.add_member(listener).unwrap();
    let t0 = Instant::now();
    for (tick, frame) in voice.iter().enumerate() {
        let now = t0 + TICK * tick as u32;
        pt.say(frame, None, now);
        room.tick(now);
        pt.listen();
        pl.listen();
    }
    let stats = room.stats();
    assert!(stats.passthrough_ticks < ticks as u64, "{stats:?}");
    assert!(stats.shared_encodes > 0 && stats.personal_encodes > 0);
    // The talker hears the prompt, not itself.
    let prompt_pcm = concat(&prompt.frames()[..ticks]);
    let lag = find_lag(&prompt_pcm, &pt.heard_signal(), 4_000);
    assert!(correlation_at(&prompt_pcm, &pt.heard_signal(), lag) > 0.5);
    assert!(correlation_at(&concat(&voice), &pt.heard_signal(), lag).abs() < 0.1);
    // The listener hears both.
    assert!(correlation_at(&prompt_pcm, &pl.heard_signal(), lag) > 0.3);
}

#[test]
fn rfc6464_silent_senders_are_not_decoded() {
    let ticks = 100;
    let voice = speech("caller2-48k.wav", ticks);
    let mut room = room();
    let (talker, mut pt) = leg(1, 8);
    let (quiet, mut pq) = leg(2, 8);
    let (listener, mut pl) = leg(3, 8);
    for m in [talker, quiet, listener] {
        room.add_member(m).unwrap();
    }
    let silence = AudioFrame::silence();
    let silent = Some(AudioLevel {
        level: 127,
        voice: false,
    });
    let t0 = Instant::now();
    for (tick, frame) in voice.iter().enumerate() {
        let now = t0 + TICK * tick as u32;
        pt.say(frame, Some(level_of(frame)), now);
        pq.say(&silence, silent, now);
        room.tick(now);
        pl.listen();
    }
    let count = |id| match room.member(MemberId(id)).unwrap().kind() {
        MemberKind::CallLeg(leg) => *leg.counters(),
        other => panic!("not a leg: {other:?}"),
    };
    let quiet = count(2);
    assert_eq!(quiet.decodes, 0);
    // Every packet played was skipped (the jitter buffer holds back the first tick or two).
    let played = ticks as u64 - quiet.silent_ticks - quiet.concealments;
    assert_eq!(quiet.skipped_decodes, played);
    assert!(played >= ticks as u64 - 3, "{quiet:?}");
    let talker = count(1);
    assert!(talker.decodes > 50, "{talker:?}");
    // The talker's own silent frames (level 127 between words, after the hangover) are
    // skipped too; everything it played was either decoded or skipped.
    assert_eq!(
        talker.decodes + talker.skipped_decodes + talker.silent_ticks + talker.concealments,
        ticks as u64
    );
    assert_eq!(
        room.stats().skipped_decodes,
        quiet.skipped_decodes + talker.skipped_decodes
    );
    // And the listener still hears the talker.
    let lag = find_lag(&concat(&voice), &pl.heard_signal(), 4_000);
    assert!(correlation_at(&concat(&voice), &pl.heard_signal(), lag) > 0.8);
}

#[test]
fn soft_limiter_never_wraps_loud_sums() {
    // Three application endpoints shout full-scale, in phase: the raw sum reaches ±3.0.
    let mut room = room();
    let mut shouters = Vec::new();
    for id in 1..=3 {
        let (m, app) = Member::app_endpoint(MemberId(id), 4).unwrap();
        room.add_member(m).unwrap();
        shouters.push(app);
    }
    let (ear, mut ear_app) = Member::app_endpoint(MemberId(9), 4).unwrap();
    room.add_member(ear).unwrap();
    let (leg_member, mut peer) = leg(10, 8);
    room.add_member(leg_member).unwrap();
    let mut loud = AudioFrame::silence();
    for (i, s) in loud.samples.iter_mut().enumerate() {
        *s = (std::f32::consts::TAU * i as f32 / 96.0).sin().signum() * 0.99;
    }
    let t0 = Instant::now();
    for tick in 0..20 {
        for app in &mut shouters {
            assert!(app.send(&loud));
        }
        room.tick(t0 + TICK * tick);
        peer.listen();
        let heard = ear_app.recv().expect("one frame per tick");
        for (h, x) in heard.samples.iter().zip(loud.samples.iter()) {
            assert!(h.abs() <= 1.0, "{h}");
            assert_eq!(h.signum(), x.signum(), "wrapped");
            assert!(h.abs() > 0.95, "limited too hard: {h}");
        }
        // A shouter hears the other two, limited too.
        let own = shouters[0].recv().expect("one frame per tick");
        assert!(own.samples.iter().all(|h| h.abs() <= 1.0));
    }
    // The call leg's decoded stream is the same square wave, not its wrapped inverse.
    let heard = peer.heard_signal();
    let src: Vec<f32> = (0..20).flat_map(|_| loud.samples).collect();
    let lag = find_lag(&src[..9_600], &heard[..9_600], 1_000);
    assert!(correlation_at(&src, &heard, lag) > 0.8);
}

#[test]
fn app_endpoint_hears_others_but_not_itself() {
    let ticks = 120;
    let [a, b, _] = three_voices(ticks);
    let mut room = room();
    let (bot, mut bot_app) = Member::app_endpoint(MemberId(1), 4).unwrap();
    room.add_member(bot).unwrap();
    let (caller, mut peer) = leg(2, 8);
    room.add_member(caller).unwrap();
    let t0 = Instant::now();
    let mut bot_heard = Vec::new();
    for tick in 0..ticks {
        let now = t0 + TICK * tick as u32;
        bot_app.send(&a[tick]);
        peer.say(&b[tick], None, now);
        room.tick(now);
        peer.listen();
        bot_heard.push(bot_app.recv().expect("a frame every tick"));
    }
    assert!(bot_app.recv().is_none());
    let (a, b, bot_heard) = (concat(&a), concat(&b), concat(&bot_heard));
    let lag = find_lag(&b, &bot_heard, 4_000);
    assert!(correlation_at(&b, &bot_heard, lag) > 0.9);
    assert!(correlation_at(&a, &bot_heard, lag).abs() < 0.1);
    let lag = find_lag(&a, &peer.heard_signal(), 4_000);
    let c = correlation_at(&a, &peer.heard_signal(), lag);
    // Below the 0.9 of a steady stream: the leg switches between its own encoder (while it
    // talks) and the shared one, and each switch costs the far decoder a few milliseconds.
    assert!(c > 0.8, "{c} at {lag}");
}

#[test]
fn echo_member_plays_its_source_back_after_the_delay() {
    let ticks = 60;
    let [a, b, _] = three_voices(ticks);
    let mut room = room();
    let (source, mut source_app) = Member::app_endpoint(MemberId(1), 4).unwrap();
    room.add_member(source).unwrap();
    let (other, mut other_app) = Member::app_endpoint(MemberId(2), 4).unwrap();
    room.add_member(other).unwrap();
    room.add_member(Member::echo(
        MemberId(3),
        MemberId(1),
        Duration::from_millis(60),
    ))
    .unwrap();
    // An echo of a member that is not in the room plays silence.
    room.add_member(Member::echo(
        MemberId(4),
        MemberId(99),
        Duration::from_millis(60),
    ))
    .unwrap();
    let t0 = Instant::now();
    let mut echoed = Vec::new();
    for tick in 0..ticks {
        source_app.send(&a[tick]);
        other_app.send(&b[tick]);
        room.tick(t0 + TICK * tick as u32);
        echoed.push(room.member(MemberId(3)).unwrap().frame().samples);
        let orphan = room.member(MemberId(4)).unwrap().frame();
        assert!(orphan.samples.iter().all(|&s| s == 0.0), "tick {tick}");
        while source_app.recv().is_some() {}
        while other_app.recv().is_some() {}
    }
    // The source's own frames, exactly, three ticks late; never the other member's or the mix.
    for (tick, frame) in echoed.iter().enumerate() {
        let expected = if tick < 3 {
            AudioFrame::silence().samples
        } else {
            a[tick - 3].samples
        };
        assert!(frame == &expected, "tick {tick}");
    }
    match room.member(MemberId(3)).unwrap().kind() {
        MemberKind::Echo(echo) => {
            assert_eq!(echo.frames(), ticks as u64);
            assert_eq!(echo.delay().delay_ticks(), 3);
            assert_eq!(echo.source(), MemberId(1));
        }
        other => panic!("not an echo: {other:?}"),
    }
}

#[test]
fn recorder_emits_exactly_one_entry_per_stream_per_tick() {
    let ticks = 60u64;
    let voice = speech("caller-48k.wav", ticks as usize);
    let mut room = room();
    let (talker, mut pt) = leg(1, 8);
    room.add_member(talker).unwrap();
    let (rec, mut events) = Member::recorder(
        MemberId(50),
        &RecorderConfig {
            legs: vec![MemberId(1), MemberId(2)],
            mix: true,
            capacity: 3 * ticks as usize,
        },
    );
    room.add_member(rec).unwrap();
    let t0 = Instant::now();
    for tick in 0..ticks {
        let now = t0 + TICK * tick as u32;
        // Lose every 10th packet; member 2 never joins.
        if tick % 10 == 5 {
            pt.lose();
        } else {
            pt.say(&voice[tick as usize], None, now);
        }
        room.tick(now);
    }
    let mut check = TimelineCheck::new();
    let (mut packets, mut gaps, mut absent, mut mixes) = (0, 0, 0, 0);
    while let Ok(ev) = events.pop() {
        assert_eq!(check.observe(&ev), Ok(0), "gap or repeat at {ev:?}");
        match (ev.stream, ev.entry) {
            (RecordStream::Leg(MemberId(1)), RecordEntry::Packet { payload, .. }) => {
                assert!(!payload.is_empty());
                packets += 1;
            }
            (RecordStream::Leg(MemberId(1)), RecordEntry::Concealed | RecordEntry::Fec) => {
                gaps += 1
            }
            (RecordStream::Leg(MemberId(1)), RecordEntry::Silence) => {}
            (RecordStream::Leg(MemberId(2)), RecordEntry::Absent) => absent += 1,
            (RecordStream::Mix, RecordEntry::Mixed(_)) => mixes += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    for stream in [
        RecordStream::Leg(MemberId(1)),
        RecordStream::Leg(MemberId(2)),
        RecordStream::Mix,
    ] {
        assert_eq!(check.ticks(stream), ticks);
    }
    assert_eq!((absent, mixes), (ticks, ticks));
    assert!(packets >= 50 && gaps >= 5, "{packets} packets, {gaps} gaps");
    assert_eq!(check.lost(), 0);
}

#[test]
fn recorder_overflow_is_counted_and_visible_as_a_tick_gap() {
    let mut room = room();
    let (rec, mut events) = Member::recorder(
        MemberId(50),
        &RecorderConfig {
            legs: vec![],
            mix: true,
            capacity: 4,
        },
    );
    room.add_member(rec).unwrap();
    let t0 = Instant::now();
    for tick in 0..10 {
        room.tick(t0 + TICK * tick);
    }
    let mut check = TimelineCheck::new();
    while let Ok(ev) = events.pop() {
        check.observe(&ev).unwrap();
    }
    room.tick(t0 + TICK * 10);
    let last = events.pop().expect("room for one more");
    assert_eq!(last.tick, 10);
    assert_eq!(check.observe(&last), Ok(6));
    assert_eq!(room.stats().output_dropped, 6);
    assert_eq!(check.ticks(RecordStream::Mix), 11);
}

#[test]
fn member_removed_mid_sequence_leaves_the_room_consistent() {
    let ticks = 80;
    let voices = three_voices(ticks);
    let mut room = room();
    let mut peers = Vec::new();
    for id in 1..=4 {
        let (m, p) = leg(id, 16);
        room.add_member(m).unwrap();
        peers.push(p);
    }
    let t0 = Instant::now();
    let mut removed = None;
    for tick in 0..ticks {
        let now = t0 + TICK * tick as u32;
        for (i, (peer, voice)) in peers.iter_mut().zip(&voices).enumerate() {
            if removed.is_none() || i != 0 {
                peer.say(&voice[tick], None, now);
            }
        }
        if tick == 40 {
            // Member 1 is a speaker and its queue holds this tick's packet (and more).
            peers[0].say(&voices[0][tick], None, now);
            let mut ids = [MemberId(0); 3];
            let n = room.speakers(&mut ids);
            assert!(ids[..n].contains(&MemberId(1)), "{:?}", &ids[..n]);
            let m = room.remove_member(MemberId(1)).expect("present");
            assert_eq!(m.id(), MemberId(1));
            assert!(room.remove_member(MemberId(1)).is_none());
            assert_eq!(room.stats().members, 3);
            removed = Some(m);
        }
        room.tick(now);
        for peer in &mut peers {
            peer.listen();
        }
        let mut ids = [MemberId(0); 3];
        let n = room.speakers(&mut ids);
        if removed.is_some() {
            assert!(!ids[..n].contains(&MemberId(1)));
        }
    }
    // The removed member still holds its unread packets; it is dropped here, off the room.
    drop(removed);
    // Speakers 2 and 3 kept hearing each other after the removal; the listener heard both.
    let tail = |v: &Vec<AudioFrame>| concat(&v[45..]);
    let (s2, s3) = (tail(&voices[1]), tail(&voices[2]));
    let listener = concat(&peers[3].heard[45..]);
    let lag = find_lag(&s2, &listener, 4_000);
    assert!(correlation_at(&s2, &listener, lag) > 0.3);
    assert!(correlation_at(&s3, &listener, lag) > 0.3);
    assert!(correlation_at(&concat(&voices[0][45..]), &listener, lag).abs() < 0.1);
    assert!(correlation_at(&s3, &concat(&peers[1].heard[45..]), lag) > 0.5);
    // The slot is reusable, even with the same id.
    let (again, _p) = leg(1, 4);
    room.add_member(again).unwrap();
    assert_eq!(room.stats().members, 4);
    assert_eq!(room.stats().removed, 1);
}

#[test]
fn full_or_duplicate_adds_are_refused_and_returned() {
    let config = RoomConfig {
        max_members: 2,
        max_speakers: 2,
        ..RoomConfig::default()
    };
    let mut room = Room::new(RoomId(1), config).unwrap();
    let (a, _pa) = leg(1, 4);
    let (dup, _pd) = leg(1, 4);
    let (b, _pb) = leg(2, 4);
    let (c, _pc) = leg(3, 4);
    room.add_member(a).unwrap();
    assert_eq!(room.add_member(dup).unwrap_err().id(), MemberId(1));
    room.add_member(b).unwrap();
    assert_eq!(room.add_member(c).unwrap_err().id(), MemberId(3));
    assert_eq!(room.stats().refused, 2);
    assert!(!room.is_idle());
    room.remove_member(MemberId(1));
    room.remove_member(MemberId(2));
    assert!(room.is_idle());
    let bad = RoomConfig {
        max_speakers: 0,
        ..RoomConfig::default()
    };
    assert!(matches!(
        Room::new(RoomId(2), bad),
        Err(RoomError::InvalidConfig(_))
    ));
}

#[test]
fn five_hundred_packets_in_one_tick_are_a_counted_drop() {
    let mut room = room();
    let (m, mut peer) = leg(1, 64);
    room.add_member(m).unwrap();
    let (l, mut listener) = leg(2, 64);
    room.add_member(l).unwrap();
    let voice = speech("caller-48k.wav", 500);
    let t0 = Instant::now();
    let accepted = voice.iter().filter(|f| peer.say(f, None, t0)).count();
    assert_eq!(accepted, 64);
    assert_eq!(peer.port.dropped(), 436);
    for tick in 0..100 {
        room.tick(t0 + TICK * tick);
        listener.listen();
    }
    match room.member(MemberId(1)).unwrap().kind() {
        MemberKind::CallLeg(leg) => assert_eq!(leg.counters().received, 64),
        other => panic!("not a leg: {other:?}"),
    }
    // The room kept working: later packets still flow.
    for tick in 100..110 {
        let now = t0 + TICK * tick;
        peer.say(&voice[tick as usize], None, now);
        room.tick(now);
        listener.listen();
    }
    assert!(room.stats().decodes > 0);
}

#[test]
fn full_output_queue_drops_and_counts_without_spending_sequence_numbers() {
    let mut room = room();
    let (talker, mut pt) = leg(1, 8);
    let (listener, mut pl) = leg(2, 4);
    room.add_member(talker).unwrap();
    room.add_member(listener).unwrap();
    let voice = speech("caller-48k.wav", 60);
    let t0 = Instant::now();
    for (tick, frame) in voice.iter().enumerate() {
        let now = t0 + TICK * tick as u32;
        pt.say(frame, None, now);
        room.tick(now);
        // The listener's transport stalls for ticks 10..30.
        if !(10..30).contains(&tick) {
            pl.listen();
        }
    }
    let counters = match room.member(MemberId(2)).unwrap().kind() {
        MemberKind::CallLeg(leg) => *leg.counters(),
        other => panic!("not a leg: {other:?}"),
    };
    assert!(counters.output_dropped >= 15, "{counters:?}");
    assert_eq!(room.stats().output_dropped, counters.output_dropped);
    // Sequence numbers stay contiguous across the drop; the timestamp jumps and the first
    // packet after the gap carries the marker.
    let rx = &pl.received;
    let mut jumps = 0;
    for w in rx.windows(2) {
        assert_eq!(w[1].meta.seq, w[0].meta.seq.wrapping_add(1));
        let dt = w[1].meta.timestamp.wrapping_sub(w[0].meta.timestamp);
        assert_eq!(dt % RTP_TICKS_PER_FRAME, 0);
        if dt > RTP_TICKS_PER_FRAME {
            assert!(w[1].meta.marker, "marker after a gap");
            jumps += 1;
        } else {
            assert!(!w[1].meta.marker);
        }
    }
    assert_eq!(jumps, 1);
}

#[test]
fn outbound_rtp_headers_follow_rfc3550() {
    // A talker who pauses: the listener gets nothing during the pause (nobody speaks).
    let mut room = room();
    let (talker, mut pt) = leg(1, 8);
    let (listener, mut pl) = leg(2, 8);
    room.add_member(talker).unwrap();
    room.add_member(listener).unwrap();
    let voice = speech("caller-48k.wav", 40);
    let t0 = Instant::now();
    let mut sent_ticks = Vec::new();
    for tick in 0..100u32 {
        let now = t0 + TICK * tick;
        if !(40..70).contains(&tick) {
            pt.say(&voice[tick as usize % 40], None, now);
        }
        room.tick(now);
        let before = pl.received.len();
        pl.listen();
        if pl.received.len() > before {
            sent_ticks.push(tick);
        }
    }
    let rx = &pl.received;
    assert!(rx.len() < 100 && rx.len() > 50, "{}", rx.len());
    let config = room_support::leg_config(2);
    assert!(rx.iter().all(|p| p.meta.ssrc == config.ssrc));
    assert!(rx[0].meta.marker);
    for (i, p) in rx.iter().enumerate() {
        assert_eq!(p.meta.seq, config.initial_seq.wrapping_add(i as u16));
        // +960 per tick since the leg joined, sent or not (wraps around u32).
        let expect = config
            .initial_timestamp
            .wrapping_add(sent_ticks[i] * RTP_TICKS_PER_FRAME);
        assert_eq!(p.meta.timestamp, expect);
        let after_gap = i > 0 && sent_ticks[i] != sent_ticks[i - 1] + 1;
        assert_eq!(p.meta.marker, i == 0 || after_gap, "packet {i}");
        assert!(!p.payload.is_empty());
    }
    assert!(
        rx.iter().skip(1).any(|p| p.meta.marker),
        "one talk spurt restart"
    );
}

#[test]
fn lost_packets_are_rebuilt_from_fec_and_garbage_is_concealed() {
    let ticks = 120;
    let voice = speech("caller-48k.wav", ticks);
    let mut room = room();
    let fec = EncoderConfig {
        inband_fec: true,
        expected_loss_pct: 20,
        ..EncoderConfig::default()
    };
    let (m, port) =
        Member::call_leg_with_port(MemberId(1), &room_support::leg_config(1), 8).expect("leg");
    let mut talker = room_support::Peer::with_encoder(1, port, &fec);
    room.add_member(m).unwrap();
    let (g, mut garbler) = leg(2, 8);
    room.add_member(g).unwrap();
    let (l, mut listener) = leg(3, 8);
    room.add_member(l).unwrap();
    // Code-3 TOC with a frame count of 0: invalid (RFC 6716 §3.2.5).
    let garbage = mediabot::media::packet::OpusPacket::from_slice(&[0xfb, 0x00]).unwrap();
    let t0 = Instant::now();
    for (tick, frame) in voice.iter().enumerate() {
        let now = t0 + TICK * tick as u32;
        if tick % 10 == 4 {
            talker.lose();
        } else {
            talker.say(frame, None, now);
        }
        garbler.send_payload(garbage, None, now);
        room.tick(now);
        listener.listen();
    }
    let counters = |id| match room.member(MemberId(id)).unwrap().kind() {
        MemberKind::CallLeg(leg) => *leg.counters(),
        other => panic!("not a leg: {other:?}"),
    };
    let t = counters(1);
    assert!(t.fec_decodes >= 5, "{t:?}");
    let g = counters(2);
    assert_eq!(g.decodes, 0);
    assert!(g.decode_errors >= ticks as u64 - 3, "{g:?}");
    assert_eq!(g.decode_errors, room.stats().decode_errors);
    // The listener hears the talker through the losses.
    let lag = find_lag(&concat(&voice), &listener.heard_signal(), 4_000);
    let c = correlation_at(&concat(&voice), &listener.heard_signal(), lag);
    let garbler_active = room.member(MemberId(2)).unwrap().active_ticks();
    // Lower than a clean path: a frame in ten is FEC-rebuilt, FEC takes bits from the 32 kbit/s,
    // and the jitter buffer's delay moves while it adapts to the losses.
    assert!(
        c > 0.5,
        "{c} at {lag}; garbler active {garbler_active} ticks"
    );
    assert_eq!(garbler_active, 0);
}
