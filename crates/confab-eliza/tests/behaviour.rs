//! ELIZA's rules one by one, seeding, and robustness.

use confab_eliza::Eliza;

fn replies(eliza: &mut Eliza, inputs: &[&str]) -> Vec<String> {
    inputs.iter().map(|i| eliza.respond(i)).collect()
}

const TWENTY_LINES: [&str; 20] = [
    "Hello there.",
    "I am sad.",
    "My mother never listens to me.",
    "I think you don't understand me.",
    "Why can't you help me?",
    "Perhaps it is my fault.",
    "I dreamed about a horse.",
    "Everybody hates me.",
    "You are a machine.",
    "I remember my childhood.",
    "Because nobody cares.",
    "Yes.",
    "No.",
    "I feel lonely.",
    "My sister is nice.",
    "Can you help me?",
    "What should I do?",
    "I want a friend.",
    "It rained today.",
    "You remind me of my father.",
];

// --- seeding -------------------------------------------------------------

#[test]
fn same_seed_same_conversation() {
    let a = replies(&mut Eliza::with_seed(42), &TWENTY_LINES);
    let b = replies(&mut Eliza::with_seed(42), &TWENTY_LINES);
    assert_eq!(a, b);
    assert!(a.iter().all(|r| !r.is_empty()));
}

#[test]
fn different_seeds_differ_somewhere() {
    let a = replies(&mut Eliza::with_seed(42), &TWENTY_LINES);
    let b = replies(&mut Eliza::with_seed(43), &TWENTY_LINES);
    assert_ne!(a, b);
    let classic = replies(&mut Eliza::new(), &TWENTY_LINES);
    assert_ne!(a, classic);
}

#[test]
fn seeded_runs_still_cycle_through_every_reassembly() {
    // A rule with four reassemblies gives four different replies in a row,
    // whatever the starting point.
    for seed in 0..20 {
        let mut e = Eliza::with_seed(seed);
        let mut seen = replies(&mut e, &["Sorry.", "Sorry.", "Sorry.", "Sorry."]);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 4, "seed {seed}");
    }
}

#[test]
fn random_instances_work() {
    let mut e = Eliza::random();
    assert!(!e.respond("I am happy").is_empty());
}

// --- keywords, ranks, cycling ---------------------------------------------

#[test]
fn i_am_sorry_is_about_you_not_sorry() {
    // I'M and SORRY both rank 0; I'M comes first, so PRE rewrites the text
    // to "YOU ARE SORRY" and the I rules answer.
    let mut e = Eliza::new();
    assert_eq!(
        e.respond("I'm sorry."),
        "Is it because you are sorry that you came to me?"
    );
}

#[test]
fn reassemblies_cycle_in_order_and_wrap() {
    let mut e = Eliza::new();
    assert_eq!(
        replies(&mut e, &["Sorry", "sorry!", "SORRY", "So sorry.", "sorry"]),
        [
            "Please don't apoligize.",
            "Apologies are not necessary.",
            "What feelings do you have when you apologize?",
            "I've told you that apologies are not required.",
            "Please don't apoligize.",
        ]
    );
}

#[test]
fn higher_rank_wins() {
    // COMPUTER (50) outranks I (0) and ALWAYS (1).
    let mut e = Eliza::new();
    assert_eq!(
        e.respond("I always hate computers."),
        "Do computers worry you?"
    );
    // NAME (15) outranks MY (2).
    assert_eq!(
        e.respond("My name is Alice."),
        "I am not interested in names."
    );
}

#[test]
fn only_the_first_clause_with_a_keyword_counts() {
    let mut e = Eliza::new();
    // "It rained." has no keyword and is discarded; the next clause is used
    // and the text after it is dropped.
    assert_eq!(
        e.respond("It rained. I need a holiday, and you remember nothing."),
        "What would it mean to you if you got a holiday?"
    );
    // BUT is a delimiter, like the comma.
    assert_eq!(
        e.respond("My dog is old but I need him."),
        "Your dog is old?"
    );
}

#[test]
fn none_fallback_cycles() {
    let mut e = Eliza::new();
    assert_eq!(
        replies(&mut e, &["The weather.", "Trees.", "Hmm.", "Sky.", "Rain."]),
        [
            "I am not sure I understand you fully.",
            "Please go on.",
            "What does that suggest to you?",
            "Do you feel strongly about discussing such things?",
            "I am not sure I understand you fully.",
        ]
    );
}

