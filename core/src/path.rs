//! Paths into a document: `"/todos/0/title"` or `"todos/0/title"`.
//!
//! Segments are separated by `/`; a segment made only of digits indexes a list (or text).
//! `~1` and `~0` escape `/` and `~` inside a key, as in JSON Pointer.

use crate::error::Error;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

impl Segment {
    /// The segment as a map key, whether or not it looked like a number.
    pub fn as_key(&self) -> String {
        match self {
            Segment::Key(k) => k.clone(),
            Segment::Index(i) => i.to_string(),
        }
    }
}

/// A parsed path. The empty path names the document root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub raw: String,
    pub segments: Vec<Segment>,
}

impl Path {
    pub fn parse(raw: &str) -> Result<Path, Error> {
        let trimmed = raw.strip_prefix('/').unwrap_or(raw);
        let mut segments = Vec::new();
        if !trimmed.is_empty() {
            for part in trimmed.split('/') {
                if part.is_empty() {
                    return Err(Error::InvalidPath {
                        path: raw.to_string(),
                        reason: "empty segment".into(),
                    });
                }
                let is_index = part.bytes().all(|b| b.is_ascii_digit());
                segments.push(match (is_index, part.parse::<usize>()) {
                    (true, Ok(i)) => Segment::Index(i),
                    _ if part.contains('~') => {
                        Segment::Key(part.replace("~1", "/").replace("~0", "~"))
                    }
                    _ => Segment::Key(part.to_string()),
                });
            }
        }
        Ok(Path {
            raw: raw.to_string(),
            segments,
        })
    }

    /// Splits into (parent segments, last segment); errors on the root path.
    pub fn split_last(&self) -> Result<(&[Segment], &Segment), Error> {
        match self.segments.split_last() {
            Some((last, parent)) => Ok((parent, last)),
            None => Err(self.error("this edit needs a path below the root")),
        }
    }

    pub fn error(&self, reason: impl Into<String>) -> Error {
        Error::InvalidPath {
            path: self.raw.clone(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys_indexes_and_escapes() {
        let p = Path::parse("/todos/0/a~1b").unwrap();
        assert_eq!(
            p.segments,
            vec![
                Segment::Key("todos".into()),
                Segment::Index(0),
                Segment::Key("a/b".into())
            ]
        );
        assert_eq!(Path::parse("").unwrap().segments, vec![]);
        assert_eq!(Path::parse("/").unwrap().segments, vec![]);
        assert!(Path::parse("a//b").is_err());
    }
}
