//! The conversation printed in Weizenbaum's 1966 CACM paper, reproduced
//! word for word by `Eliza::new()`.

use confab_eliza::Eliza;

/// (user, ELIZA) as printed in the paper (ELIZA's lines were in capitals
/// and unpunctuated on the teletype; here in sentence case). The same
/// conversation is reprinted in Weizenbaum's "Computer Power and Human
/// Reason" (1976).
const CACM_1966: &[(&str, &str)] = &[
    ("Men are all alike.", "In what way?"),
    (
        "They're always bugging us about something or other.",
        "Can you think of a specific example?",
    ),
    (
        "Well, my boyfriend made me come here.",
        "Your boyfriend made you come here?",
    ),
    (
        "He says I'm depressed much of the time.",
        "I am sorry to hear you are depressed.",
    ),
    (
        "It's true. I am unhappy.",
        "Do you think coming here will help you not to be unhappy?",
    ),
    (
        "I need some help, that much seems certain.",
        "What would it mean to you if you got some help?",
    ),
    (
        "Perhaps I could learn to get along with my mother.",
        "Tell me more about your family.",
    ),
    (
        "My mother takes care of me.",
        "Who else in your family takes care of you?",
    ),
    ("My father.", "Your father?"),
    (
        "You are like my father in some ways.",
        "What resemblance do you see?",
    ),
    (
        "You are not very aggressive but I think you don't want me to notice that.",
        "What makes you think I am not very aggressive?",
    ),
    (
        "You don't argue with me.",
        "Why do you think I don't argue with you?",
    ),
    (
        "You are afraid of me.",
        "Does it please you to believe I am afraid of you?",
    ),
    (
        "My father is afraid of everybody.",
        // The paper prints "COMES TO MIND"; "comes to your mind" is a later misquote.
        "What else comes to mind when you think of your father?",
    ),
    (
        "Bullies.",
        "Does that have anything to do with the fact that your boyfriend made you come here?",
    ),
];

#[test]
fn reproduces_the_1966_cacm_conversation_exactly() {
    let mut eliza = Eliza::new();
    assert_eq!(
        eliza.greeting(),
        "How do you do. Please tell me your problem."
    );
    for (i, (user, expected)) in CACM_1966.iter().enumerate() {
        let reply = eliza.respond(user);
        assert_eq!(&reply, expected, "line {}: {user:?}", i + 1);
    }
}

#[test]
fn reproduces_it_from_teletype_capitals_too() {
    let mut eliza = Eliza::new();
    for (user, expected) in CACM_1966 {
        let reply = eliza.respond(&user.to_uppercase());
        assert_eq!(&reply, expected, "{user:?}");
    }
}

#[test]
fn a_fresh_classic_eliza_always_has_the_same_conversation() {
    let run = || {
        let mut eliza = Eliza::new();
        CACM_1966
            .iter()
            .map(|(user, _)| eliza.respond(user))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn clones_continue_independently() {
    let mut a = Eliza::new();
    for (user, _) in &CACM_1966[..7] {
        a.respond(user);
    }
    let mut b = a.clone();
    for (user, expected) in &CACM_1966[7..] {
        assert_eq!(&a.respond(user), expected);
        assert_eq!(&b.respond(user), expected);
    }
}
