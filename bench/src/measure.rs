//! Measuring a process from the inside (or another process by its pid): wall time, CPU
//! time, peak memory, file sizes, the machine's load average, and latency percentiles.
//!
//! Memory and CPU come from Linux's `/proc/self`; on other systems they read as `None`.

use std::path::Path;
use std::time::{Duration, Instant};

/// Peak resident set size of this process so far (`VmHWM`), in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    status_field("self", "VmHWM:")
}

/// Current resident set size of this process (`VmRSS`), in KiB.
pub fn rss_kib() -> Option<u64> {
    status_field("self", "VmRSS:")
}

/// Peak resident set size (`VmHWM`) of process `pid`, in KiB.
pub fn peak_rss_kib_of(pid: u32) -> Option<u64> {
    status_field(&pid.to_string(), "VmHWM:")
}

/// `/proc/loadavg`'s 1, 5 and 15 minute load averages, as `uptime` prints them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn status_field(pid: &str, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(name))?;
    line[name.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// User + system CPU time this process has used so far.
pub fn cpu_time() -> Option<Duration> {
    cpu_time_at("self")
}

/// User + system CPU time process `pid` has used so far.
pub fn cpu_time_of(pid: u32) -> Option<Duration> {
    cpu_time_at(&pid.to_string())
}

fn cpu_time_at(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; the fields after it are plain.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) sit at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // /proc reports clock ticks of USER_HZ, which Linux fixes at 100 for user space.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Wall and CPU time of a stretch of work.
pub struct Span {
    wall: Instant,
    cpu: Option<Duration>,
}

/// What a [`Span`] measured.
#[derive(Debug, Clone, Copy)]
pub struct Elapsed {
    pub wall: Duration,
    /// `None` where `/proc` is unavailable.
    pub cpu: Option<Duration>,
}

impl Span {
    pub fn start() -> Span {
        Span {
            wall: Instant::now(),
            cpu: cpu_time(),
        }
    }

    pub fn stop(&self) -> Elapsed {
        let wall = self.wall.elapsed();
        let cpu = match (self.cpu, cpu_time()) {
            (Some(before), Some(after)) => Some(after.saturating_sub(before)),
            _ => None,
        };
        Elapsed { wall, cpu }
    }
}

/// Size of a file in bytes, 0 if it does not exist.
pub fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Sizes of an SQLite database and its WAL and shared-memory files.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct SqliteFiles {
    pub db: u64,
    pub wal: u64,
    pub shm: u64,
}

impl SqliteFiles {
    pub fn of(db: &Path) -> SqliteFiles {
        let with_suffix = |suffix: &str| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            file_size(Path::new(&name))
        };
        SqliteFiles {
            db: file_size(db),
            wal: with_suffix("-wal"),
            shm: with_suffix("-shm"),
        }
    }

    pub fn total(&self) -> u64 {
        self.db + self.wal + self.shm
    }
}

/// Latency percentiles of a set of samples.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct Latency {
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

impl Latency {
    pub fn of(samples: &mut [Duration]) -> Latency {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() - 1) as f64 * q).round() as usize;
            micros(samples[i])
        };
        Latency {
            p50_us: at(0.50),
            p99_us: at(0.99),
            max_us: micros(samples[samples.len() - 1]),
        }
    }
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_readings_are_plausible() {
        // The high-water mark read later is never below the resident size read earlier.
        let rss = rss_kib().unwrap();
        assert!(peak_rss_kib().unwrap() >= rss);
        assert!(cpu_time().is_some());
        let me = std::process::id();
        assert!(cpu_time_of(me).is_some());
        assert!(peak_rss_kib_of(me).unwrap() >= rss);
        assert_eq!(load_average().split(' ').count(), 3);
    }

    #[test]
    fn percentiles_pick_sorted_samples() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let l = Latency::of(&mut samples);
        assert_eq!(l.max_us.round(), 100.0);
        assert_eq!(l.p50_us.round(), 51.0);
        assert_eq!(l.p99_us.round(), 99.0);
    }
}
