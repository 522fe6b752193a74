//! The full-screen `confab chat` (ratatui over crossterm).
//!
//! ```text
//! ┌Channels────────┐┌DM with Eliza──────────────────────────────┐
//! │> DM with Eliza ││Pat: I am unhappy.                         │
//! │  #general (2)  ││Eliza: Why are you unhappy?                │
//! └────────────────┘└───────────────────────────────────────────┘
//! ┌Message─────────────────────────────────────────────────────────┐
//! │hello_                                                          │
//! └────────────────────────────────────────────────────────────────┘
//!  ● connected │ rejoined: 1 missed message recovered (complete)
//! ```
//!
//! One loop owns the state and redraws after each key, server event or finished task
//! (uploads and sends run as tasks and report back). Keys: Enter sends (or runs a `/command`);
//! Left/Right, Home/End, Ctrl-A/E, Backspace/Delete, Ctrl-U/K/W edit; Up/Down walk the history;
//! PgUp/PgDn scroll the messages; Ctrl-N/Ctrl-P switch channel; Ctrl-C (or Ctrl-D on an empty
//! line) quits.

use std::collections::HashMap;
use std::time::Duration;

use confab_client::{AgentInfo, Client, ConnectionState, Event, Events, Message, within};
use crossterm::event::{
    Event as TermEvent, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers,
};
use futures::StreamExt;
use ratatui::DefaultTerminal;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, List, ListItem, ListState, Paragraph};
use tokio::sync::mpsc;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};
use uuid::Uuid;

use super::ChatArgs;
use super::input::LineEditor;
use super::session::{self, ELIZA};
use super::state::{SavedChannel, Store};

/// Messages loaded when a channel opens.
const HISTORY: u32 = 50;
/// Bound on waiting for the server's answer to a join.
const JOIN_WAIT: Duration = Duration::from_secs(15);

pub async fn run(args: ChatArgs) -> anyhow::Result<()> {
    let mut store = session::open_store(&args);
    let mut terminal = ratatui::init();
    let mut keys = EventStream::new();
    // Connecting can take a while (the server may be down): show it, and let Ctrl-C out.
    let connecting = format!("connecting to {} …  (Ctrl-C quits)", args.url);
    terminal.draw(|f| {
        f.render_widget(Paragraph::new(connecting.as_str()), f.area());
    })?;
    let connected = {
        let connect = session::connect(&args, &mut store);
        tokio::pin!(connect);
        loop {
            tokio::select! {
                r = &mut connect => break Some(r),
                k = keys.next() => match k {
                    Some(Ok(TermEvent::Key(k))) if is_quit(&k) => break None,
                    None => break None,
                    _ => {}
                }
            }
        }
    };
    let result = match connected {
        None => Ok(()),
        Some(Err(e)) => Err(e),
        Some(Ok((client, events))) => {
            let mut app = App::new(client, store).await;
            app.run(&mut terminal, &mut keys, events, &args).await
        }
    };
    ratatui::restore();
    result
}

fn is_quit(k: &KeyEvent) -> bool {
    k.kind == KeyEventKind::Press
        && k.modifiers.contains(KeyModifiers::CONTROL)
        && k.code == KeyCode::Char('c')
}

/// One line of the message pane.
#[derive(Debug, Clone)]
enum Entry {
    Msg {
        id: Option<Uuid>,
        /// Our own message until the server's copy arrives.
        client_id: Option<String>,
        sender: String,
        me: bool,
        agent: bool,
        text: String,
        links: Vec<String>,
        /// A reply still streaming in.
        streaming: bool,
    },
    Note {
        text: String,
        error: bool,
    },
}

/// What a background task reports.
enum Done {
    Note(String),
    Failed(String),
}

#[derive(Debug, Clone)]
enum Conn {
    Connected { again: bool },
    Disconnected(String),
    Reconnecting { attempt: u32, delay: Duration },
    GaveUp(u32),
}

