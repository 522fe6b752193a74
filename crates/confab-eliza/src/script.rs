//! The DOCTOR script: Weizenbaum's list structures, parsed once.
//!
//! The script text (`doctor.txt`) is the appendix of the January 1966 CACM
//! paper. It is parsed at first use into [`Script`], a read-only table that
//! every conversation shares. Per-conversation state (where each rule's
//! reassembly cycle stands, the memory queue) lives in [`crate::Eliza`].
//!
//! Grammar, as used by the 1966 script:
//!
//! ```text
//! script     : greeting ['START'] { rule } ['(' ')']
//! greeting   : '(' { word } ')'
//! rule       : '(' keyword { '=' word | rank | 'DLIST' '(' tags ')' | link | transform } ')'
//!            | '(' 'MEMORY' keyword { '(' pattern '=' template ')' } ')'
//! transform  : '(' '(' pattern ')' { reassembly } ')'
//! reassembly : '(' template ')' | '(' 'NEWKEY' ')' | link
//!            | '(' 'PRE' '(' template ')' link ')'
//! link       : '(' '=' keyword ')' | '(' '=keyword' ')'
//! pattern    : { '0' | n | word | '(' '*' words ')' | '(' '/' tags ')' }
//! ```

use std::collections::HashMap;
use std::sync::LazyLock;

/// The embedded 1966 DOCTOR script text.
pub(crate) const DOCTOR_TEXT: &str = include_str!("doctor.txt");

/// The parsed DOCTOR script, shared by all conversations.
pub(crate) static DOCTOR: LazyLock<Script> = LazyLock::new(|| {
    Script::parse(DOCTOR_TEXT)
        .unwrap_or_else(|e| panic!("the built-in DOCTOR script is invalid: {e}"))
});

/// One element of a decomposition pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatElem {
    /// `0`: any number of words, including none (the shortest that works).
    Any,
    /// `N` (N > 0): exactly N words.
    Exactly(usize),
    /// A literal word.
    Word(Box<str>),
    /// `(*A B C)`: any one of the listed words.
    OneOf(Box<[Box<str>]>),
    /// `(/TAG ...)`: any one word carrying one of the tags (DLIST). The
    /// tag names are resolved to their words once the whole script is read.
    Tagged {
        tags: Box<[Box<str>]>,
        words: Box<[Box<str>]>,
    },
}

/// One element of a reassembly template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// A word of the script, as written (uppercase).
    Word(Box<str>),
    /// A reference to the Nth (1-based) component of the decomposition.
    Frag(usize),
}

/// A reassembly template plus how its sentence ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pub(crate) parts: Box<[Part]>,
    /// `true`: ends with `?`, otherwise `.`. Weizenbaum's teletype printed no
    /// final punctuation; this is decided once from the template's words.
    pub(crate) question: bool,
}

/// What a reassembly rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reassembly {
    /// Build the reply from a template.
    Template(Template),
    /// `(NEWKEY)`: give up on this keyword; try the next one on the keystack.
    NewKey,
    /// `(=KEY)`: continue with the rules of another keyword.
    Link(usize),
    /// `(PRE (template) (=KEY))`: rewrite the text, then continue with KEY.
    Pre { parts: Box<[Part]>, link: usize },
}

/// A decomposition rule with its reassembly rules.
#[derive(Debug, Clone)]
pub(crate) struct Decomposition {
    pub(crate) pattern: Box<[PatElem]>,
    pub(crate) reassemblies: Box<[Reassembly]>,
    /// Index of this rule's cycle position in a conversation's state.
    pub(crate) slot: usize,
}

