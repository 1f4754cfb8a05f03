//! Code-point positions as UTF-16 offsets, for the raw Yrs rows. Editing traces count
//! positions in Unicode code points (as Automerge and Concord's default text unit do); Yrs,
//! configured as Concord configures it (UTF-16 offsets, as Yjs), counts UTF-16 code units.
//! They differ by one for every character outside the Basic Multilingual Plane (an emoji)
//! before the position. An app on raw Yrs that takes code-point positions has to keep track
//! of where those characters are: this is that bookkeeping, and the raw rows pay for it.
//! A trace without such characters never touches it beyond one emptiness check.

/// The code-point positions of the characters outside the BMP in the current text, sorted.
#[derive(Debug, Default)]
pub struct AstralPositions {
    at: Vec<u32>,
}

/// A patch in UTF-16 code units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utf16Patch {
    pub pos: u32,
    pub del: u32,
}

fn is_astral(c: char) -> bool {
    c.len_utf16() > 1
}

impl AstralPositions {
    /// The positions in `text`.
    pub fn of(text: &str) -> AstralPositions {
        let mut positions = AstralPositions::default();
        positions.splice(0, 0, text);
        positions
    }

    /// The UTF-16 form of "at code point `pos` delete `del` code points, insert `ins`",
    /// and the positions updated to the text after it.
    pub fn splice(&mut self, pos: u32, del: u32, ins: &str) -> Utf16Patch {
        let inserted_astral = ins.chars().any(is_astral);
        if self.at.is_empty() && !inserted_astral {
            return Utf16Patch { pos, del };
        }
        let before = self.at.partition_point(|&p| p < pos);
        let end = self.at.partition_point(|&p| p < pos + del);
        let patch = Utf16Patch {
            pos: pos + before as u32,
            del: del + (end - before) as u32,
        };
        let inserted = ins.chars().count() as u32;
        let new: Vec<u32> = ins
            .chars()
            .enumerate()
            .filter(|(_, c)| is_astral(*c))
            .map(|(i, _)| pos + i as u32)
            .collect();
        let shift = |p: u32| p + inserted - del;
        let after: Vec<u32> = self.at[end..].iter().map(|&p| shift(p)).collect();
        self.at.truncate(before);
        self.at.extend(new);
        self.at.extend(after);
        patch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The UTF-16 offset of code point `pos` in `text`.
    fn utf16_at(text: &str, pos: usize) -> u32 {
        text.chars().take(pos).map(|c| c.len_utf16() as u32).sum()
    }

    #[test]
    fn matches_a_string_model_with_emoji_and_combining_marks() {
        let pieces = ["a", "😀", "e\u{301}", "🇫🇷", "xyz", "", "𝄞b", "ü"];
        let mut text: Vec<char> = "start 🙂 here".chars().collect();
        let mut positions = AstralPositions::of(&text.iter().collect::<String>());
        let mut seed = 7u64;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as usize) % n.max(1)
        };
        for _ in 0..2_000 {
            let pos = next(text.len() + 1);
            let del = next(4).min(text.len() - pos);
            let ins = pieces[next(pieces.len())];
            let before: String = text.iter().collect();
            let want = Utf16Patch {
                pos: utf16_at(&before, pos),
                del: utf16_at(&before, pos + del) - utf16_at(&before, pos),
            };
            assert_eq!(positions.splice(pos as u32, del as u32, ins), want);
            text.splice(pos..pos + del, ins.chars());
        }
        let after: String = text.iter().collect();
        assert_eq!(
            positions.at,
            after
                .chars()
                .enumerate()
                .filter(|(_, c)| is_astral(*c))
                .map(|(i, _)| i as u32)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_text_without_astral_characters_is_passed_through() {
        let mut positions = AstralPositions::of("plain é text");
        assert_eq!(positions.splice(3, 2, "ü"), Utf16Patch { pos: 3, del: 2 });
    }
}