struct App {
    client: Client,
    store: Store,
    agents: Vec<AgentInfo>,
    current: Option<SavedChannel>,
    /// Messages that arrived in the other channels of the list since they were last open.
    unread: HashMap<Uuid, usize>,
    /// The open channel's messages.
    t: Transcript,
    input: LineEditor,
    /// Lines scrolled up from the bottom.
    scroll: usize,
    /// The message pane's height at the last draw (a page).
    page: usize,
    conn: Conn,
    /// The last rejoin's recovery report, per channel (the open channel's is in the status bar).
    recovery: HashMap<Uuid, String>,
    /// The last notice in the status bar (error or not).
    notice: Option<(String, bool)>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    quit: bool,
}

impl App {
    async fn new(client: Client, store: Store) -> App {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let agents = client.rest().agents().await.unwrap_or_default();
        let input = LineEditor::with_history(store.server.history.clone());
        App {
            client,
            store,
            agents,
            current: None,
            unread: HashMap::new(),
            t: Transcript::default(),
            input,
            scroll: 0,
            page: 10,
            conn: Conn::Connected { again: false },
            recovery: HashMap::new(),
            notice: None,
            done_tx,
            done_rx,
            quit: false,
        }
    }

    async fn run(
        &mut self,
        terminal: &mut DefaultTerminal,
        keys: &mut EventStream,
        mut events: Events,
        args: &ChatArgs,
    ) -> anyhow::Result<()> {
        match &args.channel {
            Some(c) => self.join(c).await,
            None => {
                let wanted = args.agent.clone().unwrap_or_else(|| ELIZA.into());
                self.dm(&wanted).await
            }
        }
        // Stay in every channel of the list, so the list can count what arrives elsewhere.
        let current = self.current_id();
        for ch in self.store.server.channels.clone() {
            if Some(ch.id) == current {
                continue;
            }
            match within(JOIN_WAIT, self.client.join(ch.id)).await {
                Some(Ok(_)) => {}
                Some(Err(e)) => self.error(&format!("could not join {}: {e}", ch.label)),
                None => self.error(&format!("no answer joining {}", ch.label)),
            }
        }
        self.note("Type a message and press Enter. /help lists the commands.");
        while !self.quit {
            terminal.draw(|f| self.draw(f))?;
            tokio::select! {
                key = keys.next() => match key {
                    Some(Ok(TermEvent::Key(k))) if k.kind != KeyEventKind::Release => self.on_key(k).await,
                    Some(Ok(_)) => {} // a resize: the next draw fits the new size
                    Some(Err(e)) => return Err(e.into()),
                    None => break,
                },
                event = events.next() => match event {
                    Some(e) => self.on_event(e),
                    None => break,
                },
                Some(done) = self.done_rx.recv() => match done {
                    Done::Note(s) => self.note(&s),
                    Done::Failed(s) => self.error(&s),
                },
            }
        }
        self.client.close();
        Ok(())
    }

    fn note(&mut self, s: &str) {
        self.t.entries.push(Entry::Note {
            text: s.to_owned(),
            error: false,
        });
        self.notice = Some((s.to_owned(), false));
    }

    fn error(&mut self, s: &str) {
        self.t.entries.push(Entry::Note {
            text: s.to_owned(),
            error: true,
        });
        self.notice = Some((s.to_owned(), true));
    }

    // ---- keys ----

