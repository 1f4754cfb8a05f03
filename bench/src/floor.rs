//! The floor under a quorum commit on this machine, measured in the same run as the
//! commits: fsync latency (a 4 KiB write then `fdatasync`, in a directory of the file system
//! the nodes' data dirs live on; appending, and overwriting in place) and the loopback TCP
//! round trip (64 bytes each way, Nagle off, blocking sockets on two threads).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::measure::Latency;

/// 4 KiB, SQLite's page size here.
const BLOCK: usize = 4096;

/// What one floor measurement found.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Floor {
    /// Append a block to a growing file, then `fdatasync` (size changes too).
    pub fsync_append: Latency,
    /// Overwrite a block of a preallocated, synced file, then `fdatasync`.
    pub fsync_overwrite: Latency,
    pub tcp_rtt: Latency,
}

/// Measures `samples` of each, with the files in a fresh directory under `dir`.
pub fn measure(dir: &Path, samples: usize) -> Result<Floor> {
    let tmp = tempfile::Builder::new()
        .prefix("fsync-probe")
        .tempdir_in(dir)
        .with_context(|| format!("a directory in {}", dir.display()))?;
    Ok(Floor {
        fsync_append: fsync_append(&tmp.path().join("append"), samples)?,
        fsync_overwrite: fsync_overwrite(&tmp.path().join("overwrite"), samples)?,
        tcp_rtt: tcp_round_trip(samples)?,
    })
}

/// Only the overwrite fsync, `samples` times, in a fresh directory under `dir`.
pub fn measure_fsync(dir: &Path, samples: usize) -> Result<Latency> {
    let tmp = tempfile::Builder::new()
        .prefix("fsync-probe")
        .tempdir_in(dir)?;
    fsync_overwrite(&tmp.path().join("overwrite"), samples)
}

fn fsync_append(path: &Path, samples: usize) -> Result<Latency> {
    let mut f = File::create(path)?;
    f.sync_all()?;
    let block = [7u8; BLOCK];
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        f.write_all(&block)?;
        f.sync_data()?;
        times.push(t.elapsed());
    }
    Ok(Latency::of(&mut times))
}

fn fsync_overwrite(path: &Path, samples: usize) -> Result<Latency> {
    const BLOCKS: usize = 256;
    let mut f = File::create(path)?;
    f.write_all(&vec![0u8; BLOCK * BLOCKS])?;
    f.sync_all()?;
    let block = [9u8; BLOCK];
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples {
        let t = Instant::now();
        f.seek(SeekFrom::Start(((i % BLOCKS) * BLOCK) as u64))?;
        f.write_all(&block)?;
        f.sync_data()?;
        times.push(t.elapsed());
    }
    Ok(Latency::of(&mut times))
}

fn tcp_round_trip(samples: usize) -> Result<Latency> {
    const SIZE: usize = 64;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = [0u8; SIZE];
        // Ends when the client closes (read_exact fails); bounded by the client's count.
        while s.read_exact(&mut buf).is_ok() {
            s.write_all(&buf)?;
        }
        Ok(())
    });
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [1u8; SIZE];
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        s.write_all(&buf)?;
        s.read_exact(&mut buf)?;
        times.push(t.elapsed());
    }
    drop(s);
    let _ = echo.join();
    Ok(Latency::of(&mut times))
}
