//! Joseph Weizenbaum's ELIZA (1966) with the DOCTOR script, in Rust.
//!
//! This is the program described in "ELIZA - A Computer Program For the
//! Study of Natural Language Communication Between Man And Machine"
//! (Communications of the ACM 9(1), January 1966), driven by the DOCTOR
//! script printed in that paper's appendix, which is embedded verbatim and
//! parsed once. It needs no model and no network; a reply takes
//! microseconds.
//!
//! What it does, as the 1966 program did:
//!
//! * **Keywords with ranks.** The input is scanned left to right. At a
//!   delimiter (`.` `,` `BUT`, and in a chat also `?` `!` `;` `:`), text
//!   before it is discarded if no keyword was seen yet, and everything after
//!   it is discarded if one was. Each keyword goes on top of the keystack if
//!   it outranks every keyword before it, and at the bottom otherwise.
//! * **Substitutions** written in the script (`(MY = YOUR 2 ...)`,
//!   `(I = YOU ...)`, `(DONT = DON'T)`, ...) are made in the text during the
//!   scan, which is what turns "my boyfriend made me come here" into
//!   "YOUR BOYFRIEND MADE YOU COME HERE".
//! * **Decomposition and reassembly.** The top keyword's decomposition
//!   patterns (`0` any words, `N` exactly N words, `(*A B)` alternatives,
//!   `(/TAG)` words with a DLIST tag) are tried in order; the first that
//!   matches picks its next reassembly rule, and the rules of each pattern
//!   are used in turn, round-robin, exactly as in 1966.
//! * **`(=KEY)` links, `NEWKEY` and `PRE`** continue with another keyword,
//!   the next keyword on the keystack, or a rewritten text.
//! * **The MEMORY queue.** When the keyword MY is used, a transformed copy
//!   of the text ("DOES THAT HAVE ANYTHING TO DO WITH THE FACT THAT YOUR
//!   ...") is queued. When a later input has no keyword, and Weizenbaum's
//!   "certain counting mechanism" (the `LIMIT` counter, cycling 1 to 4 with
//!   each input) stands at 4, the oldest memory is the reply; otherwise the
//!   NONE rule answers.
//!
//! Replies are printed in sentence case with a final `?` or `.`, where the
//! teletype printed uppercase without punctuation.
//!
//! [`Eliza::new`] is the classic, deterministic program: given the CACM
//! transcript, it answers exactly as printed in the paper.
//! [`Eliza::with_seed`] varies where each rule's cycle starts (and which
//! MEMORY form is used), reproducibly for a given seed; [`Eliza::random`]
//! seeds itself.
//!
//! # Example
//!
//! ```
//! use confab_eliza::Eliza;
//!
//! let mut eliza = Eliza::new();
//! assert_eq!(eliza.greeting(), "How do you do. Please tell me your problem.");
//! assert_eq!(eliza.respond("Men are all alike."), "In what way?");
//! assert_eq!(
//!     eliza.respond("They're always bugging us about something or other."),
//!     "Can you think of a specific example?"
//! );
//! assert_eq!(
//!     eliza.respond("Well, my boyfriend made me come here."),
//!     "Your boyfriend made you come here?"
//! );
//!
//! // Same seed, same conversation.
//! let (mut a, mut b) = (Eliza::with_seed(7), Eliza::with_seed(7));
//! assert_eq!(a.respond("I feel sad"), b.respond("I feel sad"));
//!
//! assert!(Eliza::is_farewell("Goodbye!"));
//! assert_eq!(eliza.farewell(), "Goodbye. Thank you for talking to me.");
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod matcher;
mod script;
mod slip;
mod text;

use std::collections::VecDeque;

use script::{DOCTOR, Keyword, Part, Reassembly, Script, Template};
use text::{Token, Word};

/// Most memories kept per conversation; when full, the oldest is dropped.
/// (The 1966 program's queue was bounded only by core.)
const MAX_MEMORIES: usize = 16;

/// Most keyword transformations tried for one input (links, NEWKEY, PRE).
/// The DOCTOR script needs at most four; this only guards against cycles.
const MAX_STEPS: usize = 32;

/// ELIZA's built-in replies for a keyword none of whose decomposition rules
/// match ("CAN WE GO" has CAN but neither "CAN I" nor "CAN YOU"), chosen by
/// the LIMIT counter. From the MAD-SLIP source.
const NO_MATCH: [&str; 4] = ["Please continue.", "Hmmm.", "Go on, please.", "I see."];

/// The closing line. The 1966 DOCTOR script has none (a session simply
/// ended); this is the one later ELIZAs used.
const FAREWELL: &str = "Goodbye. Thank you for talking to me.";