    async fn on_key(&mut self, k: KeyEvent) {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Char('c') if ctrl => self.quit = true,
            KeyCode::Char('d') if ctrl && self.input.text().is_empty() => self.quit = true,
            KeyCode::Char('d') if ctrl => self.input.delete_forward(),
            KeyCode::Char('a') if ctrl => self.input.home(),
            KeyCode::Char('e') if ctrl => self.input.end(),
            KeyCode::Char('u') if ctrl => self.input.kill_to_start(),
            KeyCode::Char('k') if ctrl => self.input.kill_to_end(),
            KeyCode::Char('w') if ctrl => self.input.kill_word(),
            KeyCode::Char('b') if ctrl => self.input.left(),
            KeyCode::Char('f') if ctrl => self.input.right(),
            KeyCode::Char('n') if ctrl => self.switch(1).await,
            KeyCode::Char('p') if ctrl => self.switch(-1).await,
            KeyCode::Char('l') if ctrl => self.scroll = 0,
            KeyCode::Char(c) if !ctrl => self.input.insert(c),
            KeyCode::Backspace => self.input.delete_back(),
            KeyCode::Delete => self.input.delete_forward(),
            KeyCode::Left => self.input.left(),
            KeyCode::Right => self.input.right(),
            KeyCode::Home => self.input.home(),
            KeyCode::End => self.input.end(),
            KeyCode::Up => self.input.older(),
            KeyCode::Down => self.input.newer(),
            KeyCode::PageUp => self.scroll += self.page.saturating_sub(1).max(1),
            KeyCode::PageDown => {
                self.scroll = self
                    .scroll
                    .saturating_sub(self.page.saturating_sub(1).max(1))
            }
            KeyCode::Enter => {
                let line = self.input.submit();
                let line = line.trim();
                if !line.is_empty() {
                    self.store.push_history(line);
                    self.scroll = 0;
                    match line.strip_prefix('/') {
                        Some(cmd) => self.command(cmd).await,
                        None => self.send(line),
                    }
                }
            }
            _ => {}
        }
    }

    fn send(&mut self, text: &str) {
        let Some(channel) = self.current.clone() else {
            self.error("no channel open: /join NAME or /dm AGENT");
            return;
        };
        let msg = session::outgoing(&channel, text);
        self.t.entries.push(Entry::Msg {
            id: None,
            client_id: Some(msg.client_message_id.clone()),
            sender: self.client.config().sender_name.clone(),
            me: true,
            agent: false,
            text: text.to_owned(),
            links: Vec::new(),
            streaming: false,
        });
        if self.client.state() != ConnectionState::Connected {
            self.note("offline: the message is queued and goes out on reconnect");
        }
        let (client, done) = (self.client.clone(), self.done_tx.clone());
        tokio::spawn(async move {
            if let Err(e) = client.send(msg).await {
                let _ = done.send(Done::Failed(format!("not sent: {e}")));
            }
        });
    }

    async fn command(&mut self, cmd: &str) {
        let (name, arg) = cmd.split_once(' ').unwrap_or((cmd, ""));
        let arg = arg.trim();
        match name {
            "quit" | "exit" | "q" => self.quit = true,
            "help" => {
                for l in [
                    "/join NAME|ID   open a group channel (created if new)",
                    "/dm AGENT       a DM with an agent",
                    "/leave          leave the current channel (and drop it from the list)",
                    "/agents         list agents",
                    "/channels       list your channels",
                    "/history [N]    reload the last N messages",
                    "/upload PATH    send a file",
                    "/quit           exit",
                    "Keys: Enter send · ←/→ Home/End Ctrl-A/E move · Backspace/Delete Ctrl-U/K/W delete",
                    "      ↑/↓ history · PgUp/PgDn scroll · Ctrl-N/Ctrl-P next/previous channel · Ctrl-C quit",
                ] {
                    self.note(l);
                }
            }
            "join" if !arg.is_empty() => self.join(arg).await,
            "dm" => self.dm(if arg.is_empty() { ELIZA } else { arg }).await,
            "leave" => match self.current.take() {
                Some(ch) => {
                    self.unread.remove(&ch.id);
                    self.client.leave(ch.id).ok();
                    self.store.forget(ch.id);
                    self.t.entries.clear();
                    self.t.thinking = None;
                    self.note(&format!("left {}", ch.label));
                }
                None => self.error("no channel open"),
            },
            "agents" => {
                self.agents = self.client.rest().agents().await.unwrap_or_default();
                if self.agents.is_empty() {
                    self.note("no agents");
                }
                for a in self.agents.clone() {
                    self.note(&format!("agent {} ({}) {}", a.name, a.status, a.id));
                }
            }
            "channels" => {
                let list = self.store.server.channels.clone();
                if list.is_empty() {
                    self.note("no channels yet: /join NAME or /dm AGENT");
                }
                for (i, c) in list.iter().enumerate() {
                    self.note(&format!("{}. {} {}", i + 1, c.label, c.id));
                }
            }
            "history" => {
                let n = arg.parse().unwrap_or(HISTORY);
                self.load_history(n).await;
            }
            "upload" if !arg.is_empty() => self.upload(arg),
            _ => self.error(&format!("unknown command /{cmd}; /help lists them")),
        }
    }

    fn upload(&mut self, path: &str) {
        let Some(channel) = self.current.clone() else {
            self.error("no channel open: /join NAME or /dm AGENT");
            return;
        };
        self.note(&format!("uploading {path} …"));
        let (client, done) = (self.client.clone(), self.done_tx.clone());
        let path = std::path::PathBuf::from(path);
        tokio::spawn(async move {
            let report = match session::upload(&client, &channel, &path).await {
                Ok((up, msg)) => {
                    let link = client.rest().url(&up.url);
                    let _ = done.send(Done::Note(format!(
                        "uploaded {} ({} bytes): {link}",
                        up.original_name, up.size
                    )));
                    match client.send(msg).await {
                        Ok(_) => return,
                        Err(e) => Done::Failed(format!("not sent: {e}")),
                    }
                }
                Err(e) => Done::Failed(e),
            };
            let _ = done.send(report);
        });
    }

    // ---- channels ----

    async fn dm(&mut self, wanted: &str) {
        match session::dm(&self.client, &self.agents, wanted).await {
            Ok(ch) => self.open(ch).await,
            Err(e) => self.error(&e),
        }
    }

    async fn join(&mut self, wanted: &str) {
        match session::group(&self.client, wanted).await {
            Ok(ch) => self.open(ch).await,
            Err(e) => self.error(&e),
        }
    }

    async fn switch(&mut self, step: isize) {
        let list = &self.store.server.channels;
        if list.is_empty() {
            return;
        }
        let n = list.len() as isize;
        let at = self
            .current
            .as_ref()
            .and_then(|c| list.iter().position(|s| s.id == c.id))
            .map(|i| i as isize)
            .unwrap_or(-1);
        let next = list[(at + step).rem_euclid(n) as usize].clone();
        self.open(next).await;
    }

    async fn open(&mut self, ch: SavedChannel) {
        self.current = None;
        self.unread.remove(&ch.id);
        self.t.entries.clear();
        self.t.thinking = None;
        self.scroll = 0;
        match within(JOIN_WAIT, self.client.join(ch.id))
            .await
            .unwrap_or_else(|| {
                Err(confab_client::Error::Rejected(
                    "no answer from the server".into(),
                ))
            }) {
            Ok(_) => {
                // Keep the list's order; a new channel goes to the end.
                if !self.store.server.channels.iter().any(|c| c.id == ch.id) {
                    self.store.remember(ch.clone());
                }
                self.current = Some(ch.clone());
                self.load_history(HISTORY).await;
                self.notice = Some((format!("joined {}", ch.label), false));
            }
            Err(e) => self.error(&format!("could not join {}: {e}", ch.label)),
        }
    }

    async fn load_history(&mut self, n: u32) {
        let Some(ch) = &self.current else { return };
        match self.client.rest().history(ch.id, n, None).await {
            Ok(list) => {
                // Live messages already shown stay; history goes before them.
                let mut entries: Vec<Entry> = list.iter().map(|m| self.entry(m)).collect();
                let known: Vec<Uuid> = list.iter().map(|m| m.id).collect();
                entries.extend(self.t.entries.drain(..).filter(|e| match e {
                    Entry::Msg { id: Some(id), .. } => !known.contains(id),
                    Entry::Note { .. } => false,
                    _ => true,
                }));
                if entries.is_empty() {
                    entries.push(Entry::Note {
                        text: "(no messages yet)".into(),
                        error: false,
                    });
                }
                self.t.entries = entries;
            }
            Err(e) => self.error(&format!("history: {e}")),
        }
    }

    fn entry(&self, m: &Message) -> Entry {
        let me = m.sender_id == self.client.entity_id().to_string();
        Entry::Msg {
            id: Some(m.id),
            client_id: None,
            sender: m.sender_name.clone(),
            me,
            agent: m.is_agent_reply(),
            text: m.text.clone(),
            links: session::links(&self.client, m),
            streaming: false,
        }
    }

    // ---- server events ----

    fn current_id(&self) -> Option<Uuid> {
        self.current.as_ref().map(|c| c.id)
    }

    fn on_event(&mut self, event: Event) {
        let current = self.current_id();
        match event {
            Event::Control { channel_id, action } if Some(channel_id) == current => {
                let who = self
                    .current
                    .as_ref()
                    .and_then(|c| c.agent)
                    .and_then(|a| session::agent_name(&self.agents, a))
                    .unwrap_or_else(|| "The agent".into());
                self.t.control(&action, who);
            }
            Event::StreamChunk {
                channel_id,
                message_id,
                agent_id,
                chunk,
                ..
            } if Some(channel_id) == current => {
                let sender =
                    session::agent_name(&self.agents, agent_id).unwrap_or_else(|| "Agent".into());
                self.t.chunk(message_id, sender, &chunk);
            }
            Event::Message(m) if Some(m.channel_id) == current => {
                let fresh = self.entry(&m);
                self.t.message(
                    fresh,
                    m.id,
                    m.client_message_id.as_deref(),
                    m.is_agent_reply(),
                );
            }
            Event::Message(m) => {
                let label = self
                    .store
                    .server
                    .channels
                    .iter()
                    .find(|c| c.id == m.channel_id)
                    .map(|c| c.label.clone());
                let mine = m.sender_id == self.client.entity_id().to_string();
                if let Some(label) = label.filter(|_| !mine) {
                    *self.unread.entry(m.channel_id).or_default() += 1;
                    self.notice = Some((format!("new in {label} from {}", m.sender_name), false));
                }
            }
            Event::Complete { channel_id, .. } if Some(channel_id) == current => self.t.complete(),
            Event::StreamError { error, .. } => self.error(&format!("the agent failed: {error}")),
            Event::Error { error, .. } => self.error(&error),
            Event::Disconnected { reason } => {
                self.t.thinking = None;
                self.notice = None;
                self.conn = Conn::Disconnected(reason);
            }
            Event::Reconnecting { attempt, delay } => {
                self.conn = Conn::Reconnecting { attempt, delay }
            }
            Event::Connected { reconnected } => self.conn = Conn::Connected { again: reconnected },
            Event::GaveUp { attempts } => self.conn = Conn::GaveUp(attempts),
            Event::Joined(j) if j.rejoin => {
                let label = self
                    .store
                    .server
                    .channels
                    .iter()
                    .find(|c| c.id == j.channel_id)
                    .map(|c| c.label.clone())
                    .unwrap_or_else(|| j.channel_id.to_string());
                let text = match &j.recovery {
                    Some(r) => session::recovery_text(r),
                    None => "nothing to recover".into(),
                };
                self.recovery
                    .insert(j.channel_id, format!("rejoined {label}: {text}"));
            }
            _ => {}
        }
    }

    // ---- drawing ----

    fn draw(&mut self, f: &mut Frame) {
        let [body, input, status] = Layout::vertical([
            Constraint::Min(3),
            Constraint::Length(3),
            Constraint::Length(1),
        ])
        .areas(f.area());
        let messages = if body.width >= 60 {
            let [side, main] =
                Layout::horizontal([Constraint::Length(24), Constraint::Min(20)]).areas(body);
            self.draw_channels(f, side);
            main
        } else {
            body
        };
        self.draw_messages(f, messages);
        self.draw_input(f, input);
        self.draw_status(f, status);
    }

    fn draw_channels(&self, f: &mut Frame, area: Rect) {
        let current = self.current_id();
        let items: Vec<ListItem> = self
            .store
            .server
            .channels
            .iter()
            .map(|c| match self.unread.get(&c.id) {
                Some(n) => ListItem::new(format!("{} ({n})", c.label))
                    .style(Style::default().add_modifier(Modifier::BOLD)),
                None => ListItem::new(c.label.clone()),
            })
            .collect();
        let selected = self
            .store
            .server
            .channels
            .iter()
            .position(|c| Some(c.id) == current);
        let list = List::new(items)
            .block(Block::default().borders(Borders::ALL).title("Channels"))
            .highlight_style(Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED))
            .highlight_symbol("> ");
        let mut state = ListState::default().with_selected(selected);
        f.render_stateful_widget(list, area, &mut state);
    }

    fn draw_messages(&mut self, f: &mut Frame, area: Rect) {
        let title = match &self.current {
            Some(c) => c.label.clone(),
            None => "no channel: /join NAME or /dm AGENT".into(),
        };
        let block = Block::default().borders(Borders::ALL).title(title);
        let inner = block.inner(area);
        f.render_widget(block, area);
        let width = inner.width.max(1) as usize;
        let mut lines = self.t.lines(width);
        let height = inner.height as usize;
        self.page = height.max(1);
        let max_scroll = lines.len().saturating_sub(height);
        self.scroll = self.scroll.min(max_scroll);
        let end = lines.len() - self.scroll;
        let start = end.saturating_sub(height);
        let visible: Vec<Line> = lines.drain(start..end).collect();
        f.render_widget(Paragraph::new(visible), inner);
    }

    fn draw_input(&self, f: &mut Frame, area: Rect) {
        let title = match self.client.state() {
            ConnectionState::Connected => "Message".to_owned(),
            _ => "Message (offline: sent on reconnect)".to_owned(),
        };
        let block = Block::default().borders(Borders::ALL).title(title);
        let inner = block.inner(area);
        f.render_widget(block, area);
        // Scroll sideways so the cursor stays visible.
        let text = self.input.text();
        let col = self.input.cursor_column();
        let width = inner.width.max(1) as usize;
        let skip = (col + 1).saturating_sub(width);
        let mut shown = String::new();
        let mut skipped = 0;
        for c in text.chars() {
            let w = c.width().unwrap_or(0);
            if skipped < skip {
                skipped += w;
                continue;
            }
            shown.push(c);
        }
        f.render_widget(Paragraph::new(shown), inner);
        f.set_cursor_position(Position::new(
            inner.x + (col - skipped.min(col)) as u16,
            inner.y,
        ));
    }

    fn draw_status(&self, f: &mut Frame, area: Rect) {
        let (dot, conn, color) = match &self.conn {
            Conn::Connected { again: false } => ("●", "connected".to_owned(), Color::Green),
            Conn::Connected { again: true } => ("●", "reconnected".to_owned(), Color::Green),
            Conn::Disconnected(reason) => ("○", format!("disconnected ({reason})"), Color::Red),
            Conn::Reconnecting { attempt, delay } => (
                "◌",
                format!(
                    "reconnecting in {:.1}s (attempt {attempt})",
                    delay.as_secs_f32()
                ),
                Color::Yellow,
            ),
            Conn::GaveUp(n) => ("○", format!("gave up after {n} attempts"), Color::Red),
        };
        let bar = Style::default().bg(Color::DarkGray).fg(Color::White);
        let mut spans = vec![
            Span::styled(format!(" {dot} "), bar.fg(color)),
            Span::styled(conn, bar.add_modifier(Modifier::BOLD)),
        ];
        if let Some(r) = self.current_id().and_then(|c| self.recovery.get(&c)) {
            spans.push(Span::styled(format!(" │ {r}"), bar));
        }
        if self.scroll > 0 {
            spans.push(Span::styled(format!(" │ ↑{} lines", self.scroll), bar));
        }
        if let Some((n, error)) = &self.notice {
            let style = if *error { bar.fg(Color::LightRed) } else { bar };
            spans.push(Span::styled(format!(" │ {n}"), style));
        }
        f.render_widget(Paragraph::new(Line::from(spans)).style(bar), area);
    }
}

