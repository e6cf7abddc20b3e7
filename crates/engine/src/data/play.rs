//! Tiny Shakespeare as a stream of characters: its own alphabet (the 78 characters of the shipped
//! text, then one out-of-vocabulary symbol), cut into overlapping windows of [`WINDOW`] + 1
//! characters — each window's first [`WINDOW`] characters are inputs and every next character is
//! a target, so each character of the text is predicted once. Windows are split in order
//! (80 / 10 / 10): the development and test text comes from plays never trained on.

use super::names::Split;

/// The alphabet of the shipped text, sorted by code point.
pub const CHARS: &str = "\n !\"&'(),-./123457:;?ABCDEFGHIJKLMNOPQRSTUVWXYZ[]_abcdefghijklmnopqrstuvwxyz{}";
/// Symbols: the characters above, then one out-of-vocabulary symbol.
pub const VOCAB: usize = 79;
pub const OOV: usize = 78;
/// Inputs per window (min-char-rnn reads 25; names are cut at 24, so the network is the same).
pub const WINDOW: usize = 24;
/// Characters of a sampled passage.
pub const PASSAGE: usize = 200;

/// The symbol of one character (anything outside the alphabet is OOV).
pub fn symbol(c: char) -> usize {
    CHARS.find(c).filter(|_| c.is_ascii()).unwrap_or(OOV)
}

/// The character a symbol stands for (`·` for out-of-vocabulary).
pub fn character(s: usize) -> char {
    CHARS.chars().nth(s).unwrap_or('·')
}

pub fn encode(text: &str) -> Vec<usize> {
    text.chars().map(symbol).collect()
}

pub fn decode(symbols: &[usize]) -> String {
    symbols.iter().map(|&s| character(s)).collect()
}

/// The text as windows of `WINDOW + 1` symbols, each starting where the previous one's inputs end.
pub fn windows(symbols: &[usize]) -> Vec<Vec<usize>> {
    if symbols.len() < 2 {
        return Vec::new();
    }
    (0..(symbols.len() - 1).div_ceil(WINDOW)).map(|w| symbols[w * WINDOW..(w * WINDOW + WINDOW + 1).min(symbols.len())].to_vec()).collect()
}

/// Windows `0..n` split in order: the first 80 % train, the next 10 % development, the last test.
pub fn ordered_split(n: usize) -> Split {
    let (a, b) = (n * 8 / 10, n * 9 / 10);
    Split { train: (0..a).collect(), val: (a..b).collect(), test: (b..n).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alphabet_round_trips_and_maps_the_rest_to_oov() {
        assert_eq!(CHARS.chars().count(), OOV);
        assert_eq!(decode(&encode("ROMEO:\nO, she doth teach!")), "ROMEO:\nO, she doth teach!");
        assert_eq!(encode("é9"), [OOV, OOV]);
        assert_eq!(character(OOV), '·');
    }

    #[test]
    fn windows_predict_every_character_once() {
        let text: Vec<usize> = (0..60).map(|i| i % 50).collect();
        let w = windows(&text);
        assert_eq!(w.len(), 3);
        assert_eq!(w[0], text[..25]);
        assert_eq!(w[1][0], text[24]);
        // Targets: every window's symbols after its first; together, the text after its first.
        let targets: Vec<usize> = w.iter().flat_map(|w| w[1..].to_vec()).collect();
        assert_eq!(targets, text[1..]);
        assert!(windows(&[3]).is_empty());
        let s = ordered_split(10);
        assert_eq!((s.train.len(), s.val, s.test), (8, vec![8], vec![9]));
    }
}
