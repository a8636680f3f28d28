//! Packet-loss models for the network emulator: uniform loss and Gilbert–Elliott bursts.
//!
//! The Gilbert–Elliott model is a two-state Markov chain. In the *good* state packets are lost
//! with a small probability, in the *bad* state with a large one; the chain moves between the
//! states once per packet. Long stays in the bad state produce the loss bursts that real access
//! networks (Wi-Fi, cellular handovers) show and that uniform loss never does.

use super::rng::Rng;

/// Parameters of a Gilbert–Elliott two-state loss channel (per packet).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GilbertElliott {
    /// Probability of moving from the good to the bad state before a packet.
    pub p_good_to_bad: f64,
    /// Probability of moving from the bad to the good state before a packet.
    pub p_bad_to_good: f64,
    /// Loss probability while in the good state.
    pub loss_good: f64,
    /// Loss probability while in the bad state.
    pub loss_bad: f64,
}

impl GilbertElliott {
    /// The classic Gilbert channel: no loss in the good state, every packet lost in the bad
    /// one, tuned so that on average `mean_loss` of the packets are lost in bursts of
    /// `mean_burst` packets (`mean_loss` in `[0, 1)`, `mean_burst` ≥ 1).
    pub fn bursty(mean_loss: f64, mean_burst: f64) -> Self {
        let loss = mean_loss.clamp(0.0, 0.999);
        let p_bad_to_good = 1.0 / mean_burst.max(1.0);
        // Stationary share of the bad state: p_gb / (p_gb + p_bg) = loss.
        let p_good_to_bad = loss * p_bad_to_good / (1.0 - loss);
        Self {
            p_good_to_bad,
            p_bad_to_good,
            loss_good: 0.0,
            loss_bad: 1.0,
        }
    }

    /// Long-run fraction of packets this channel loses.
    pub fn mean_loss(&self) -> f64 {
        let denom = self.p_good_to_bad + self.p_bad_to_good;
        if denom <= 0.0 {
            return self.loss_good;
        }
        let bad = self.p_good_to_bad / denom;
        bad * self.loss_bad + (1.0 - bad) * self.loss_good
    }
}

/// The running state of a Gilbert–Elliott channel.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LossState {
    bad: bool,
}

impl LossState {
    /// Steps the chain once and says whether this packet is lost.
    pub(crate) fn lose(&mut self, model: &GilbertElliott, rng: &mut Rng) -> bool {
        let flip = if self.bad {
            model.p_bad_to_good
        } else {
            model.p_good_to_bad
        };
        if rng.chance(flip) {
            self.bad = !self.bad;
        }
        rng.chance(if self.bad {
            model.loss_bad
        } else {
            model.loss_good
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursty_channel_hits_its_mean_loss_in_bursts() {
        let model = GilbertElliott::bursty(0.1, 4.0);
        assert!((model.mean_loss() - 0.1).abs() < 1e-9);
        let mut rng = Rng::new(42);
        let mut state = LossState::default();
        let n = 200_000;
        let lost: Vec<bool> = (0..n).map(|_| state.lose(&model, &mut rng)).collect();
        let total = lost.iter().filter(|l| **l).count();
        let rate = total as f64 / n as f64;
        assert!((rate - 0.1).abs() < 0.01, "loss rate {rate}");
        // Mean burst length: lost packets / bursts started.
        let bursts = lost.windows(2).filter(|w| !w[0] && w[1]).count();
        let mean_burst = total as f64 / bursts as f64;
        assert!((mean_burst - 4.0).abs() < 0.4, "mean burst {mean_burst}");
    }
}
