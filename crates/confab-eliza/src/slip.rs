//! SLIP's `HASH` function and the IBM 7094 character code, as used by
//! ELIZA to pick a MEMORY transformation.
//!
//! Weizenbaum's paper says the MEMORY rule is "randomly selected". The
//! MAD-SLIP listing found in his MIT archive shows the choice is
//! `HASH.(BOT.(INPUT),2)`: a 2-bit hash of the last cell of the input text,
//! i.e. the last word, or its last 6-character chunk for longer words. HASH
//! is a mid-square hash: the middle bits of the 35-bit magnitude of the
//! datum, squared. (Recovered and documented by Jeff Shrager and Anthony
//! Hay.) Reproducing it is what makes the classic mode pick
//! "DOES THAT HAVE ANYTHING TO DO WITH THE FACT THAT YOUR ..." for the
//! famous transcript's "HERE".

/// Returns `n` bits (0..=15) from the middle of `d` squared, exactly as the
/// FAP routine did on the 36-bit, sign-magnitude IBM 7094.
pub(crate) fn hash(d: u64, n: u32) -> u64 {
    debug_assert!(n <= 15);
    let d = u128::from(d & 0x7_FFFF_FFFF);
    let square = d * d;
    let bits = (square >> (35 - n / 2)) & ((1u128 << n) - 1);
    // At most 15 bits; the conversion cannot fail.
    u64::try_from(bits).unwrap_or_default()
}

/// 6-bit BCD (Hollerith) code of a character; characters the 7094 did not
/// have are read as '-', as ELIZA's input filter would have left them.
fn bcd(c: char) -> u64 {
    const DASH: u64 = 0o40;
    let code = match c {
        '0'..='9' => c as u64 - '0' as u64,
        '=' => 0o13,
        '\'' => 0o14,
        '+' => 0o20,
        'A'..='I' => 0o21 + (c as u64 - 'A' as u64),
        '.' => 0o33,
        ')' => 0o34,
        '-' => DASH,
        'J'..='R' => 0o41 + (c as u64 - 'J' as u64),
        '$' => 0o53,
        '*' => 0o54,
        ' ' => 0o60,
        '/' => 0o61,
        'S'..='Z' => 0o62 + (c as u64 - 'S' as u64),
        ',' => 0o73,
        '(' => 0o74,
        _ => DASH,
    };
    code & 0o77
}

/// The last SLIP cell of a word: its last (up to) six characters chunk,
/// left-justified and space-padded, in BCD.
pub(crate) fn last_chunk_bcd(word: &str) -> u64 {
    let count = word.chars().count();
    let start = count.saturating_sub(1) / 6 * 6;
    let mut datum = 0u64;
    let mut used = 0;
    for c in word.chars().skip(start) {
        datum = (datum << 6) | bcd(c);
        used += 1;
    }
    for _ in used..6 {
        datum = (datum << 6) | bcd(' ');
    }
    datum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn always_hashes_to_14() {
        // CACM 1966, page 38: "The word 'always', for example, yields the
        // integer 14" (a 7-bit hash).
        assert_eq!(last_chunk_bcd("ALWAYS"), 0o214366217062);
        assert_eq!(hash(last_chunk_bcd("ALWAYS"), 7), 14);
    }

    #[test]
    fn here_selects_the_fourth_memory_rule() {
        assert_eq!(last_chunk_bcd("HERE"), 0o302551256060);
        assert_eq!(hash(last_chunk_bcd("HERE"), 2), 3);
    }

    #[test]
    fn known_values() {
        assert_eq!(hash(0o423124626060, 2), 1); // "KIDS"
        assert_eq!(hash(0o633144256060, 2), 0); // "TIME"
        assert_eq!(hash(0o777777777777, 7), 0x70);
        assert_eq!(hash(0o777777777777, 15), 0x7F00);
        assert_eq!(hash(0x555555555, 15), 0x46E3);
        assert_eq!(hash(0xF0F0F0F0F, 15), 0x7788);
        assert_eq!(hash(0, 7), 0);
    }

    #[test]
    fn chunks() {
        assert_eq!(last_chunk_bcd(""), 0o606060606060);
        assert_eq!(last_chunk_bcd("X"), 0o676060606060);
        assert_eq!(last_chunk_bcd("INVENTED"), 0o252460606060);
        assert_eq!(last_chunk_bcd("123456ABCDEF"), 0o212223242526);
        // Non-7094 characters read as '-'; never panics.
        assert_eq!(last_chunk_bcd("É"), 0o406060606060);
        let _ = last_chunk_bcd("🙂🙂🙂🙂🙂🙂🙂");
    }
}
