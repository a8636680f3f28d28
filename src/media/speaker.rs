//! Who is talking: per-input voice activity and the room's top-K speaker selection.
//!
//! [`VoiceDetector`] decides, once per tick, whether one input is active. It works from the
//! decoded frame's energy ([`VoiceDetector::observe_frame`]) or, when the sender put an
//! RFC 6464 audio level in the RTP header, from that level alone
//! ([`VoiceDetector::observe_level`]) — which lets the room skip decoding silent senders.
//! Activity is held for a hangover after the last loud frame so word gaps do not cut a talker.
//!
//! [`SpeakerSelector`] picks at most K active inputs per tick. Selection is sticky: a selected
//! input keeps its place while it stays active, free places go to the loudest newcomers, and a
//! newcomer displaces the quietest selected input only when it is louder by a margin
//! (hysteresis), at most one swap per tick. Inputs with priority (the bot's own prompt) are
//! taken before everyone else.
//!
//! # Realtime Safety
//! Both types allocate only in their constructors; per-tick methods never allocate.

use crate::media::frame::AudioFrame;
use crate::media::packet::AudioLevel;

/// Tuning of a [`VoiceDetector`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VoiceConfig {
    /// Absolute threshold in dBov: quieter frames are never speech.
    pub threshold_dbov: f32,
    /// Margin above the tracked noise floor a frame needs to count as speech, in dB.
    pub noise_margin_db: f32,
    /// Ticks (20 ms each) activity is held after the last speech frame.
    pub hangover_ticks: u32,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        Self {
            threshold_dbov: -45.0,
            noise_margin_db: 9.0,
            // 200 ms: longer than JVB's 150 ms energy expiry, covers most word gaps.
            hangover_ticks: 10,
        }
    }
}

/// Energy voice-activity detector with hangover, for one input.
#[derive(Clone, Debug)]
pub struct VoiceDetector {
    config: VoiceConfig,
    noise_floor_dbov: f32,
    smoothed_dbov: f32,
    hangover: u32,
}

impl VoiceDetector {
    /// A detector that starts silent.
    pub fn new(config: VoiceConfig) -> Self {
        Self {
            config,
            noise_floor_dbov: SILENT_DBOV,
            smoothed_dbov: SILENT_DBOV,
            hangover: 0,
        }
    }

    /// Feeds one decoded frame; returns whether the input is active this tick.
    pub fn observe_frame(&mut self, frame: &AudioFrame) -> bool {
        self.observe_dbov(frame.level_dbov())
    }

    /// Feeds an RFC 6464 level (the V bit is not trusted: many senders always set it or never
    /// do); returns whether the input is active this tick.
    pub fn observe_level(&mut self, level: AudioLevel) -> bool {
        self.observe_dbov(-f32::from(level.level.min(127)))
    }

    /// Feeds a tick with no audio at all (silence or nothing received).
    pub fn observe_silence(&mut self) -> bool {
        self.observe_dbov(SILENT_DBOV)
    }

    /// Would a frame at `dbov` count as speech, given the current noise floor?
    pub fn is_speech_level(&self, dbov: f32) -> bool {
        dbov >= self.config.threshold_dbov
            && dbov >= self.noise_floor_dbov + self.config.noise_margin_db
    }

    /// Feeds a level in dBov; returns whether the input is active this tick.
    pub fn observe_dbov(&mut self, dbov: f32) -> bool {
        let dbov = if dbov.is_nan() {
            SILENT_DBOV
        } else {
            dbov.clamp(SILENT_DBOV, 0.0)
        };
        let speech = self.is_speech_level(dbov);
        // Noise floor: follows drops at once, rises slowly (1 % of the gap per tick, at least
        // 2.5 dB/s), so steady noise is learnt within seconds but a talker, whose level dips
        // between syllables, is not.
        if dbov < self.noise_floor_dbov {
            self.noise_floor_dbov = dbov;
        } else {
            let rise = (FLOOR_RISE_FRACTION * (dbov - self.noise_floor_dbov)).max(FLOOR_RISE_DB);
            self.noise_floor_dbov = (self.noise_floor_dbov + rise).min(dbov);
        }
        // Loudness score: fast attack, slow release.
        let k = if dbov > self.smoothed_dbov { 0.5 } else { 0.1 };
        self.smoothed_dbov += k * (dbov - self.smoothed_dbov);
        if speech {
            self.hangover = self.config.hangover_ticks;
            true
        } else if self.hangover > 0 {
            self.hangover -= 1;
            true
        } else {
            false
        }
    }

