//! Hybrid logical clocks: the timestamps last-writer-wins orders writes by.
//!
//! A timestamp is (physical ms, logical counter, origin). A device's clock ([`HlcClock`])
//! never goes backwards: it issues a timestamp after both its wall clock and every
//! timestamp it has seen, so a write made after seeing another orders after it even on a
//! device whose wall clock is behind. A received timestamp more than the maximum drift
//! ahead of this device's wall clock is *clamped*: the clock advances only to
//! `now + max_drift` (docs/conflicts.md), so one device with a clock far ahead cannot drag
//! every clock into the future. A write still always orders after the values it
//! overwrites, whatever their time. The clock reads no time itself: the caller passes `now`.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

/// A hybrid logical clock timestamp. Ordered by `ms`, then `counter`, then `origin` (the
/// tie-break between devices).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hlc {
    /// Physical time, milliseconds since the Unix epoch (as the writing device saw it).
    pub ms: u64,
    /// Logical counter: orders timestamps within one millisecond.
    pub counter: u32,
    /// The device that wrote (its origin id).
    pub origin: String,
}

impl Ord for Hlc {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ms, self.counter, &self.origin).cmp(&(other.ms, other.counter, &other.origin))
    }
}

impl PartialOrd for Hlc {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Hlc {
    /// The form stored in documents: fixed-width decimals, so text order is time order.
    pub fn encode(&self) -> String {
        format!("{:020}.{:010}.{}", self.ms, self.counter, self.origin)
    }

    /// Parses [`Hlc::encode`]'s form.
    pub fn decode(text: &str) -> Option<Hlc> {
        let mut parts = text.splitn(3, '.');
        let ms = parts.next()?.parse().ok()?;
        let counter = parts.next()?.parse().ok()?;
        let origin = parts.next()?.to_string();
        Some(Hlc {
            ms,
            counter,
            origin,
        })
    }

    fn time(&self) -> ClockState {
        ClockState {
            ms: self.ms,
            counter: self.counter,
        }
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}@{}", self.ms, self.counter, self.origin)
    }
}

/// A clock's position: the latest (ms, counter) it issued or accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClockState {
    pub ms: u64,
    pub counter: u32,
}

impl ClockState {
    /// The position right after this one.
    fn next(self) -> ClockState {
        match self.counter.checked_add(1) {
            Some(counter) => ClockState { counter, ..self },
            None => ClockState {
                ms: self.ms.saturating_add(1),
                counter: 0,
            },
        }
    }

    /// The form kept in a document's clock map: `ms.counter`.
    pub fn encode(self) -> String {
        format!("{}.{}", self.ms, self.counter)
    }

    pub fn decode(text: &str) -> Option<ClockState> {
        let (ms, counter) = text.split_once('.')?;
        Some(ClockState {
            ms: ms.parse().ok()?,
            counter: counter.parse().ok()?,
        })
    }
}

/// The default bound on how far ahead of this device's wall clock a received timestamp
/// may move its clock: 10 minutes.
pub const DEFAULT_MAX_DRIFT_MS: u64 = 10 * 60 * 1000;

/// One device's clock during one edit: its persisted position, the wall-clock time now,
/// the maximum drift, and its origin.
#[derive(Debug, Clone)]
pub struct HlcClock {
    state: ClockState,
    now_ms: u64,
    max_drift_ms: u64,
    origin: String,
    changed: bool,
}

impl HlcClock {
    pub fn new(state: ClockState, now_ms: u64, max_drift_ms: u64, origin: String) -> HlcClock {
        HlcClock {
            state,
            now_ms,
            max_drift_ms,
            origin,
            changed: false,
        }
    }

    /// The position to persist.
    pub fn state(&self) -> ClockState {
        self.state
    }

    /// True when the position moved (it must be persisted).
    pub fn changed(&self) -> bool {
        self.changed
    }

