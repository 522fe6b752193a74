//! Reading the user's text into words, and writing replies back out.
//!
//! ELIZA works on uppercase words (`key`), as the 1966 program did on its
//! teletype. Each word also keeps how it should be printed (`shown`): the
//! user's own spelling for words echoed back ("your friend Bob"), lowercase
//! for the script's words. Replies are then put in sentence case.

/// At most this many characters of one input are read.
pub(crate) const MAX_INPUT_CHARS: usize = 2_000;
/// At most this many words of one input are read.
pub(crate) const MAX_WORDS: usize = 200;

/// One word of the text being transformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    /// Uppercase form, compared with the script.
    pub(crate) key: Box<str>,
    /// Printed form.
    pub(crate) shown: Box<str>,
}

impl Word {
    /// A word that comes from the script (printed in lowercase).
    pub(crate) fn script(word: &str) -> Word {
        let shown = match word {
            // The script's only proper noun.
            "ENGLISH" => "English".into(),
            _ => word.to_lowercase(),
        };
        Word {
            key: word.into(),
            shown: shown.into(),
        }
    }
}

/// A token of the input: a word, or a delimiter ending a clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    Word(Word),
    Delimiter,
}

/// Characters that end a clause. Weizenbaum's ELIZA knew '.' and ',' (and
/// the word BUT); a chat also has '?', '!', ';', ':' and line breaks.
fn is_delimiter(c: char) -> bool {
    matches!(
        c,
        '.' | ','
            | '?'
            | '!'
            | ';'
            | ':'
            | '\n'
            | '\r'
            | '…'
            | '。'
            | '，'
            | '？'
            | '！'
            | '；'
            | '：'
    )
}

/// Delimiters that also end a sentence (the next word starts a sentence).
fn ends_sentence(c: char) -> bool {
    matches!(c, '.' | '?' | '!' | '\n' | '\r' | '…' | '。' | '？' | '！')
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{02BC}' | '\u{FF07}')
}

/// Splits input into words and delimiters. Case-insensitive matching comes
/// from `key`; punctuation other than delimiters, symbols and emoji
/// separate words and are otherwise dropped. Bounded by [`MAX_INPUT_CHARS`]
/// and [`MAX_WORDS`]; never panics.
pub(crate) fn tokenize(input: &str) -> Vec<Token> {
    let input = match input.char_indices().nth(MAX_INPUT_CHARS) {
        Some((end, _)) => &input[..end],
        None => input,
    };
    // Input typed all in capitals (as on a teletype) is echoed in lowercase.
    let shouting = !input.chars().any(char::is_lowercase);

    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut words = 0;
    let mut sentence_start = true;
    let mut chars = input.chars().peekable();

    let mut flush = |word: &mut String, tokens: &mut Vec<Token>, sentence_start: &mut bool| {
        let trimmed = word.trim_matches('\'');
        if !trimmed.is_empty() && words < MAX_WORDS {
            let shown = if shouting || (*sentence_start && capitalized(trimmed)) {
                trimmed.to_lowercase()
            } else {
                trimmed.to_string()
            };
            tokens.push(Token::Word(Word {
                key: trimmed.to_uppercase().into(),
                shown: shown.into(),
            }));
            words += 1;
            *sentence_start = false;
        }
        word.clear();
    };

    while let Some(c) = chars.next() {
        if c.is_alphanumeric() {
            word.push(c);
        } else if is_apostrophe(c) {
            word.push('\'');
        } else if c == '-' && !word.is_empty() && chars.peek().is_some_and(|n| n.is_alphanumeric())
        {
            // "well-being", "x-ray": a hyphen inside a word stays.
            word.push(c);
        } else {
            flush(&mut word, &mut tokens, &mut sentence_start);
            if is_delimiter(c) {
                tokens.push(Token::Delimiter);
                if ends_sentence(c) {
                    sentence_start = true;
                }
            }
        }
    }
    flush(&mut word, &mut tokens, &mut sentence_start);
    tokens
}

/// "Men", "Perhaps": an initial capital and nothing else uppercase.
fn capitalized(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(char::is_uppercase) && !chars.any(char::is_uppercase)
}

/// The pronoun I and its contractions, which stay capitalised.
fn fix_pronoun(word: &str) -> Option<&'static str> {
    Some(match word {
        "i" => "I",
        "i'm" => "I'm",
        "i've" => "I've",
        "i'll" => "I'll",
        "i'd" => "I'd",
        _ => return None,
    })
}

/// Joins words into a reply: sentence case, spacing around the script's
/// punctuation (`REALLY,` `GO ON , PLEASE` `' 4 '`), and a final `?` or `.`.
pub(crate) fn render(words: &[Word], question: bool) -> String {
    let mut out = String::new();
    let mut quote_open = false;
    let mut glue_next = false;
    for w in words {
        let shown = &*w.shown;
        match shown {
            "" => continue,
            "," | "." | "?" | "!" => {
                out.push_str(shown);
                continue;
            }
            "'" => {
                if quote_open {
                    out.push('\'');
                } else {
                    if !out.is_empty() {
                        out.push(' ');
                    }
                    out.push('\'');
                    glue_next = true;
                }
                quote_open = !quote_open;
                continue;
            }
            _ => {}
        }
        if !out.is_empty() && !glue_next {
            out.push(' ');
        }
        glue_next = false;
        out.push_str(fix_pronoun(shown).unwrap_or(shown));
    }

    // Drop dangling separators left by an empty fragment ("REALLY, 4").
    let trimmed = out.trim_end_matches([' ', ',', '-']);
    let mut reply = sentence_case(if trimmed.is_empty() { &out } else { trimmed });
    if !reply.ends_with(['.', '?', '!']) {
        reply.push(if question { '?' } else { '.' });
    }
    reply
}