/// One keyword entry of the script (also used for entries that only
/// substitute a word or only carry DLIST tags).
#[derive(Debug, Clone)]
pub(crate) struct Keyword {
    /// The keyword itself (read by `Debug` and the tests).
    #[allow(dead_code)]
    pub(crate) word: Box<str>,
    /// `(MY = YOUR ...)`: the word written in its place in the input text.
    pub(crate) substitute: Option<Box<str>>,
    /// Precedence; the highest-ranked keyword goes to the top of the keystack.
    pub(crate) rank: u32,
    /// DLIST tags (resolved into patterns; kept for `Debug` and the tests).
    #[allow(dead_code)]
    pub(crate) tags: Box<[Box<str>]>,
    pub(crate) decompositions: Box<[Decomposition]>,
    /// `(HOW (=WHAT))`: used when no decomposition matches.
    pub(crate) link: Option<usize>,
}

impl Keyword {
    /// A keyword "with transformation rules" goes on the keystack; plain
    /// substitutions and DLIST entries do not.
    pub(crate) fn has_transformation(&self) -> bool {
        !self.decompositions.is_empty() || self.link.is_some()
    }
}

/// One MEMORY transformation: `(0 YOUR 0 = LETS DISCUSS FURTHER WHY YOUR 3)`.
#[derive(Debug, Clone)]
pub(crate) struct MemoryRule {
    pub(crate) pattern: Box<[PatElem]>,
    pub(crate) template: Template,
}

/// The whole parsed script.
#[derive(Debug)]
pub(crate) struct Script {
    /// The opening remark, in sentence case.
    pub(crate) greeting: String,
    pub(crate) keywords: Vec<Keyword>,
    /// Uppercase word -> index into `keywords`.
    index: HashMap<Box<str>, usize>,
    /// The reserved NONE rule (not reachable by typing "none").
    pub(crate) none: Keyword,
    /// The keyword that lays down memories (MY in DOCTOR).
    pub(crate) memory_keyword: usize,
    pub(crate) memory_rules: Box<[MemoryRule]>,
    /// Number of reassembly rules of each decomposition, indexed by slot.
    pub(crate) slot_lens: Box<[u8]>,
}

impl Script {
    /// Looks up an uppercase word.
    pub(crate) fn keyword(&self, word: &str) -> Option<usize> {
        self.index.get(word).copied()
    }

    /// Parses a script in Weizenbaum's format.
    pub(crate) fn parse(text: &str) -> Result<Script, String> {
        let tokens = tokenize(text);
        let forms = read_forms(&tokens)?;
        Builder::default().build(forms)
    }
}

// ---------------------------------------------------------------------------
// S-expression reader
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Sexp {
    Atom(String),
    List(Vec<Sexp>),
}