    /// Advances past a received timestamp, but never beyond `now + max_drift` (clamp).
    pub fn observe(&mut self, time: ClockState) {
        let bound = self.now_ms.saturating_add(self.max_drift_ms);
        let time = if time.ms > bound {
            ClockState {
                ms: bound,
                counter: 0,
            }
        } else {
            time
        };
        if time > self.state {
            self.state = time;
            self.changed = true;
        }
    }

    /// A timestamp for a new local write that supersedes `seen`: after this clock, its wall
    /// time and every timestamp in `seen` (even one beyond the drift bound, so a write
    /// always wins over what it overwrote; the clock itself stays clamped).
    pub fn stamp<'a>(&mut self, seen: impl IntoIterator<Item = &'a Hlc>) -> Hlc {
        let mut newest_seen: Option<ClockState> = None;
        for hlc in seen {
            self.observe(hlc.time());
            newest_seen = newest_seen.max(Some(hlc.time()));
        }
        let mut time = if self.now_ms > self.state.ms {
            ClockState {
                ms: self.now_ms,
                counter: 0,
            }
        } else {
            self.state.next()
        };
        if let Some(newest) = newest_seen.filter(|n| time <= *n) {
            time = newest.next();
        }
        self.observe(time);
        Hlc {
            ms: time.ms,
            counter: time.counter,
            origin: self.origin.clone(),
        }
    }
}

/// Where a store gets the wall-clock time (milliseconds since the Unix epoch). Tests and
/// shells inject their own; the default reads the system clock (on `wasm32`, where there
/// is none without JavaScript, it reads 0: the browser shell must inject `Date.now`).
#[derive(Clone)]
pub struct WallClock(Arc<dyn Fn() -> u64 + Send + Sync>);

impl WallClock {
    /// The system clock.
    pub fn system() -> WallClock {
        WallClock(Arc::new(system_now_ms))
    }

    /// A clock that calls `now` for the time.
    pub fn from_fn(now: impl Fn() -> u64 + Send + Sync + 'static) -> WallClock {
        WallClock(Arc::new(now))
    }

    pub fn now_ms(&self) -> u64 {
        (self.0)()
    }
}

impl Default for WallClock {
    fn default() -> Self {
        WallClock::system()
    }
}

impl fmt::Debug for WallClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WallClock")
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn system_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(target_arch = "wasm32")]
fn system_now_ms() -> u64 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hlc(ms: u64, counter: u32, origin: &str) -> Hlc {
        Hlc {
            ms,
            counter,
            origin: origin.into(),
        }
    }

    #[test]
    fn encodes_in_time_order_and_back() {
        let a = hlc(5, 2, "b");
        let b = hlc(40, 0, "a");
        assert!(a < b && a.encode() < b.encode());
        assert_eq!(Hlc::decode(&a.encode()), Some(a));
        assert!(hlc(5, 2, "a") < hlc(5, 2, "b"), "origin breaks ties");
    }

    #[test]
    fn a_clock_behind_still_stamps_after_what_it_saw() {
        let mut clock = HlcClock::new(ClockState::default(), 1_000, 60_000, "slow".into());
        let seen = hlc(50_000, 7, "fast");
        let mine = clock.stamp([&seen]);
        assert!(mine > seen);
        assert_eq!((mine.ms, mine.counter), (50_000, 8));
        let next = clock.stamp([]);
        assert!(next > mine, "the clock keeps what it saw");
    }

    #[test]
    fn a_timestamp_beyond_the_drift_bound_is_clamped_but_still_superseded() {
        let mut clock = HlcClock::new(ClockState::default(), 1_000, 60_000, "me".into());
        let far = hlc(10_000_000, 3, "ahead");
        clock.observe(far.time());
        assert_eq!(
            clock.state(),
            ClockState {
                ms: 61_000,
                counter: 0
            }
        );
        let plain = clock.stamp([]);
        assert_eq!((plain.ms, plain.counter), (61_000, 1));
        let over = clock.stamp([&far]);
        assert!(over > far, "a write beats the value it overwrites");
        assert_eq!(
            clock.state(),
            ClockState {
                ms: 61_000,
                counter: 1
            }
        );
    }
}