/// A channel's messages as the pane shows them: our own lines until the server's copy replaces
/// them, agent replies growing chunk by chunk until the stored message finalizes them, and the
/// thinking indicator while an agent works.
#[derive(Debug, Default)]
struct Transcript {
    entries: Vec<Entry>,
    /// Who is thinking (between `disable_input` and the reply).
    thinking: Option<String>,
}

impl Transcript {
    fn control(&mut self, action: &str, who: String) {
        match action {
            "disable_input" => self.thinking = Some(who),
            "enable_input" => self.thinking = None,
            _ => {}
        }
    }

    fn chunk(&mut self, message_id: Uuid, sender: String, chunk: &str) {
        self.thinking = None;
        let found = self.entries.iter_mut().find_map(|e| match e {
            Entry::Msg {
                id: Some(id),
                text,
                streaming: true,
                ..
            } if *id == message_id => Some(text),
            _ => None,
        });
        match found {
            Some(text) => text.push_str(chunk),
            None => self.entries.push(Entry::Msg {
                id: Some(message_id),
                client_id: None,
                sender,
                me: false,
                agent: true,
                text: chunk.to_owned(),
                links: Vec::new(),
                streaming: true,
            }),
        }
    }

    /// A stored message: it replaces the streamed reply or our own pending line, or is added.
    fn message(&mut self, fresh: Entry, id: Uuid, client_id: Option<&str>, agent_reply: bool) {
        let slot = self.entries.iter_mut().find(|e| match e {
            Entry::Msg {
                id: Some(known), ..
            } => *known == id,
            Entry::Msg {
                client_id: Some(c), ..
            } => client_id == Some(c.as_str()),
            _ => false,
        });
        match slot {
            Some(e) => *e = fresh,
            None => {
                if agent_reply {
                    self.thinking = None;
                }
                self.entries.push(fresh);
            }
        }
    }

