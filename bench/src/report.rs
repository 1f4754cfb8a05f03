//! Presenting results: aligned text tables for people, JSON for machines, and the
//! number formats both use.

use std::fmt::Write as _;

use serde_json::Value;

/// A titled table: leading label columns aligned left, figures aligned right, notes
/// underneath.
pub struct Table {
    pub title: String,
    pub headers: Vec<String>,
    /// How many leading columns are labels.
    pub labels: usize,
    pub rows: Vec<Vec<String>>,
    pub notes: Vec<String>,
}

impl Table {
    pub fn new(title: impl Into<String>, headers: &[&str]) -> Table {
        Table {
            title: title.into(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            labels: 1,
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Sets how many leading columns are labels (aligned left); the default is 1.
    pub fn with_labels(mut self, labels: usize) -> Table {
        self.labels = labels;
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.headers.len());
        self.rows.push(cells);
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Markdown-compatible rendering: a pipe table that also reads well in a terminal.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| r[c].chars().count())
                    .chain([self.headers[c].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let mut s = String::from("|");
            for (c, cell) in cells.iter().enumerate() {
                if c < self.labels {
                    let _ = write!(s, " {cell:<w$} |", w = widths[c]);
                } else {
                    let _ = write!(s, " {cell:>w$} |", w = widths[c]);
                }
            }
            s
        };
        let mut out = format!("### {}\n\n", self.title);
        out.push_str(&line(&self.headers));
        out.push('\n');
        out.push('|');
        for (c, w) in widths.iter().enumerate() {
            let dashes = "-".repeat(*w);
            if c < self.labels {
                let _ = write!(out, " {dashes} |");
            } else {
                let _ = write!(out, " {}: |", &dashes[1..]);
            }
        }
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }
}

/// Prints the tables for people and, with `json`, the data for machines. When JSON goes to
/// stdout the tables go to stderr, so `concord-bench ... --json > out.json` stays parseable.
pub fn emit(tables: &[Table], data: &Value, json: bool) {
    let text: String = tables.iter().map(|t| t.render() + "\n").collect();
    if json {
        eprint!("{text}");
        println!(
            "{}",
            serde_json::to_string_pretty(data).expect("JSON values serialize")
        );
    } else {
        print!("{text}");
    }
}

/// A rate with thousands separators, e.g. `12,345`.
pub fn rate(per_sec: f64) -> String {
    if per_sec >= 100.0 {
        thousands(per_sec.round() as u64)
    } else {
        format!("{per_sec:.1}")
    }
}

pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

pub fn secs(s: f64) -> String {
    if s >= 10.0 {
        format!("{s:.1}")
    } else if s >= 0.1 {
        format!("{s:.2}")
    } else {
        format!("{s:.3}")
    }
}

pub fn millis(s: f64) -> String {
    let ms = s * 1e3;
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 1.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.3}")
    }
}

pub fn micros(us: f64) -> String {
    if us >= 100.0 {
        thousands(us.round() as u64)
    } else {
        format!("{us:.1}")
    }
}

/// Bytes as MiB, KiB or B, whichever reads best.
pub fn bytes(b: u64) -> String {
    if b >= 1024 * 1024 {
        format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
    } else if b >= 1024 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{b} B")
    }
}

pub fn kib(k: Option<u64>) -> String {
    match k {
        Some(k) => bytes(k * 1024),
        None => "n/a".into(),
    }
}

/// CPU seconds: `/proc` counts in 10 ms ticks, so two decimals are all there is.
pub fn cpu_secs(s: Option<f64>) -> String {
    match s {
        Some(s) if s >= 10.0 => format!("{s:.1}"),
        Some(s) => format!("{s:.2}"),
        None => "n/a".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn renders_aligned_table() {
        let mut t = Table::new("T", &["what", "n"]);
        t.row(vec!["a".into(), "10".into()]);
        let s = t.render();
        assert!(s.contains("| what |  n |"));
        assert!(s.contains("| a    | 10 |"));
    }
}
