//! The input line of the full-screen chat: a cursor over the characters, the usual editing
//! keys, and a history walked with Up/Down (the line being typed is kept while walking).

use unicode_width::UnicodeWidthChar;

#[derive(Debug, Default)]
pub struct LineEditor {
    chars: Vec<char>,
    /// Index into `chars` (0..=len).
    cursor: usize,
    history: Vec<String>,
    /// Position while walking the history; `None`: editing the draft.
    walking: Option<usize>,
    draft: String,
}

impl LineEditor {
    pub fn with_history(history: Vec<String>) -> Self {
        LineEditor {
            history,
            ..LineEditor::default()
        }
    }

    pub fn text(&self) -> String {
        self.chars.iter().collect()
    }

    /// The cursor's column in display cells.
    pub fn cursor_column(&self) -> usize {
        self.chars[..self.cursor]
            .iter()
            .map(|c| c.width().unwrap_or(0))
            .sum()
    }

    fn set(&mut self, text: &str) {
        self.chars = text.chars().collect();
        self.cursor = self.chars.len();
    }

    pub fn insert(&mut self, c: char) {
        self.chars.insert(self.cursor, c);
        self.cursor += 1;
    }

    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.chars.len());
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.chars.len();
    }

    /// Backspace.
    pub fn delete_back(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            self.chars.remove(self.cursor);
        }
    }

    /// Delete.
    pub fn delete_forward(&mut self) {
        if self.cursor < self.chars.len() {
            self.chars.remove(self.cursor);
        }
    }

    /// Ctrl-U: everything before the cursor.
    pub fn kill_to_start(&mut self) {
        self.chars.drain(..self.cursor);
        self.cursor = 0;
    }

    /// Ctrl-K: everything from the cursor on.
    pub fn kill_to_end(&mut self) {
        self.chars.truncate(self.cursor);
    }

    /// Ctrl-W: the word before the cursor (and the spaces after it).
    pub fn kill_word(&mut self) {
        let mut start = self.cursor;
        while start > 0 && self.chars[start - 1].is_whitespace() {
            start -= 1;
        }
        while start > 0 && !self.chars[start - 1].is_whitespace() {
            start -= 1;
        }
        self.chars.drain(start..self.cursor);
        self.cursor = start;
    }

    /// Up: the previous history line.
    pub fn older(&mut self) {
        let next = match self.walking {
            None if self.history.is_empty() => return,
            None => {
                self.draft = self.text();
                self.history.len() - 1
            }
            Some(0) => return,
            Some(i) => i - 1,
        };
        self.walking = Some(next);
        let line = self.history[next].clone();
        self.set(&line);
    }

    /// Down: the next history line, then the draft.
    pub fn newer(&mut self) {
        let Some(i) = self.walking else { return };
        if i + 1 < self.history.len() {
            self.walking = Some(i + 1);
            let line = self.history[i + 1].clone();
            self.set(&line);
        } else {
            self.walking = None;
            let draft = std::mem::take(&mut self.draft);
            self.set(&draft);
        }
    }

    /// Enter: the line (added to the history when not blank); the editor is cleared.
    pub fn submit(&mut self) -> String {
        let line = self.text();
        self.chars.clear();
        self.cursor = 0;
        self.walking = None;
        self.draft.clear();
        if !line.trim().is_empty() && self.history.last() != Some(&line) {
            self.history.push(line.clone());
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> LineEditor {
        let mut e = LineEditor::default();
        s.chars().for_each(|c| e.insert(c));
        e
    }

    #[test]
    fn editing_keys() {
        let mut e = typed("helo world");
        e.home();
        (0..3).for_each(|_| e.right());
        e.insert('l');
        assert_eq!(e.text(), "hello world");
        e.end();
        e.kill_word();
        assert_eq!(e.text(), "hello ");
        e.kill_word();
        assert_eq!(e.text(), "");
        let mut e = typed("abc");
        e.left();
        e.delete_back();
        assert_eq!((e.text().as_str(), e.cursor_column()), ("ac", 1));
        e.delete_forward();
        e.delete_forward();
        assert_eq!(e.text(), "a");
        let mut e = typed("one two");
        e.left();
        e.left();
        e.kill_to_start();
        assert_eq!((e.text().as_str(), e.cursor_column()), ("wo", 0));
        e.right();
        e.kill_to_end();
        assert_eq!(e.text(), "w");
        assert_eq!(typed("日本").cursor_column(), 4);
    }

    #[test]
    fn history_walk_keeps_the_draft() {
        let mut e = LineEditor::with_history(vec!["first".into()]);
        "second".chars().for_each(|c| e.insert(c));
        assert_eq!(e.submit(), "second");
        "dra".chars().for_each(|c| e.insert(c));
        e.older();
        assert_eq!(e.text(), "second");
        e.older();
        assert_eq!(e.text(), "first");
        e.older();
        assert_eq!(e.text(), "first");
        e.newer();
        assert_eq!(e.text(), "second");
        e.newer();
        assert_eq!(e.text(), "dra");
        e.newer();
        assert_eq!(e.text(), "dra");
        assert_eq!(e.submit(), "dra");
        e.submit();
        assert_eq!(e.history, vec!["first", "second", "dra"]);
    }
}