    /// Whether the detector is still active (speech or hangover) without feeding a new tick.
    pub fn is_active(&self) -> bool {
        self.hangover > 0
    }

    /// Smoothed loudness in dBov, the ranking score for top-K selection.
    pub fn score(&self) -> f32 {
        self.smoothed_dbov
    }

    /// Forgets all history (used when an input is reset).
    pub fn reset(&mut self) {
        *self = Self::new(self.config);
    }
}

/// One input's state for this tick, as seen by the [`SpeakerSelector`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Activity {
    /// The input has a frame to mix and its detector says it is active.
    pub active: bool,
    /// Ranking score (higher is louder), usually [`VoiceDetector::score`].
    pub score: f32,
    /// Taken before all non-priority inputs (the bot's own prompt).
    pub priority: bool,
}

impl Activity {
    /// An input with nothing to contribute this tick.
    pub const IDLE: Self = Self {
        active: false,
        score: SILENT_DBOV,
        priority: false,
    };
}

/// Sticky top-K selection over input slots `0..inputs`.
#[derive(Clone, Debug)]
pub struct SpeakerSelector {
    k: usize,
    margin_db: f32,
    selected: Vec<usize>,
    is_selected: Vec<bool>,
}

impl SpeakerSelector {
    /// A selector for `inputs` slots choosing at most `k` (allocates both tables now).
    pub fn new(inputs: usize, k: usize) -> Self {
        Self {
            k,
            margin_db: SWAP_MARGIN_DB,
            selected: Vec::with_capacity(k),
            is_selected: vec![false; inputs],
        }
    }

    /// Maximum number of speakers.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Chooses this tick's speakers from `activity` (indexed by slot; slots past the
    /// selector's size are ignored) and returns their slots in stable order.
    pub fn update(&mut self, activity: &[Activity]) -> &[usize] {
        let n = activity.len().min(self.is_selected.len());
        // 1. Drop speakers that went quiet (or whose slot vanished).
        let is_selected = &mut self.is_selected;
        self.selected.retain(|&slot| {
            let keep = slot < n && activity[slot].active;
            if !keep {
                is_selected[slot] = false;
            }
            keep
        });
        // 2. Priority inputs come first: they may displace the quietest non-priority speaker.
        while let Some(best) = self.best_candidate(activity, n, true) {
            if self.selected.len() < self.k {
                self.take(best);
            } else if let Some(pos) = self.weakest(activity, false) {
                self.replace(pos, best);
            } else {
                break;
            }
        }
        // 3. Fill free places with the loudest newcomers.
        while self.selected.len() < self.k {
            match self.best_candidate(activity, n, false) {
                Some(best) => self.take(best),
                None => break,
            }
        }
        // 4. Hysteresis: one swap per tick, only if clearly louder.
        if let (Some(best), Some(pos)) = (
            self.best_candidate(activity, n, false),
            self.weakest(activity, false),
        ) {
            let weakest = self.selected[pos];
            if activity[best].score > activity[weakest].score + self.margin_db {
                self.replace(pos, best);
            }
        }
        &self.selected
    }

    /// The current speakers' slots, in stable order.
    pub fn selected(&self) -> &[usize] {
        &self.selected
    }

    /// Whether `slot` is currently a speaker.
    pub fn is_selected(&self, slot: usize) -> bool {
        self.is_selected.get(slot).copied().unwrap_or(false)
    }

    /// Removes `slot` from the selection (its member left the room).
    pub fn forget(&mut self, slot: usize) {
        if let Some(flag) = self.is_selected.get_mut(slot) {
            *flag = false;
        }
        self.selected.retain(|&s| s != slot);
    }

    fn take(&mut self, slot: usize) {
        self.selected.push(slot);
        self.is_selected[slot] = true;
    }

    fn replace(&mut self, pos: usize, slot: usize) {
        self.is_selected[self.selected[pos]] = false;
        self.selected[pos] = slot;
        self.is_selected[slot] = true;
    }

