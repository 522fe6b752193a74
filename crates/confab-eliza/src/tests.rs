//! Tests that look at a conversation's internal state.

use super::*;

fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}

#[test]
fn eliza_is_send_sync_clone_and_small() {
    assert_send_sync_clone::<Eliza>();
    let e = Eliza::new();
    assert!(
        std::mem::size_of::<Eliza>() <= 96,
        "{}",
        std::mem::size_of::<Eliza>()
    );
    assert!(
        e.cycle.len() < 100,
        "one byte per decomposition rule: {}",
        e.cycle.len()
    );
}

#[test]
fn my_lays_down_a_memory_chosen_by_hash() {
    let mut e = Eliza::new();
    assert_eq!(
        e.respond("Well, my boyfriend made me come here."),
        "Your boyfriend made you come here?"
    );
    assert_eq!(
        e.memory.iter().collect::<Vec<_>>(),
        ["Does that have anything to do with the fact that your boyfriend made you come here?"]
    );
}

#[test]
fn memory_waits_for_the_limit_counter() {
    let mut e = Eliza::new();
    // Input 1 (LIMIT 2): a memory is laid down.
    e.respond("My car is broken.");
    assert_eq!(e.memory.len(), 1);
    // Inputs 2 and 4 have no keyword, but LIMIT is 3 and 1: NONE answers.
    assert_eq!(
        e.respond("Bullies."),
        "I am not sure I understand you fully."
    );
    assert_eq!(e.memory.len(), 1);
    // Input 3 (LIMIT 4) has no keyword: the memory is the reply.
    let recalled = e.respond("Whatever.");
    assert!(recalled.contains("your car is broken"), "{recalled}");
    assert!(e.memory.is_empty());
    // Nothing left: NONE continues its own cycle.
    assert_eq!(e.respond("Hmm."), "Please go on.");
}

#[test]
fn without_the_limit_counter_memories_come_back_at_once() {
    let mut e = Eliza::new().with_limit_counter(false);
    e.respond("My car is broken.");
    let recalled = e.respond("Bullies.");
    assert!(recalled.contains("your car is broken"), "{recalled}");
    assert_eq!(
        e.respond("Bullies."),
        "I am not sure I understand you fully."
    );
}

#[test]
fn memory_queue_is_bounded() {
    let mut e = Eliza::new();
    for i in 0..100 {
        e.respond(&format!("My dog number {i} barks."));
    }
    assert_eq!(e.memory.len(), MAX_MEMORIES);
    assert!(e.memory.back().is_some_and(|m| m.contains("99")));
}

#[test]
fn a_keyword_without_a_matching_pattern_gets_a_built_in_reply() {
    // CAN has only (0 CAN I 0) and (0 CAN YOU 0).
    let mut e = Eliza::new();
    let reply = e.respond("Can we go?");
    assert!(NO_MATCH.contains(&reply.as_str()), "{reply}");
}

#[test]
fn seeded_cycles_start_within_bounds() {
    for seed in 0..200 {
        let e = Eliza::with_seed(seed);
        for (slot, &pos) in e.cycle.iter().enumerate() {
            assert!(pos < DOCTOR.slot_lens[slot]);
        }
    }
    assert_ne!(Eliza::with_seed(1).cycle, Eliza::with_seed(2).cycle);
}
