//! Talk to ELIZA on the terminal: `cargo run -p confab-eliza --example chat [seed]`.

use std::io::{self, BufRead, Write};

use confab_eliza::Eliza;

fn main() -> io::Result<()> {
    let mut eliza = match std::env::args().nth(1).and_then(|s| s.parse().ok()) {
        Some(seed) => Eliza::with_seed(seed),
        None => Eliza::new(),
    };
    let mut out = io::stdout().lock();
    writeln!(out, "{}", eliza.greeting())?;
    for line in io::stdin().lock().lines() {
        let line = line?;
        if Eliza::is_farewell(&line) {
            writeln!(out, "{}", eliza.farewell())?;
            break;
        }
        writeln!(out, "{}", eliza.respond(&line))?;
    }
    Ok(())
}