    /// Loudest active, unselected input; with `priority_only`, among priority inputs only.
    fn best_candidate(
        &self,
        activity: &[Activity],
        n: usize,
        priority_only: bool,
    ) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (slot, a) in activity[..n].iter().enumerate() {
            if !a.active || self.is_selected[slot] || (priority_only && !a.priority) {
                continue;
            }
            if best.is_none_or(|b| a.score > activity[b].score) {
                best = Some(slot);
            }
        }
        best
    }

    /// Position (in `selected`) of the quietest selected input; priority inputs only if
    /// `include_priority`.
    fn weakest(&self, activity: &[Activity], include_priority: bool) -> Option<usize> {
        let mut weakest: Option<usize> = None;
        for (pos, &slot) in self.selected.iter().enumerate() {
            if activity[slot].priority && !include_priority {
                continue;
            }
            if weakest.is_none_or(|w| activity[slot].score < activity[self.selected[w]].score) {
                weakest = Some(pos);
            }
        }
        weakest
    }
}

/// The quietest level RFC 6464 can express, used for silence.
pub const SILENT_DBOV: f32 = -127.0;
/// Minimum noise-floor rise per tick in dB (~2.5 dB/s).
const FLOOR_RISE_DB: f32 = 0.05;
/// Noise-floor rise per tick as a fraction of the gap to the current level.
const FLOOR_RISE_FRACTION: f32 = 0.01;
/// How much louder a newcomer must be to displace a selected speaker.
const SWAP_MARGIN_DB: f32 = 6.0;

#[cfg(test)]
mod tests {
    use super::*;

    fn act(active: bool, score: f32) -> Activity {
        Activity {
            active,
            score,
            priority: false,
        }
    }

    #[test]
    fn hangover_holds_activity_then_releases() {
        let mut vad = VoiceDetector::new(VoiceConfig::default());
        assert!(!vad.observe_dbov(-127.0));
        assert!(vad.observe_dbov(-20.0));
        for _ in 0..10 {
            assert!(vad.observe_silence());
        }
        assert!(!vad.observe_silence());
    }

    #[test]
    fn rfc6464_levels_drive_activity() {
        let mut vad = VoiceDetector::new(VoiceConfig::default());
        let silent = AudioLevel {
            level: 127,
            voice: true,
        };
        assert!(!vad.observe_level(silent));
        assert!(vad.observe_level(AudioLevel {
            level: 25,
            voice: false
        }));
    }

    #[test]
    fn steady_noise_is_learnt_as_floor() {
        let mut vad = VoiceDetector::new(VoiceConfig::default());
        let mut active_ticks = 0;
        for _ in 0..1000 {
            if vad.observe_dbov(-40.0) {
                active_ticks += 1;
            }
        }
        // Noise just above the threshold: active at first, then learnt as floor.
        assert!(active_ticks < 500, "{active_ticks}");
        assert!(!vad.observe_dbov(-40.0));
        assert!(vad.observe_dbov(-15.0));
    }

    #[test]
    fn selects_loudest_k_and_keeps_order() {
        let mut sel = SpeakerSelector::new(6, 3);
        let mut a = [Activity::IDLE; 6];
        a[1] = act(true, -30.0);
        a[4] = act(true, -20.0);
        assert_eq!(sel.update(&a), &[4, 1]);
        a[0] = act(true, -25.0);
        a[2] = act(true, -26.0);
        // Fill the free place with the louder newcomer; existing order kept.
        assert_eq!(sel.update(&a), &[4, 1, 0]);
        // Slightly louder newcomer: no swap (hysteresis).
        a[2] = act(true, -27.0);
        a[1] = act(true, -31.0);
        assert_eq!(sel.update(&a), &[4, 1, 0]);
        // Much louder newcomer replaces the quietest in place.
        a[2] = act(true, -10.0);
        assert_eq!(sel.update(&a), &[4, 2, 0]);
        assert!(!sel.is_selected(1));
        // A speaker going quiet frees its place.
        a[4] = Activity::IDLE;
        assert_eq!(sel.update(&a), &[2, 0, 1]);
        sel.forget(0);
        assert_eq!(sel.selected(), &[2, 1]);
        assert!(!sel.is_selected(0));
    }

    #[test]
    fn priority_input_is_always_taken() {
        let mut sel = SpeakerSelector::new(4, 2);
        let mut a = [
            act(true, -10.0),
            act(true, -12.0),
            Activity::IDLE,
            Activity::IDLE,
        ];
        assert_eq!(sel.update(&a), &[0, 1]);
        a[3] = Activity {
            active: true,
            score: -60.0,
            priority: true,
        };
        assert_eq!(sel.update(&a), &[0, 3]);
        // Never displaced by louder talkers.
        a[2] = act(true, 0.0);
        let got = sel.update(&a).to_vec();
        assert!(got.contains(&3), "{got:?}");
    }
}