/// Renders a list of script atoms (the greeting).
pub(crate) fn render_script_sentence(atoms: &[String], question: bool) -> String {
    let words: Vec<Word> = atoms.iter().map(|a| Word::script(a)).collect();
    render(&words, question)
}

/// Uppercases the first letter, and the first letter after ". ".
fn sentence_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    let mut capitalize = true;
    let mut prev = ' ';
    let mut prev2 = ' ';
    for c in s.chars() {
        if prev == ' ' && matches!(prev2, '.' | '?' | '!') {
            capitalize = true;
        }
        if capitalize && c.is_alphanumeric() {
            out.extend(c.to_uppercase());
            capitalize = false;
        } else {
            out.push(c);
        }
        prev2 = prev;
        prev = c;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(input: &str) -> Vec<String> {
        tokenize(input)
            .into_iter()
            .map(|t| match t {
                Token::Word(w) => w.key.to_string(),
                Token::Delimiter => "|".to_string(),
            })
            .collect()
    }

    fn shown(input: &str) -> Vec<String> {
        tokenize(input)
            .into_iter()
            .filter_map(|t| match t {
                Token::Word(w) => Some(w.shown.to_string()),
                Token::Delimiter => None,
            })
            .collect()
    }

    #[test]
    fn splits_words_and_delimiters() {
        assert_eq!(
            keys("Well, my boyfriend made me come here."),
            [
                "WELL",
                "|",
                "MY",
                "BOYFRIEND",
                "MADE",
                "ME",
                "COME",
                "HERE",
                "|"
            ]
        );
        assert_eq!(
            keys("  one   two, three,, don't. "),
            ["ONE", "TWO", "|", "THREE", "|", "|", "DON'T", "|"]
        );
        assert_eq!(
            keys("Really?! (yes) \"quoted\" 🙂 ok"),
            ["REALLY", "|", "|", "YES", "QUOTED", "OK"]
        );
    }

    #[test]
    fn apostrophes_and_hyphens() {
        assert_eq!(
            keys("I’m fine, don‘t worry"),
            ["I'M", "FINE", "|", "DON'T", "WORRY"]
        );
        assert_eq!(
            keys("'quoted' well-being - x"),
            ["QUOTED", "WELL-BEING", "X"]
        );
    }

    #[test]
    fn keeps_the_users_spelling_for_echoes() {
        assert_eq!(shown("Men are all alike."), ["men", "are", "all", "alike"]);
        assert_eq!(
            shown("my friend Bob visited NASA"),
            ["my", "friend", "Bob", "visited", "NASA"]
        );
        assert_eq!(
            shown("MY FATHER IS AFRAID"),
            ["my", "father", "is", "afraid"]
        );
        assert_eq!(shown("Hi. Bob came"), ["hi", "bob", "came"]);
    }

    #[test]
    fn unicode_is_safe() {
        assert_eq!(keys("Straße café ÆSOP"), ["STRASSE", "CAFÉ", "ÆSOP"]);
        assert_eq!(keys("你好。世界"), ["你好", "|", "世界"]);
        assert!(keys("").is_empty());
        assert!(keys(" \t\n ").iter().all(|k| k == "|"));
    }

    #[test]
    fn work_is_bounded() {
        // Only the first MAX_INPUT_CHARS characters are read...
        let long = format!("{} tail", "abcdefghij".repeat(10_000));
        let tokens = tokenize(&long);
        assert_eq!(tokens.len(), 1);
        assert!(matches!(&tokens[0], Token::Word(w) if w.key.chars().count() == MAX_INPUT_CHARS));
        // ...and at most MAX_WORDS words.
        assert_eq!(tokenize(&"word ".repeat(50_000)).len(), MAX_WORDS);
        let many = "a ".repeat(5_000);
        assert_eq!(tokenize(&many).len(), MAX_WORDS);
        let multibyte = "é".repeat(10_000);
        assert_eq!(tokenize(&multibyte).len(), 1);
    }

    #[test]
    fn rendering() {
        let r = |s: &str, q| {
            render(
                &s.split_whitespace().map(Word::script).collect::<Vec<_>>(),
                q,
            )
        };
        assert_eq!(r("IN WHAT WAY", true), "In what way?");
        assert_eq!(
            r("I AM SORRY TO HEAR YOU ARE DEPRESSED", false),
            "I am sorry to hear you are depressed."
        );
        assert_eq!(r("GO ON , PLEASE", false), "Go on, please.");
        assert_eq!(
            r("HOW DO YOU DO. PLEASE STATE YOUR PROBLEM", false),
            "How do you do. Please state your problem."
        );
        assert_eq!(
            r("WHAT DOES ' WAS HAPPY ' SUGGEST TO YOU", true),
            "What does 'was happy' suggest to you?"
        );
        assert_eq!(r("WHY DO YOU SAY 'AM'", true), "Why do you say 'am'?");
        assert_eq!(r("REALLY,", true), "Really?");
        assert_eq!(
            r("I'M SURE ITS NOT PLEASANT", false),
            "I'm sure its not pleasant."
        );
        assert_eq!(r("", false), ".");
    }
}
