//! The unit text positions and lengths count, the same for both document kinds
//! ([`TextUnit`], chosen by `StoreOptions::text_unit`), and conversions between units.

/// What a text position or length counts.
///
/// The default is [`TextUnit::UnicodeScalar`]: one unit per Unicode scalar value (a Rust
/// `char`), so no position can fall inside a character. [`TextUnit::Utf16`] counts UTF-16
/// code units, as JavaScript strings (and Yjs) do; a position between the two halves of a
/// surrogate pair is refused. Combining marks count as characters of their own in both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TextUnit {
    /// Unicode scalar values (code points other than surrogates): Rust's `char`.
    #[default]
    UnicodeScalar,
    /// UTF-16 code units: JavaScript's `String.length`.
    Utf16,
}

impl TextUnit {
    /// The length of `text` in this unit.
    pub fn len_of(self, text: &str) -> usize {
        match self {
            TextUnit::UnicodeScalar => text.chars().count(),
            TextUnit::Utf16 => text.encode_utf16().count(),
        }
    }

    /// The byte offset in `text` of position `pos` in this unit, or `None` when `pos` is
    /// past the end or inside a character.
    pub fn byte_offset(self, text: &str, pos: usize) -> Option<usize> {
        let mut units = 0usize;
        for (byte, c) in text.char_indices() {
            if units == pos {
                return Some(byte);
            }
            units += self.width(c);
            if units > pos {
                return None;
            }
        }
        (units == pos).then_some(text.len())
    }

    /// How many units one character takes.
    pub fn width(self, c: char) -> usize {
        match self {
            TextUnit::UnicodeScalar => 1,
            TextUnit::Utf16 => c.len_utf16(),
        }
    }

    /// The part of `text` between positions `start` and `end` (in this unit), or `None`
    /// when the range is reversed, past the end or cuts a character.
    pub fn slice(self, text: &str, start: usize, end: usize) -> Option<&str> {
        if start > end {
            return None;
        }
        let from = self.byte_offset(text, start)?;
        let to = from + self.byte_offset(&text[from..], end - start)?;
        Some(&text[from..to])
    }

    /// The name used in options and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            TextUnit::UnicodeScalar => "scalar",
            TextUnit::Utf16 => "utf16",
        }
    }
}

impl std::str::FromStr for TextUnit {
    type Err = String;

    fn from_str(s: &str) -> Result<TextUnit, String> {
        match s {
            "scalar" | "unicode" | "char" => Ok(TextUnit::UnicodeScalar),
            "utf16" | "utf-16" => Ok(TextUnit::Utf16),
            other => Err(format!("unknown text unit {other:?} (scalar or utf16)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TextUnit;

    #[test]
    fn offsets_and_slices_in_both_units() {
        let s = "a👋e\u{301}b";
        assert_eq!(TextUnit::UnicodeScalar.len_of(s), 5);
        assert_eq!(TextUnit::Utf16.len_of(s), 6);
        assert_eq!(TextUnit::UnicodeScalar.slice(s, 1, 2), Some("👋"));
        assert_eq!(TextUnit::Utf16.slice(s, 1, 3), Some("👋"));
        assert_eq!(TextUnit::Utf16.slice(s, 2, 3), None);
        assert_eq!(TextUnit::UnicodeScalar.slice(s, 2, 4), Some("e\u{301}"));
        assert_eq!(TextUnit::UnicodeScalar.slice(s, 4, 6), None);
    }
}