/// One conversation with ELIZA.
///
/// The DOCTOR script is static and shared; an `Eliza` holds only the state
/// of one conversation: where each decomposition rule's reassembly cycle
/// stands, the MEMORY queue, the LIMIT counter and, when seeded, a PRNG.
/// It is small (tens of bytes plus one byte per decomposition rule and the
/// queued memories) and cheap to clone; keep one per channel.
#[derive(Debug, Clone)]
pub struct Eliza {
    /// Next reassembly rule of each decomposition rule, by slot.
    cycle: Box<[u8]>,
    /// Transformed texts laid down by the MEMORY rule, oldest first.
    memory: VecDeque<String>,
    /// Weizenbaum's "certain counting mechanism": 1, 2, 3, 4, 1, ...
    limit: u8,
    /// Whether memories wait for LIMIT = 4 (the 1966 behaviour).
    limit_gate: bool,
    /// splitmix64 state; `None` in the classic, hash-driven mode.
    rng: Option<u64>,
}

impl Default for Eliza {
    fn default() -> Self {
        Eliza::new()
    }
}

/// What a keyword's rules made of the text.
enum Outcome {
    Reply(String),
    NewKey,
    Link(usize),
    NoMatch,
}

impl Eliza {
    /// The classic program: every rule's reassemblies are used in order
    /// from the first, and MEMORY forms are chosen by SLIP's HASH of the
    /// last word, as in 1966. Fully deterministic: it reproduces the
    /// conversation printed in the CACM paper.
    pub fn new() -> Self {
        Eliza {
            cycle: vec![0; DOCTOR.slot_lens.len()].into(),
            memory: VecDeque::new(),
            limit: 1,
            limit_gate: true,
            rng: None,
        }
    }

    /// Reproducible variation: each rule's cycle starts at a position drawn
    /// from a small PRNG (splitmix64) seeded with `seed`, and MEMORY forms
    /// are drawn from it too. Two instances with the same seed given the
    /// same inputs give the same replies.
    pub fn with_seed(seed: u64) -> Self {
        let mut eliza = Eliza::new();
        eliza.rng = Some(seed);
        for slot in 0..eliza.cycle.len() {
            let len = u64::from(DOCTOR.slot_lens[slot]);
            // len <= 255, so the remainder fits in a u8.
            eliza.cycle[slot] = u8::try_from(eliza.next_random() % len).unwrap_or(0);
        }
        eliza
    }

    /// Like [`Eliza::with_seed`], seeded from the process's random state
    /// and the clock.
    pub fn random() -> Self {
        use std::hash::{BuildHasher, RandomState};
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Eliza::with_seed(RandomState::new().hash_one(now))
    }

    /// Turns Weizenbaum's LIMIT counter on (the default) or off. With it
    /// on, a remembered text is recalled only when an input has no keyword
    /// and the counter, advanced by every input, stands at 4. With it off,
    /// every input without a keyword recalls a memory while there is one.
    #[must_use]
    pub fn with_limit_counter(mut self, on: bool) -> Self {
        self.limit_gate = on;
        self
    }