#[test]
fn memory_is_recalled_when_no_keyword_and_the_counter_says_so() {
    let mut e = Eliza::new();
    // Input 1 lays down a memory; input 3 is the first with LIMIT = 4.
    let r1 = e.respond("My sister hates my cooking.");
    assert_eq!(r1, "Tell me more about your family.");
    assert_eq!(
        e.respond("Anyway."),
        "I am not sure I understand you fully."
    );
    let r3 = e.respond("Anyway.");
    assert!(r3.contains("your sister hates your cooking"), "{r3}");
    // Later turns without keywords fall back to NONE once the queue is empty.
    assert_eq!(e.respond("Anyway."), "Please go on.");
}

#[test]
fn memory_without_counter() {
    let mut e = Eliza::new().with_limit_counter(false);
    e.respond("My car broke down.");
    let recalled = e.respond("Anyway.");
    assert!(recalled.contains("your car broke down"), "{recalled}");
}

// --- synonyms, substitutions, equivalences ---------------------------------

#[test]
fn star_groups_pick_out_moods() {
    let mut e = Eliza::new();
    assert_eq!(e.respond("I am sad."), "I am sorry to hear you are sad.");
    assert_eq!(e.respond("I am glad."), "How have I helped you to be glad?");
    assert_eq!(
        e.respond("I am quite sick."),
        "Do you think coming here will help you not to be sick?"
    );
}

#[test]
fn dlist_tags_match_family_and_belief() {
    let mut e = Eliza::new();
    // MOM is substituted by MOTHER and tagged FAMILY.
    assert_eq!(
        e.respond("My mom is strict."),
        "Tell me more about your family."
    );
    assert_eq!(
        e.respond("My brother laughs at me."),
        "Who else in your family laughs at you?"
    );
    // (0 YOU (/BELIEF) YOU 0)
    assert_eq!(
        e.respond("I believe I am right."),
        "Do you really think so?"
    );
    assert_eq!(
        e.respond("I feel I am lost."),
        "But you are not sure you are lost."
    );
}

#[test]
fn person_swaps() {
    let mut e = Eliza::new();
    assert_eq!(e.respond("You hate me."), "Why do you think I hate you?");
    assert_eq!(
        e.respond("I need your advice."),
        "What would it mean to you if you got my advice?"
    );
    // MY (rank 2) outranks I (rank 0).
    assert_eq!(e.respond("I need my space."), "Your space?");
    assert_eq!(
        e.respond("You are mean."),
        "What makes you think I am mean?"
    );
    assert_eq!(
        e.respond("I dont know myself."),
        "Don't you really know yourself?"
    );
}

#[test]
fn equivalence_links() {
    let mut e = Eliza::new();
    // HOW, WHEN -> WHAT
    assert_eq!(e.respond("How does this work?"), "Why do you ask?");
    assert_eq!(
        e.respond("When will it end?"),
        "Does that question interest you?"
    );
    // SAME -> DIT, MAYBE -> PERHAPS, CERTAINLY -> YES
    assert_eq!(e.respond("They are the same."), "In what way?");
    assert_eq!(e.respond("Maybe."), "You don't seem quite certain.");
    assert_eq!(e.respond("Certainly."), "You seem quite positive.");
    // Language keywords -> XFREMD
    assert_eq!(
        e.respond("Parlez-vous francais?"),
        "I am sorry, I speak only English."
    );
    // EVERYBODY -> EVERYONE; (0 (* EVERYONE EVERYBODY NOBODY NOONE) 0)
    assert_eq!(e.respond("Nobody loves me."), "Really, nobody?");
}

#[test]
fn pre_rewrites_then_links() {
    // (YOU'RE = I'M ((0 I'M 0) (PRE (I ARE 3) (=YOU))))
    let mut e = Eliza::new();
    assert_eq!(
        e.respond("You're annoying."),
        "What makes you think I am annoying?"
    );
}

#[test]
fn newkey_falls_through_to_the_next_keyword() {
    // LIKE (10) is on top, but with no "is/are/am/was ... LIKE" it says
    // NEWKEY; the next keyword, I, answers.
    let mut e = Eliza::new();
    assert_eq!(e.respond("I like cheese."), "You say you like cheese?");
    // NEWKEY with nothing left: NONE answers.
    assert_eq!(
        e.respond("Cats like cheese."),
        "I am not sure I understand you fully."
    );
}

#[test]
fn keeps_the_users_spelling_in_echoes() {
    let mut e = Eliza::new();
    assert_eq!(
        e.respond("my friend Bob visited NASA"),
        "Your friend Bob visited NASA?"
    );
}

