//! Reconnect delays: exponential backoff with jitter drawn from an injected random source,
//! so that production draws from the OS and tests replay a seeded sequence.

use std::time::Duration;

/// Where the jitter comes from.
pub trait RandomSource {
    /// A uniformly distributed 32-bit number.
    fn next_u32(&mut self) -> u32;
}

/// The operating system's random source (`getrandom`; in a browser, `crypto`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        let _ = getrandom::fill(&mut b);
        u32::from_le_bytes(b)
    }
}

/// A deterministic source (SplitMix64) for tests and simulations: the same seed gives the
/// same delays.
#[derive(Debug, Clone)]
pub struct SeededRandom(u64);

impl SeededRandom {
    pub fn new(seed: u64) -> SeededRandom {
        SeededRandom(seed)
    }
}

impl RandomSource for SeededRandom {
    fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 32) as u32
    }
}

/// Reconnect delays: exponential from `initial` to `max`, each drawn uniformly from
/// `[delay/2, delay]` (jitter) so that many devices do not reconnect in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The delay before reconnect attempt `attempt` (0-based), without jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        self.initial
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max)
    }

    /// The delay before reconnect attempt `attempt` (0-based): within
    /// `[ceiling/2, ceiling]`, drawn from `random`.
    pub fn delay(&self, attempt: u32, random: &mut impl RandomSource) -> Duration {
        let frac = 0.5 + (random.next_u32() as f64 / u32::MAX as f64) / 2.0;
        self.ceiling(attempt).mul_f64(frac)
    }
}