    /// The agent run ended.
    fn complete(&mut self) {
        self.thinking = None;
        for e in &mut self.entries {
            if let Entry::Msg { streaming, .. } = e {
                *streaming = false;
            }
        }
    }

    /// Everything as wrapped lines of this width, the thinking indicator last.
    fn lines(&self, width: usize) -> Vec<Line<'static>> {
        let mut lines = Vec::new();
        for e in &self.entries {
            render_entry(e, width, &mut lines);
        }
        if let Some(who) = &self.thinking {
            lines.push(Line::styled(
                format!("{who} is thinking…"),
                Style::default()
                    .fg(Color::DarkGray)
                    .add_modifier(Modifier::ITALIC),
            ));
        }
        lines
    }
}

fn sender_style(name: &str, me: bool, agent: bool) -> Style {
    let color = if me {
        Color::Cyan
    } else if agent {
        Color::Magenta
    } else {
        [Color::Green, Color::Yellow, Color::Blue, Color::Red]
            [name.bytes().map(usize::from).sum::<usize>() % 4]
    };
    Style::default().fg(color).add_modifier(Modifier::BOLD)
}

/// An entry as wrapped lines of the pane's width.
fn render_entry(e: &Entry, width: usize, out: &mut Vec<Line<'static>>) {
    match e {
        Entry::Note { text, error } => {
            let style = if *error {
                Style::default().fg(Color::Red)
            } else {
                Style::default().fg(Color::DarkGray)
            };
            for l in wrap(text, width) {
                out.push(Line::styled(l, style));
            }
        }
        Entry::Msg {
            sender,
            me,
            agent,
            text,
            links,
            streaming,
            client_id,
            id,
        } => {
            let name = if *me {
                format!("{sender} (you)")
            } else {
                sender.clone()
            };
            let head = format!("{name}: ");
            let body_style = if id.is_none() && client_id.is_some() {
                Style::default().fg(Color::DarkGray) // not yet acknowledged
            } else {
                Style::default()
            };
            let mut full = format!("{head}{text}");
            if *streaming {
                full.push('▍');
            }
            for (i, l) in text_lines(&full, width).into_iter().enumerate() {
                if i == 0 && l.starts_with(&head) {
                    let rest = l[head.len()..].to_owned();
                    out.push(Line::from(vec![
                        Span::styled(head.clone(), sender_style(sender, *me, *agent)),
                        Span::styled(rest, body_style),
                    ]));
                } else {
                    out.push(Line::styled(l, body_style));
                }
            }
            for link in links {
                for l in wrap(&format!("  file: {link}"), width) {
                    out.push(Line::styled(
                        l,
                        Style::default()
                            .fg(Color::Blue)
                            .add_modifier(Modifier::UNDERLINED),
                    ));
                }
            }
        }
    }
}

