//! Editing traces in the editing-traces JSON format (`startContent`, `endContent`, `txns`
//! of `patches` `[position, deleteCount, "inserted"]`, positions in Unicode code points),
//! gzip'd or not: finding them (the automerge-paper trace, Martin Kleppmann, CC BY 4.0, and
//! any other in the shared data directory), parsing, and a compact binary copy for the
//! measured child processes.
//!
//! The JSON form costs tens of MiB once parsed; the child processes read the compact copy
//! instead (a few MiB), so their peak memory is mostly the document under test.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;

/// The trace every run starts with, in the shared data directory, `<repo>/../shared/data/`.
const FILE_NAME: &str = "automerge-paper.json.gz";

/// The traces to run when no `--trace` was given: every trace file (`*.json.gz`, `*.json`)
/// in the first shared data directory found that holds the automerge-paper trace, that one
/// first and the others by name.
pub fn default_paths() -> Result<Vec<PathBuf>> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![manifest.join("../../shared/data")];
    if let Ok(cwd) = std::env::current_dir() {
        dirs.push(cwd.join("../shared/data"));
        dirs.push(cwd.join("shared/data"));
    }
    let Some(dir) = dirs.iter().find(|d| d.join(FILE_NAME).is_file()) else {
        let tried: Vec<String> = dirs
            .iter()
            .map(|d| d.join(FILE_NAME).display().to_string())
            .collect();
        bail!(
            "cannot find the editing trace {FILE_NAME}; tried {}. Pass --trace PATH",
            tried.join(", ")
        )
    };
    let mut others: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            p.is_file()
                && name != FILE_NAME
                && (name.ends_with(".json.gz") || name.ends_with(".json"))
        })
        .collect();
    others.sort();
    let mut paths = vec![dir.join(FILE_NAME)];
    paths.extend(others);
    Ok(paths)
}

/// The trace's name: its file name without `.json` / `.json.gz`.
pub fn name_of(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    name.trim_end_matches(".gz")
        .trim_end_matches(".json")
        .to_string()
}

/// One patch: at `pos` delete `del` characters, then insert `inserted` there.
#[derive(Debug, Clone, Copy)]
pub struct Patch {
    pub pos: u32,
    pub del: u32,
    ins_start: u32,
    ins_len: u32,
}