    /// The script's opening remark: "How do you do. Please tell me your
    /// problem."
    pub fn greeting(&self) -> &'static str {
        &DOCTOR.greeting
    }

    /// A closing line for when [`Eliza::is_farewell`] says the user is
    /// leaving.
    pub fn farewell(&self) -> &'static str {
        FAREWELL
    }

    /// Whether `input` is the user taking leave ("bye", "goodbye",
    /// "good bye, Eliza!", "quit", "exit"). A short message containing
    /// bye/goodbye/farewell counts; "quit" and "exit" only on their own.
    pub fn is_farewell(input: &str) -> bool {
        let mut words = Vec::new();
        for w in input
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            if words.len() == 4 {
                return false;
            }
            words.push(w.to_lowercase());
        }
        match words.as_slice() {
            [] => false,
            [only] if matches!(only.as_str(), "quit" | "exit") => true,
            ws => ws.iter().any(|w| {
                matches!(
                    w.as_str(),
                    "bye" | "goodbye" | "byebye" | "farewell" | "cya"
                )
            }),
        }
    }

    /// ELIZA's reply to one line of input. Never panics and never returns
    /// an empty string, whatever the input (empty, emoji, megabytes: only
    /// the first 2,000 characters and 200 words are read).
    pub fn respond(&mut self, input: &str) -> String {
        let script: &Script = &DOCTOR;
        self.limit = self.limit % 4 + 1;

        let (mut words, mut keystack) = scan(script, input);

        if keystack.is_empty()
            && (!self.limit_gate || self.limit == 4)
            && let Some(memory) = self.memory.pop_front()
        {
            return memory;
        }

        let mut steps = 0;
        while let Some(k) = keystack.pop_front() {
            steps += 1;
            if steps > MAX_STEPS {
                break;
            }
            if k == script.memory_keyword {
                self.remember(script, &words);
            }
            match self.transform(&script.keywords[k], &mut words) {
                Outcome::Reply(reply) => return reply,
                Outcome::NoMatch => return self.no_match(),
                Outcome::Link(next) => keystack.push_front(next),
                Outcome::NewKey => {}
            }
        }

        match self.transform(&script.none, &mut words) {
            Outcome::Reply(reply) => reply,
            _ => self.no_match(),
        }
    }

    fn no_match(&self) -> String {
        NO_MATCH[usize::from(self.limit.clamp(1, 4) - 1)].to_string()
    }

    /// Applies a keyword's decomposition rules to the text.
    fn transform(&mut self, keyword: &Keyword, words: &mut Vec<Word>) -> Outcome {
        for d in keyword.decompositions.iter() {
            let Some(spans) = matcher::decompose(&d.pattern, words) else {
                continue;
            };
            let i = usize::from(self.cycle[d.slot]);
            let i = if i < d.reassemblies.len() { i } else { 0 };
            // Round-robin, whatever kind of rule comes up (as in 1966).
            self.cycle[d.slot] = u8::try_from((i + 1) % d.reassemblies.len()).unwrap_or(0);
            return match &d.reassemblies[i] {
                Reassembly::Template(t) => Outcome::Reply(reassemble(t, words, &spans)),
                Reassembly::NewKey => Outcome::NewKey,
                Reassembly::Link(k) => Outcome::Link(*k),
                Reassembly::Pre { parts, link } => {
                    *words = assemble(parts, words, &spans);
                    Outcome::Link(*link)
                }
            };
        }
        match keyword.link {
            Some(k) => Outcome::Link(k),
            None => Outcome::NoMatch,
        }
    }

    /// Lays down a memory from the text (keyword MY).
    fn remember(&mut self, script: &Script, words: &[Word]) {
        let rules = &script.memory_rules;
        let n = rules.len() as u64;
        let pick = if self.rng.is_some() {
            self.next_random() % n
        } else {
            let last = words.last().map_or("", |w| &*w.key);
            slip::hash(slip::last_chunk_bcd(last), 2) % n
        };
        let rule = &rules[usize::try_from(pick).unwrap_or(0)];
        if let Some(spans) = matcher::decompose(&rule.pattern, words) {
            if self.memory.len() == MAX_MEMORIES {
                self.memory.pop_front();
            }
            self.memory
                .push_back(reassemble(&rule.template, words, &spans));
        }
    }

    fn next_random(&mut self) -> u64 {
        let state = self.rng.get_or_insert(0);
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Reads the input into the words of the first clause containing a keyword
/// (with the script's substitutions made) and the keystack.
fn scan(script: &Script, input: &str) -> (Vec<Word>, VecDeque<usize>) {
    let mut words = Vec::new();
    let mut keystack = VecDeque::new();
    let mut top_rank = 0;
    for token in text::tokenize(input) {
        let word = match token {
            Token::Word(w) if &*w.key != "BUT" => w,
            _ => {
                // A delimiter: keep only the first clause with a keyword.
                if keystack.is_empty() {
                    words.clear();
                    continue;
                }
                break;
            }
        };
        let word = match script.keyword(&word.key) {
            Some(k) => {
                let kw = &script.keywords[k];
                if kw.has_transformation() {
                    if kw.rank > top_rank {
                        keystack.push_front(k);
                        top_rank = kw.rank;
                    } else {
                        keystack.push_back(k);
                    }
                }
                match &kw.substitute {
                    Some(sub) => Word::script(sub),
                    None => word,
                }
            }
            None => word,
        };
        words.push(word);
    }
    (words, keystack)
}

/// Builds the words of a reassembly: script words and decomposition parts.
fn assemble(parts: &[Part], words: &[Word], spans: &[matcher::Span]) -> Vec<Word> {
    let mut out = Vec::with_capacity(parts.len() + words.len());
    for part in parts {
        match part {
            Part::Word(w) => out.push(Word::script(w)),
            Part::Frag(n) => {
                if let Some(&(start, len)) = n.checked_sub(1).and_then(|i| spans.get(i)) {
                    out.extend_from_slice(&words[start..start + len]);
                }
            }
        }
    }
    out
}

fn reassemble(template: &Template, words: &[Word], spans: &[matcher::Span]) -> String {
    text::render(&assemble(&template.parts, words, spans), template.question)
}

#[cfg(test)]
mod tests;