#[test]
fn greeting_and_farewell() {
    let e = Eliza::new();
    assert_eq!(e.greeting(), "How do you do. Please tell me your problem.");
    assert_eq!(e.farewell(), "Goodbye. Thank you for talking to me.");
    for bye in [
        "bye",
        "Bye!",
        "goodbye",
        "Good bye, Eliza.",
        "bye-bye",
        "QUIT",
        "exit",
        "ok bye then",
    ] {
        assert!(Eliza::is_farewell(bye), "{bye}");
    }
    for not in [
        "",
        "I want to quit smoking",
        "I said bye to my mother yesterday",
        "hello",
        "🙂",
    ] {
        assert!(!Eliza::is_farewell(not), "{not}");
    }
}

// --- robustness -----------------------------------------------------------

#[test]
fn odd_inputs_never_panic_and_always_get_a_reply() {
    let long = "my mother says ".repeat(10_000);
    let no_spaces = "x".repeat(100_000);
    let commas = ",".repeat(50_000);
    let inputs: Vec<&str> = vec![
        "",
        " ",
        "\t\n\r",
        "🙂",
        "👨‍👩‍👧‍👦🔥💯",
        "你好，我很难过。",
        "Ich bin traurig, mein Vater ist streng.",
        "ÆSOP Ω ß İ ǅ",
        "\u{0}\u{1}\u{7f}",
        "\u{200B}\u{FEFF}\u{202E}",
        "'''''",
        "- - - -",
        "0 1 2 3 4 5",
        "...,,,!!!???",
        "but but but",
        "MY",
        "my",
        "I",
        "you",
        "none",
        "NEWKEY PRE DLIST MEMORY",
        "=WHAT (=YOU) (0 YOU 0)",
        &long,
        &no_spaces,
        &commas,
    ];
    let mut classic = Eliza::new();
    let mut seeded = Eliza::with_seed(9);
    for _ in 0..3 {
        for input in &inputs {
            for e in [&mut classic, &mut seeded] {
                let reply = e.respond(input);
                assert!(!reply.trim().is_empty(), "empty reply to {input:?}");
                assert!(reply.ends_with(['.', '?', '!']), "{reply:?}");
            }
        }
    }
}

#[test]
fn generated_inputs_never_panic() {
    // A small deterministic generator mixing script keywords, ordinary
    // words, punctuation, non-ASCII and emoji.
    const PIECES: &[&str] = &[
        "I",
        "you",
        "my",
        "your",
        "me",
        "am",
        "are",
        "was",
        "were",
        "I'm",
        "you're",
        "can",
        "can't",
        "dont",
        "why",
        "what",
        "how",
        "because",
        "sorry",
        "remember",
        "if",
        "dreamed",
        "dreams",
        "like",
        "alike",
        "same",
        "computer",
        "machines",
        "name",
        "deutsch",
        "hello",
        "yes",
        "no",
        "perhaps",
        "maybe",
        "everybody",
        "nobody",
        "always",
        "mother",
        "father",
        "mom",
        "dad",
        "sister",
        "wife",
        "children",
        "feel",
        "think",
        "believe",
        "wish",
        "want",
        "need",
        "sad",
        "happy",
        "depressed",
        "remind",
        "of",
        "the",
        "a",
        "cat",
        "Bob",
        "NASA",
        "but",
        ",",
        ".",
        "?",
        "!",
        ";",
        "'",
        "-",
        "0",
        "3",
        "é",
        "Ω",
        "🙂",
        "日本",
        "\n",
        "  ",
    ];
    let mut state = 0x1234_5678_9ABC_DEF0u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut classic = Eliza::new();
    let mut seeded = Eliza::with_seed(2024);
    let mut lenient = Eliza::with_seed(7).with_limit_counter(false);
    for _ in 0..3_000 {
        let len = (next() % 25) as usize;
        let mut input = String::new();
        for _ in 0..len {
            input.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
            if next() % 3 != 0 {
                input.push(' ');
            }
        }
        for e in [&mut classic, &mut seeded, &mut lenient] {
            let reply = e.respond(&input);
            assert!(!reply.trim().is_empty(), "empty reply to {input:?}");
            assert!(reply.ends_with(['.', '?', '!']), "{input:?} -> {reply:?}");
            assert!(reply.len() < 4_000, "{input:?} -> {reply:?}");
        }
    }
}

#[test]
fn many_conversations_share_the_script() {
    let mut handles = Vec::new();
    for t in 0..4u64 {
        handles.push(std::thread::spawn(move || {
            let mut e = Eliza::with_seed(t);
            replies(&mut e, &TWENTY_LINES)
        }));
    }
    for (t, h) in handles.into_iter().enumerate() {
        let got = h.join().expect("thread");
        assert_eq!(got, replies(&mut Eliza::with_seed(t as u64), &TWENTY_LINES));
    }
}