/// The whole trace, compact: patches in one array, inserted text in one string.
pub struct Trace {
    pub start: String,
    pub end: String,
    /// `txn_ends[i]` is one past the last patch of transaction `i`.
    txn_ends: Vec<u32>,
    patches: Vec<Patch>,
    inserted: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonTrace {
    start_content: String,
    end_content: String,
    txns: Vec<JsonTxn>,
}

#[derive(Deserialize)]
struct JsonTxn {
    patches: Vec<(u64, u64, String)>,
}

const MAGIC: &[u8; 8] = b"CCTRACE1";

impl Trace {
    /// Reads a JSON trace, gzip'd (told by its first bytes, whatever its name) or not.
    pub fn load(path: &Path) -> Result<Trace> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let json = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut json = Vec::new();
            flate2::read::GzDecoder::new(BufReader::new(bytes.as_slice()))
                .read_to_end(&mut json)
                .with_context(|| format!("decompressing {}", path.display()))?;
            json
        } else {
            bytes
        };
        let raw: JsonTrace =
            serde_json::from_slice(&json).with_context(|| format!("parsing {}", path.display()))?;
        let mut trace = Trace {
            start: raw.start_content,
            end: raw.end_content,
            txn_ends: Vec::with_capacity(raw.txns.len()),
            patches: Vec::with_capacity(raw.txns.len()),
            inserted: String::new(),
        };
        for txn in raw.txns {
            for (pos, del, text) in txn.patches {
                let fits = |n: u64| u32::try_from(n).context("trace position does not fit in u32");
                trace.patches.push(Patch {
                    pos: fits(pos)?,
                    del: fits(del)?,
                    ins_start: fits(trace.inserted.len() as u64)?,
                    ins_len: fits(text.len() as u64)?,
                });
                trace.inserted.push_str(&text);
            }
            trace.txn_ends.push(trace.patches.len() as u32);
        }
        Ok(trace)
    }

    /// The most patches any one transaction holds.
    pub fn max_patches_per_txn(&self) -> usize {
        (0..self.txns())
            .map(|i| self.txn(i).len())
            .max()
            .unwrap_or(0)
    }

    pub fn txns(&self) -> usize {
        self.txn_ends.len()
    }

    /// The patches of transaction `i`.
    pub fn txn(&self, i: usize) -> &[Patch] {
        let start = if i == 0 {
            0
        } else {
            self.txn_ends[i - 1] as usize
        };
        &self.patches[start..self.txn_ends[i] as usize]
    }

    /// Number of patches in the first `txns` txns.
    pub fn edits(&self, txns: usize) -> usize {
        if txns == 0 {
            0
        } else {
            self.txn_ends[txns - 1] as usize
        }
    }

    pub fn inserted(&self, patch: &Patch) -> &str {
        let start = patch.ins_start as usize;
        &self.inserted[start..start + patch.ins_len as usize]
    }

    /// The text after the first `txns` transactions: `endContent` for the whole trace,
    /// otherwise the prefix replayed on a plain character array.
    pub fn expected_text(&self, txns: usize) -> Result<String> {
        ensure!(
            txns <= self.txns(),
            "the trace has only {} txns",
            self.txns()
        );
        if txns == self.txns() {
            return Ok(self.end.clone());
        }
        let mut text: Vec<char> = self.start.chars().collect();
        for i in 0..txns {
            for p in self.txn(i) {
                let (pos, del) = (p.pos as usize, p.del as usize);
                ensure!(
                    pos + del <= text.len(),
                    "trace txn {i}: patch {pos}+{del} outside text of length {}",
                    text.len()
                );
                text.splice(pos..pos + del, self.inserted(p).chars());
            }
        }
        Ok(text.into_iter().collect())
    }

    /// Writes the compact binary form (read back by [`Trace::read_compact`]).
    pub fn write_compact(&self, path: &Path) -> Result<()> {
        let mut out = BufWriter::new(std::fs::File::create(path)?);
        out.write_all(MAGIC)?;
        for s in [&self.start, &self.end, &self.inserted] {
            write_u32(&mut out, s.len() as u32)?;
            out.write_all(s.as_bytes())?;
        }
        write_u32(&mut out, self.txn_ends.len() as u32)?;
        for end in &self.txn_ends {
            write_u32(&mut out, *end)?;
        }
        write_u32(&mut out, self.patches.len() as u32)?;
        for p in &self.patches {
            for n in [p.pos, p.del, p.ins_start, p.ins_len] {
                write_u32(&mut out, n)?;
            }
        }
        out.flush()?;
        Ok(())
    }

    pub fn read_compact(path: &Path) -> Result<Trace> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let mut r = Reader {
            bytes: &bytes,
            at: 0,
        };
        ensure!(
            r.take(MAGIC.len())? == MAGIC,
            "{} is not a compact trace",
            path.display()
        );
        let string = |r: &mut Reader<'_>| -> Result<String> {
            let len = r.u32()? as usize;
            Ok(std::str::from_utf8(r.take(len)?)?.to_string())
        };
        let start = string(&mut r)?;
        let end = string(&mut r)?;
        let inserted = string(&mut r)?;
        let n = r.u32()? as usize;
        let txn_ends = (0..n).map(|_| r.u32()).collect::<Result<Vec<_>>>()?;
        let n = r.u32()? as usize;
        let patches = (0..n)
            .map(|_| {
                Ok(Patch {
                    pos: r.u32()?,
                    del: r.u32()?,
                    ins_start: r.u32()?,
                    ins_len: r.u32()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let trace = Trace {
            start,
            end,
            txn_ends,
            patches,
            inserted,
        };
        ensure!(
            trace.txn_ends.last().map_or(0, |e| *e as usize) == trace.patches.len(),
            "corrupt compact trace {}",
            path.display()
        );
        Ok(trace)
    }
}

fn write_u32(out: &mut impl Write, n: u32) -> Result<()> {
    out.write_all(&n.to_le_bytes())?;
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let Some(slice) = self.bytes.get(self.at..self.at + n) else {
            bail!("compact trace ends early");
        };
        self.at += n;
        Ok(slice)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("took 4 bytes"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Trace {
        let json = r#"{"startContent":"ab","endContent":"xb!","txns":[
            {"time":"t","patches":[[0,1,"x"]]},
            {"patches":[[2,0,"!"],[1,0,""]]}]}"#;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(json.as_bytes()).unwrap();
        gz.finish().unwrap();
        Trace::load(&path).unwrap()
    }

    #[test]
    fn parses_and_replays() {
        let t = tiny();
        assert_eq!(t.txns(), 2);
        assert_eq!(t.edits(2), 3);
        assert_eq!(t.inserted(&t.txn(1)[0]), "!");
        assert_eq!(t.expected_text(1).unwrap(), "xb");
        assert_eq!(t.expected_text(2).unwrap(), "xb!");
    }

    #[test]
    fn compact_round_trip() {
        let t = tiny();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.bin");
        t.write_compact(&path).unwrap();
        let back = Trace::read_compact(&path).unwrap();
        assert_eq!(back.txns(), 2);
        assert_eq!(back.end, "xb!");
        assert_eq!(back.expected_text(2).unwrap(), "xb!");
    }
}