/// A text's lines (it may hold newlines), each wrapped.
fn text_lines(text: &str, width: usize) -> Vec<String> {
    text.split('\n').flat_map(|l| wrap(l, width)).collect()
}

/// Wraps one line to `width` display cells, at spaces when it can.
fn wrap(line: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    if line.width() <= width {
        return vec![line.to_owned()];
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut cur_w = 0;
    for word in line.split_inclusive(' ') {
        let w = word.width();
        // A trailing space may hang past the edge.
        if cur_w + word.trim_end().width() > width && !cur.is_empty() {
            out.push(std::mem::take(&mut cur).trim_end().to_owned());
            cur_w = 0;
        }
        if w > width {
            for c in word.chars() {
                let cw = c.width().unwrap_or(0);
                if cur_w + cw > width {
                    out.push(std::mem::take(&mut cur));
                    cur_w = 0;
                }
                cur.push(c);
                cur_w += cw;
            }
        } else {
            cur.push_str(word);
            cur_w += w;
        }
    }
    if !cur.is_empty() {
        out.push(cur.trim_end().to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &Transcript, width: usize) -> Vec<String> {
        t.lines(width).iter().map(|l| l.to_string()).collect()
    }

    fn msg(id: Option<Uuid>, client_id: Option<&str>, sender: &str, text: &str) -> Entry {
        Entry::Msg {
            id,
            client_id: client_id.map(str::to_owned),
            sender: sender.into(),
            me: sender == "Pat",
            agent: sender == "Eliza",
            text: text.into(),
            links: Vec::new(),
            streaming: false,
        }
    }

    #[test]
    fn own_line_thinking_streaming_and_the_final_reply() {
        let mut t = Transcript::default();
        // Our line shows at once; the server's copy replaces it (not a second line).
        t.entries
            .push(msg(None, Some("c1"), "Pat", "I am unhappy."));
        let mine = Uuid::new_v4();
        t.message(
            msg(Some(mine), None, "Pat", "I am unhappy."),
            mine,
            Some("c1"),
            false,
        );
        assert_eq!(text(&t, 40), vec!["Pat (you): I am unhappy."]);

        t.control("disable_input", "Eliza".into());
        assert_eq!(text(&t, 40)[1], "Eliza is thinking…");

        // The reply grows in place, on one entry, with a cursor while it streams.
        let reply = Uuid::new_v4();
        t.chunk(reply, "Eliza".into(), "Why are ");
        assert_eq!(
            text(&t, 40),
            vec!["Pat (you): I am unhappy.", "Eliza: Why are ▍"]
        );
        t.chunk(reply, "Eliza".into(), "you unhappy?");
        assert_eq!(text(&t, 40)[1], "Eliza: Why are you unhappy?▍");
        assert_eq!(t.entries.len(), 2);

        // The stored message finalizes it (its text wins); complete ends the run.
        t.message(
            msg(Some(reply), None, "Eliza", "Why are you unhappy?"),
            reply,
            None,
            true,
        );
        t.complete();
        assert_eq!(
            text(&t, 40),
            vec!["Pat (you): I am unhappy.", "Eliza: Why are you unhappy?"]
        );
        // A replayed copy of a message already shown is not added again.
        t.message(
            msg(Some(reply), None, "Eliza", "Why are you unhappy?"),
            reply,
            None,
            true,
        );
        assert_eq!(t.entries.len(), 2);

        // Thinking ends with enable_input even without a reply; long lines wrap.
        t.control("disable_input", "Eliza".into());
        t.control("enable_input", String::new());
        assert_eq!(
            text(&t, 12),
            vec![
                "Pat (you): I",
                "am unhappy.",
                "Eliza: Why",
                "are you",
                "unhappy?"
            ]
        );
        assert!(!text(&t, 40).iter().any(|l| l.contains("thinking")));
    }

    #[test]
    fn wraps_at_spaces_and_splits_long_words() {
        assert_eq!(wrap("hello world", 20), vec!["hello world"]);
        assert_eq!(wrap("hello big world", 9), vec!["hello big", "world"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(text_lines("a\nb", 5), vec!["a", "b"]);
        assert!(wrap("日本語のテキスト", 5).iter().all(|l| l.width() <= 5));
    }
}