impl Sexp {
    fn atom(&self) -> Option<&str> {
        match self {
            Sexp::Atom(a) => Some(a),
            Sexp::List(_) => None,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Atom(String),
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with(';') {
            continue;
        }
        let mut atom = String::new();
        for c in line.chars() {
            match c {
                '(' | ')' => {
                    if !atom.is_empty() {
                        tokens.push(Token::Atom(std::mem::take(&mut atom)));
                    }
                    tokens.push(if c == '(' { Token::Open } else { Token::Close });
                }
                c if c.is_whitespace() => {
                    if !atom.is_empty() {
                        tokens.push(Token::Atom(std::mem::take(&mut atom)));
                    }
                }
                c => atom.push(c),
            }
        }
        if !atom.is_empty() {
            tokens.push(Token::Atom(atom));
        }
    }
    tokens
}

fn read_forms(tokens: &[Token]) -> Result<Vec<Sexp>, String> {
    let mut stack: Vec<Vec<Sexp>> = vec![Vec::new()];
    for token in tokens {
        match token {
            Token::Open => stack.push(Vec::new()),
            Token::Close => {
                if stack.len() < 2 {
                    return Err("unbalanced ')'".into());
                }
                let list = stack.pop().unwrap_or_default();
                if let Some(parent) = stack.last_mut() {
                    parent.push(Sexp::List(list));
                }
            }
            Token::Atom(a) => {
                if let Some(top) = stack.last_mut() {
                    top.push(Sexp::Atom(a.clone()));
                }
            }
        }
    }
    if stack.len() != 1 {
        return Err("unbalanced '('".into());
    }
    Ok(stack.pop().unwrap_or_default())
}

// ---------------------------------------------------------------------------
// Script builder
// ---------------------------------------------------------------------------

/// Decompositions and reassemblies as read, before link names are resolved.
struct RawKeyword {
    word: String,
    substitute: Option<String>,
    rank: u32,
    tags: Vec<String>,
    decompositions: Vec<(Vec<PatElem>, Vec<RawReassembly>)>,
    link: Option<String>,
}

enum RawReassembly {
    Template(Vec<String>),
    NewKey,
    Link(String),
    Pre(Vec<String>, String),
}

#[derive(Default)]
struct Builder {
    slot_lens: Vec<u8>,
}

fn parse_number(s: &str) -> Option<usize> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// `(=WHAT)` or `(= WHAT)` -> `WHAT`.
fn as_link(items: &[Sexp]) -> Option<String> {
    match items {
        [Sexp::Atom(eq), Sexp::Atom(key)] if eq == "=" => Some(key.clone()),
        [Sexp::Atom(a)] if a.len() > 1 && a.starts_with('=') => Some(a[1..].to_string()),
        _ => None,
    }
}

fn atoms(items: &[Sexp], what: &str) -> Result<Vec<String>, String> {
    items
        .iter()
        .map(|s| {
            s.atom()
                .map(str::to_string)
                .ok_or_else(|| format!("unexpected list in {what}"))
        })
        .collect()
}

fn parse_pattern(items: &[Sexp]) -> Result<Vec<PatElem>, String> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Sexp::Atom(a) => match parse_number(a) {
                Some(0) => out.push(PatElem::Any),
                Some(n) => out.push(PatElem::Exactly(n)),
                None => out.push(PatElem::Word(a.as_str().into())),
            },
            Sexp::List(group) => {
                let words = atoms(group, "a pattern group")?;
                let first = words.first().ok_or("empty pattern group")?;
                let kind = first.chars().next().unwrap_or(' ');
                // "(*SAD HAPPY)", "(* WANT NEED)", "(/FAMILY)", "(/ NOUN FAMILY)"
                let mut members: Vec<Box<str>> = Vec::new();
                let head = &first[kind.len_utf8()..];
                if !head.is_empty() {
                    members.push(head.into());
                }
                members.extend(words[1..].iter().map(|w| w.as_str().into()));
                match kind {
                    '*' => out.push(PatElem::OneOf(members.into())),
                    '/' => out.push(PatElem::Tagged {
                        tags: members.into(),
                        words: Box::new([]),
                    }),
                    _ => return Err(format!("pattern group must start with * or /: {first}")),
                }
            }
        }
    }
    Ok(out)
}

fn parse_parts(words: &[String]) -> Box<[Part]> {
    words
        .iter()
        .map(|w| match parse_number(w) {
            Some(n) => Part::Frag(n),
            None => Part::Word(w.as_str().into()),
        })
        .collect()
}

fn parse_reassembly(items: &[Sexp]) -> Result<RawReassembly, String> {
    if let Some(key) = as_link(items) {
        return Ok(RawReassembly::Link(key));
    }
    match items {
        [Sexp::Atom(a)] if a == "NEWKEY" => Ok(RawReassembly::NewKey),
        [Sexp::Atom(pre), Sexp::List(template), Sexp::List(link)] if pre == "PRE" => {
            let key = as_link(link).ok_or("PRE needs a (=KEY) link")?;
            Ok(RawReassembly::Pre(atoms(template, "a PRE template")?, key))
        }
        _ => Ok(RawReassembly::Template(atoms(items, "a reassembly rule")?)),
    }
}

