//! Decomposition: matching a pattern such as `(0 YOU (* WANT NEED) 0)`
//! against the words of a clause, like SLIP's YMATCH.
//!
//! Each `0` takes the fewest words that let the rest of the pattern match,
//! left to right; this is the order in which Weizenbaum's ELIZA (and
//! Anthony Hay's reconstruction) resolves ambiguous matches. A table of
//! failed `(pattern position, word position)` pairs keeps the backtracking
//! polynomial: no state is explored twice.

use crate::script::PatElem;
use crate::text::Word;

/// A matched component: `words[start..start + len]`.
pub(crate) type Span = (usize, usize);

/// Matches `pattern` against `words`. On success returns one span per
/// pattern element (the "components" numbered from 1 in reassembly rules).
pub(crate) fn decompose(pattern: &[PatElem], words: &[Word]) -> Option<Vec<Span>> {
    let mut spans = vec![(0, 0); pattern.len()];
    let mut failed = vec![false; (pattern.len() + 1) * (words.len() + 1)];
    let mut m = Matcher {
        pattern,
        words,
        spans: &mut spans,
        failed: &mut failed,
    };
    m.go(0, 0).then_some(spans)
}

struct Matcher<'a> {
    pattern: &'a [PatElem],
    words: &'a [Word],
    spans: &'a mut [Span],
    failed: &'a mut [bool],
}

impl Matcher<'_> {
    fn go(&mut self, p: usize, w: usize) -> bool {
        let n = self.words.len();
        let Some(elem) = self.pattern.get(p) else {
            return w == n;
        };
        let memo = p * (n + 1) + w;
        if self.failed[memo] {
            return false;
        }
        let ok = match elem {
            PatElem::Any => (0..=n - w).any(|len| {
                self.spans[p] = (w, len);
                self.go(p + 1, w + len)
            }),
            PatElem::Exactly(k) => {
                w + k <= n && {
                    self.spans[p] = (w, *k);
                    self.go(p + 1, w + k)
                }
            }
            literal => {
                w < n && word_matches(literal, &self.words[w].key) && {
                    self.spans[p] = (w, 1);
                    self.go(p + 1, w + 1)
                }
            }
        };
        if !ok {
            self.failed[memo] = true;
        }
        ok
    }
}

fn word_matches(elem: &PatElem, key: &str) -> bool {
    match elem {
        PatElem::Word(w) => &**w == key,
        PatElem::OneOf(words) | PatElem::Tagged { words, .. } => words.iter().any(|w| &**w == key),
        PatElem::Any | PatElem::Exactly(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> Vec<PatElem> {
        s.split_whitespace()
            .map(|t| {
                if let Some(rest) = t.strip_prefix('*') {
                    PatElem::OneOf(rest.split('|').map(Into::into).collect())
                } else if let Ok(n) = t.parse::<usize>() {
                    if n == 0 {
                        PatElem::Any
                    } else {
                        PatElem::Exactly(n)
                    }
                } else {
                    PatElem::Word(t.into())
                }
            })
            .collect()
    }

    fn parts(p: &str, text: &str) -> Option<Vec<String>> {
        let words: Vec<Word> = text.split_whitespace().map(Word::script).collect();
        decompose(&pat(p), &words).map(|spans| {
            spans
                .iter()
                .map(|&(s, l)| {
                    words[s..s + l]
                        .iter()
                        .map(|w| &*w.key)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect()
        })
    }

    #[test]
    fn zero_is_shortest_first() {
        assert_eq!(
            parts("0 YOU *WANT|NEED 0", "YOU NEED NICE FOOD").unwrap(),
            ["", "YOU", "NEED", "NICE FOOD"]
        );
        assert_eq!(
            parts(
                "0 YOU 0 I 0",
                "YOU KNOW THAT I KNOW YOU HATE I AND YOU LIKE I TOO"
            )
            .unwrap(),
            [
                "",
                "YOU",
                "KNOW THAT",
                "I",
                "KNOW YOU HATE I AND YOU LIKE I TOO"
            ]
        );
        assert_eq!(
            parts("0 ITS 0 MARY 1", "ITS MARY ITS NOT MARY IT IS MARY TOO").unwrap(),
            ["", "ITS", "MARY ITS NOT MARY IT IS", "MARY", "TOO"]
        );
    }

    #[test]
    fn fixed_counts() {
        assert_eq!(
            parts(
                "MARY 2 2 ITS 1 0",
                "MARY HAD A LITTLE LAMB ITS PROBABILITY WAS ZERO"
            )
            .unwrap(),
            [
                "MARY",
                "HAD A",
                "LITTLE LAMB",
                "ITS",
                "PROBABILITY",
                "WAS ZERO"
            ]
        );
        assert_eq!(
            parts("3 2", "WHEN WILL WE THREE MEET").unwrap(),
            ["WHEN WILL WE", "THREE MEET"]
        );
        assert!(parts("6", "WHEN WILL WE THREE MEET").is_none());
        assert!(parts("1 WHEN 0", "WHEN WILL WE THREE MEET").is_none());
        assert!(parts("1 *WANT|NEED 1", "YOU WANT NICE FOOD").is_none());
    }

    #[test]
    fn empty_cases() {
        assert_eq!(parts("", "").unwrap(), Vec::<String>::new());
        assert_eq!(parts("0", "").unwrap(), [""]);
        assert!(parts("", "HELLO").is_none());
        assert!(parts("HELLO", "").is_none());
    }

    #[test]
    fn pathological_input_stays_cheap() {
        // Many wildcards and repeated literals that never complete a match.
        let text = "YOU FEEL ".repeat(100);
        assert!(parts("0 YOU 0 BELIEVE 0 I 0", &text).is_none());
    }
}