fn parse_keyword(items: &[Sexp]) -> Result<RawKeyword, String> {
    let word = items
        .first()
        .and_then(Sexp::atom)
        .ok_or("a rule must start with its keyword")?
        .to_string();
    let mut kw = RawKeyword {
        word,
        substitute: None,
        rank: 0,
        tags: Vec::new(),
        decompositions: Vec::new(),
        link: None,
    };
    let mut i = 1;
    while i < items.len() {
        match &items[i] {
            Sexp::Atom(a) if a == "=" => {
                let sub = items.get(i + 1).and_then(Sexp::atom);
                kw.substitute = Some(sub.ok_or("'=' needs a word")?.to_string());
                i += 2;
            }
            Sexp::Atom(a) if a == "DLIST" => {
                let Some(Sexp::List(tags)) = items.get(i + 1) else {
                    return Err(format!("DLIST of {} needs a list", kw.word));
                };
                kw.tags = atoms(tags, "DLIST")?
                    .into_iter()
                    .map(|t| t.trim_start_matches('/').to_string())
                    .filter(|t| !t.is_empty())
                    .collect();
                i += 2;
            }
            Sexp::Atom(a) => {
                kw.rank = parse_number(a)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| format!("unexpected atom {a} in rule {}", kw.word))?;
                i += 1;
            }
            Sexp::List(list) => {
                if let Some(key) = as_link(list) {
                    kw.link = Some(key);
                } else {
                    let Some(Sexp::List(pattern)) = list.first() else {
                        return Err(format!("rule {} has a malformed transformation", kw.word));
                    };
                    let pattern = parse_pattern(pattern)?;
                    let reassemblies = list[1..]
                        .iter()
                        .map(|r| match r {
                            Sexp::List(r) => parse_reassembly(r),
                            Sexp::Atom(a) => Err(format!("reassembly must be a list, got {a}")),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    if reassemblies.is_empty() {
                        return Err(format!(
                            "rule {} has a decomposition without reassembly",
                            kw.word
                        ));
                    }
                    kw.decompositions.push((pattern, reassemblies));
                }
                i += 1;
            }
        }
    }
    Ok(kw)
}

/// `(MEMORY MY (pattern = template) ...)` as read: the keyword and its rules.
type RawMemory = (String, Vec<(Vec<PatElem>, Vec<String>)>);

fn parse_memory(items: &[Sexp]) -> Result<RawMemory, String> {
    let key = items
        .get(1)
        .and_then(Sexp::atom)
        .ok_or("MEMORY needs a keyword")?
        .to_string();
    let mut rules = Vec::new();
    for item in &items[2..] {
        let Sexp::List(rule) = item else {
            return Err("MEMORY rule must be a list".into());
        };
        let eq = rule
            .iter()
            .position(|s| s.atom() == Some("="))
            .ok_or("MEMORY rule needs '='")?;
        rules.push((
            parse_pattern(&rule[..eq])?,
            atoms(&rule[eq + 1..], "MEMORY")?,
        ));
    }
    if rules.is_empty() {
        return Err("MEMORY needs at least one rule".into());
    }
    Ok((key, rules))
}

impl Builder {
    fn build(mut self, forms: Vec<Sexp>) -> Result<Script, String> {
        let mut forms = forms.into_iter();
        let greeting = match forms.next() {
            Some(Sexp::List(words)) => atoms(&words, "the greeting")?,
            _ => return Err("the script must open with a greeting list".into()),
        };

        let mut raw = Vec::new();
        let mut none = None;
        let mut memory = None;
        for form in forms {
            let items = match form {
                Sexp::Atom(a) if a == "START" => continue,
                Sexp::Atom(a) => return Err(format!("unexpected atom {a} at top level")),
                Sexp::List(items) if items.is_empty() => continue,
                Sexp::List(items) => items,
            };
            match items[0].atom() {
                Some("MEMORY") => memory = Some(parse_memory(&items)?),
                Some("NONE") => none = Some(parse_keyword(&items)?),
                _ => raw.push(parse_keyword(&items)?),
            }
        }

        let index: HashMap<Box<str>, usize> = raw
            .iter()
            .enumerate()
            .map(|(i, k)| (k.word.as_str().into(), i))
            .collect();
        let mut tag_words: HashMap<&str, Vec<Box<str>>> = HashMap::new();
        for k in &raw {
            for t in &k.tags {
                tag_words.entry(t).or_default().push(k.word.as_str().into());
            }
        }
        let resolve = |name: &str| -> Result<usize, String> {
            index
                .get(name)
                .copied()
                .filter(|&i| has_rules(&raw[i]))
                .ok_or_else(|| format!("link to unknown keyword {name}"))
        };
        let resolve_tags = |pattern: Vec<PatElem>| -> Vec<PatElem> {
            pattern
                .into_iter()
                .map(|e| match e {
                    PatElem::Tagged { tags, .. } => {
                        let mut words: Vec<Box<str>> = Vec::new();
                        for t in tags.iter() {
                            if let Some(ws) = tag_words.get(&**t) {
                                words.extend(ws.iter().cloned());
                            }
                        }
                        PatElem::Tagged {
                            tags,
                            words: words.into(),
                        }
                    }
                    other => other,
                })
                .collect()
        };

        let finish = |k: &RawKeyword, builder: &mut Builder| -> Result<Keyword, String> {
            let mut decompositions = Vec::with_capacity(k.decompositions.len());
            for (pattern, reassemblies) in &k.decompositions {
                let mut out = Vec::with_capacity(reassemblies.len());
                for r in reassemblies {
                    out.push(match r {
                        RawReassembly::Template(words) => Reassembly::Template(template(words)),
                        RawReassembly::NewKey => Reassembly::NewKey,
                        RawReassembly::Link(key) => Reassembly::Link(resolve(key)?),
                        RawReassembly::Pre(words, key) => Reassembly::Pre {
                            parts: parse_parts(words),
                            link: resolve(key)?,
                        },
                    });
                }
                let slot = builder.slot_lens.len();
                builder
                    .slot_lens
                    .push(u8::try_from(out.len()).map_err(|_| "too many reassembly rules")?);
                decompositions.push(Decomposition {
                    pattern: resolve_tags(pattern.clone()).into(),
                    reassemblies: out.into(),
                    slot,
                });
            }
            Ok(Keyword {
                word: k.word.as_str().into(),
                substitute: k.substitute.as_deref().map(Into::into),
                rank: k.rank,
                tags: k.tags.iter().map(|t| t.as_str().into()).collect(),
                decompositions: decompositions.into(),
                link: k.link.as_deref().map(&resolve).transpose()?,
            })
        };

        let keywords = raw
            .iter()
            .map(|k| finish(k, &mut self))
            .collect::<Result<Vec<_>, _>>()?;
        let none = finish(&none.ok_or("the script needs a NONE rule")?, &mut self)?;
        if none.decompositions.is_empty() {
            return Err("the NONE rule needs a decomposition".into());
        }
        let (memory_key, memory_rules) = memory.ok_or("the script needs a MEMORY rule")?;
        let memory_keyword = resolve(&memory_key)?;
        let memory_rules = memory_rules
            .into_iter()
            .map(|(pattern, words)| MemoryRule {
                pattern: resolve_tags(pattern).into(),
                template: template(&words),
            })
            .collect();

        Ok(Script {
            greeting: crate::text::render_script_sentence(&greeting, false),
            keywords,
            index,
            none,
            memory_keyword,
            memory_rules,
            slot_lens: self.slot_lens.into(),
        })
    }
}

fn has_rules(k: &RawKeyword) -> bool {
    !k.decompositions.is_empty() || k.link.is_some()
}

fn template(words: &[String]) -> Template {
    Template {
        parts: parse_parts(words),
        question: is_question(words),
    }
}

/// Words that open a question in the DOCTOR script's replies.
const QUESTION_OPENERS: &[&str] = &[
    "WHAT", "WHY", "HOW", "WHEN", "WHERE", "WHO", "WHO,", "WHICH", "DO", "DOES", "DID", "DON'T",
    "CAN", "CAN'T", "ARE", "AREN'T", "IS", "AM", "WAS", "WERE", "WOULD", "COULD", "SHOULD", "HAVE",
    "HAS", "REALLY", "REALLY,", "OH,", "SURELY", "YOUR",
];

/// Replies that are questions although no opener says so.
const QUESTION_TEMPLATES: &[&str] = &[
    "YOU ARE SURE",
    "YOU AREN'T SURE",
    "YOU SAY 1",
    "SOMEONE SPECIAL PERHAPS",
];

/// Decides whether a reply template reads as a question.
///
/// Weizenbaum's 1966 teletype printed replies without final punctuation;
/// the CACM transcript punctuates them by hand ("IN WHAT WAY?"). This
/// reproduces that reading from the template's own words: the last sentence
/// of the template is a question when it opens with a question word
/// ("WHAT ...", "DO YOU ..."), when its last clause does ("..., DO YOU
/// SUPPOSE", "... - ARE YOU"), when it ends with a tag ("... DON'T YOU"), or
/// when it is "IN/OF WHAT ...". A handful of echo questions are listed.
pub(crate) fn is_question(words: &[String]) -> bool {
    let joined = words.join(" ");
    if QUESTION_TEMPLATES.contains(&joined.as_str()) {
        return true;
    }
    // Only the last sentence counts: "HOW DO YOU DO. PLEASE STATE YOUR PROBLEM".
    let start = words
        .iter()
        .rposition(|w| w.ends_with('.'))
        .map_or(0, |i| i + 1);
    let sentence = &words[start..];
    let Some(first) = sentence.first() else {
        return false;
    };
    if QUESTION_OPENERS.contains(&first.as_str()) {
        return true;
    }
    if matches!(first.as_str(), "IN" | "OF" | "FOR" | "WITH" | "ABOUT")
        && sentence
            .get(1)
            .is_some_and(|w| matches!(w.as_str(), "WHAT" | "WHICH" | "WHOM"))
    {
        return true;
    }
    // Last clause, after a ',' or '-': "... , DO YOU SUPPOSE", "... - ARE YOU".
    let clause_start = sentence
        .iter()
        .rposition(|w| w == "-" || w == "," || w.ends_with(','))
        .map_or(0, |i| i + 1);
    if let Some(w) = sentence.get(clause_start)
        && clause_start > 0
        && matches!(
            w.as_str(),
            "WHAT" | "WHY" | "HOW" | "DO" | "DOES" | "DON'T" | "ARE" | "IS" | "CAN" | "WOULD"
        )
    {
        return true;
    }
    sentence.ends_with(&["DON'T".to_string(), "YOU".to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> bool {
        is_question(&s.split_whitespace().map(str::to_string).collect::<Vec<_>>())
    }

    #[test]
    fn doctor_parses() {
        let s = &*DOCTOR;
        assert_eq!(s.greeting, "How do you do. Please tell me your problem.");
        let my = &s.keywords[s.memory_keyword];
        assert_eq!(&*my.word, "MY");
        assert_eq!(my.substitute.as_deref(), Some("YOUR"));
        assert_eq!(my.rank, 2);
        assert_eq!(s.memory_rules.len(), 4);
        assert_eq!(s.none.decompositions[0].reassemblies.len(), 4);
        assert!(
            s.keyword("NONE").is_none(),
            "NONE must not be reachable from input"
        );
        let computer = &s.keywords[s.keyword("COMPUTER").unwrap()];
        assert_eq!(computer.rank, 50);
        let how = &s.keywords[s.keyword("HOW").unwrap()];
        assert_eq!(how.link, s.keyword("WHAT"));
        let dont = &s.keywords[s.keyword("DONT").unwrap()];
        assert!(!dont.has_transformation());
        assert_eq!(dont.substitute.as_deref(), Some("DON'T"));
        let mom = &s.keywords[s.keyword("MOM").unwrap()];
        assert_eq!(&*mom.tags, &["FAMILY".into()] as &[Box<str>]);
    }

    #[test]
    fn tags_are_resolved() {
        let s = &*DOCTOR;
        let my = &s.keywords[s.keyword("MY").unwrap()];
        let PatElem::Tagged { words, .. } = &my.decompositions[0].pattern[3] else {
            panic!("expected (/FAMILY)");
        };
        for w in [
            "MOTHER", "MOM", "DAD", "FATHER", "SISTER", "BROTHER", "WIFE", "CHILDREN",
        ] {
            assert!(words.iter().any(|x| &**x == w), "{w} should be FAMILY");
        }
        let i = &s.keywords[s.keyword("I").unwrap()];
        let PatElem::Tagged { words, .. } = &i.decompositions[4].pattern[2] else {
            panic!("expected (/BELIEF)");
        };
        assert_eq!(words.len(), 4);
    }

    #[test]
    fn every_fragment_reference_is_in_range() {
        let s = &*DOCTOR;
        let check = |pattern: &[PatElem], parts: &[Part], who: &str| {
            for p in parts {
                if let Part::Frag(n) = p {
                    assert!(
                        *n >= 1 && *n <= pattern.len(),
                        "{who}: fragment {n} out of range"
                    );
                }
            }
        };
        for k in s.keywords.iter().chain(std::iter::once(&s.none)) {
            for d in k.decompositions.iter() {
                for r in d.reassemblies.iter() {
                    match r {
                        Reassembly::Template(t) => check(&d.pattern, &t.parts, &k.word),
                        Reassembly::Pre { parts, .. } => check(&d.pattern, parts, &k.word),
                        _ => {}
                    }
                }
            }
        }
        for m in s.memory_rules.iter() {
            check(&m.pattern, &m.template.parts, "MEMORY");
        }
    }

    #[test]
    fn slot_table_covers_every_decomposition() {
        let s = &*DOCTOR;
        let n: usize = s
            .keywords
            .iter()
            .map(|k| k.decompositions.len())
            .sum::<usize>()
            + s.none.decompositions.len();
        assert_eq!(s.slot_lens.len(), n);
        assert!(s.slot_lens.iter().all(|&l| l > 0));
    }

    #[test]
    fn question_detection() {
        assert!(q("IN WHAT WAY"));
        assert!(q("YOUR 3"));
        assert!(q("DO YOU THINK COMING HERE WILL HELP YOU NOT TO BE 5"));
        assert!(q("YOU LIKE TO THINK I 3 YOU - DON'T YOU"));
        assert!(q("WHAT IS THE CONNECTION, DO YOU SUPPOSE"));
        assert!(q("YOU HAVE A PARTICULAR PERSON IN MIND, DON'T YOU"));
        assert!(q("YOU BELIEVE I CAN 4 DON'T YOU"));
        assert!(q("SUPPOSE I DID 3 YOU - WHAT WOULD THAT MEAN"));
        assert!(q("WHEN"));
        assert!(!q("I AM SORRY TO HEAR YOU ARE 5"));
        assert!(!q("TELL ME MORE ABOUT YOUR FAMILY"));
        assert!(!q("HOW DO YOU DO.  PLEASE STATE YOUR PROBLEM"));
        assert!(!q(
            "I'VE TOLD YOU BEFORE, I DON'T CARE ABOUT NAMES - PLEASE CONTINUE"
        ));
        assert!(!q("WE WERE DISCUSSING YOU - NOT ME"));
    }

    #[test]
    fn parser_rejects_broken_scripts() {
        assert!(Script::parse("(HELLO").is_err());
        assert!(Script::parse("(HI) (FOO ((0) (=NOWHERE)))").is_err());
        assert!(
            Script::parse("(HI) START (FOO ((0) (BAR)))").is_err(),
            "no NONE/MEMORY"
        );
    }
}
