//! The line mode of `confab chat` (`--plain`, or stdin/stdout not a terminal).
//!
//! Lines you type are sent; lines starting with `/` are commands. Agent replies stream in as
//! they are generated; a status line reports the connection (reconnects included).

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};

use confab_client::{AgentInfo, Client, ConnectionState, Event, Message};
use tokio::io::{AsyncBufReadExt, BufReader};
use uuid::Uuid;

use super::ChatArgs;
use super::session::{self, ELIZA};
use super::state::{SavedChannel, Store};

struct Ui {
    color: bool,
}

impl Ui {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
    fn status(&self, s: &str) {
        println!("{}", self.paint("2;36", &format!("── {s} ──")));
    }
    fn error(&self, s: &str) {
        println!("{}", self.paint("31", &format!("! {s}")));
    }
    fn sender(&self, name: &str, agent: bool, me: bool) -> String {
        let code = if me {
            "1;36"
        } else if agent {
            "1;35"
        } else {
            ["1;32", "1;33", "1;34", "1;31"][name.bytes().map(usize::from).sum::<usize>() % 4]
        };
        self.paint(code, name)
    }
}

/// What the chat is looking at.
struct View {
    channel: Option<(Uuid, String)>,
    store: Store,
    agents: Vec<AgentInfo>,
    /// Reply id → text printed so far (a reply streaming in).
    streaming: HashMap<Uuid, String>,
    thinking: bool,
    sent: HashSet<String>,
}

pub async fn run(args: ChatArgs) -> anyhow::Result<()> {
    let ui = Ui {
        color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    ui.status(&format!("connecting to {}", args.url));
    let mut store = session::open_store(&args);
    let (client, mut events) = session::connect(&args, &mut store).await?;
    ui.status("connected");
    let mut view = View {
        channel: None,
        store,
        agents: client.rest().agents().await.unwrap_or_default(),
        streaming: HashMap::new(),
        thinking: false,
        sent: HashSet::new(),
    };
    list_agents(&ui, &view);
    match &args.channel {
        Some(c) => join(&ui, &client, &mut view, c).await,
        None => {
            let wanted = args.agent.as_deref().unwrap_or(ELIZA);
            dm(&ui, &client, &mut view, wanted).await
        }
    }
    println!(
        "{}",
        ui.paint(
            "2",
            "Type a message and press Enter. /help lists the commands."
        )
    );

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Ok(Some(line)) = line else { break };
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                if let Some(cmd) = line.strip_prefix('/') {
                    if !command(&ui, &client, &mut view, cmd).await {
                        break;
                    }
                    continue;
                }
                let Some((channel, _)) = view.channel.clone() else {
                    ui.error("no channel open: /join NAME or /dm AGENT");
                    continue;
                };
                let saved = SavedChannel { id: channel, label: String::new(), agent: dm_agent(&view) };
                let msg = session::outgoing(&saved, line);
                view.sent.insert(msg.client_message_id.clone());
                if client.state() != ConnectionState::Connected {
                    ui.status("offline: the message is queued and goes out on reconnect");
                }
                let c = client.clone();
                let ui_color = ui.color;
                tokio::spawn(async move {
                    if let Err(e) = c.send(msg).await {
                        Ui { color: ui_color }.error(&format!("not sent: {e}"));
                    }
                });
            }
            event = events.next() => {
                let Some(event) = event else { break };
                on_event(&ui, &client, &mut view, event);
            }
        }
    }
    client.close();
    ui.status("bye");
    Ok(())
}

fn dm_agent(view: &View) -> Option<Uuid> {
    let (id, _) = view.channel.as_ref()?;
    view.store
        .server
        .channels
        .iter()
        .find(|c| c.id == *id)
        .and_then(|c| c.agent)
}

fn agent_name(view: &View, id: &str) -> Option<String> {
    view.agents
        .iter()
        .find(|a| a.id.to_string() == id)
        .map(|a| a.name.clone())
}

fn list_agents(ui: &Ui, view: &View) {
    if view.agents.is_empty() {
        ui.status("no agents");
    }
    for a in &view.agents {
        println!(
            "  agent {} ({}) {}",
            ui.sender(&a.name, true, false),
            a.status,
            ui.paint("2", &a.id.to_string())
        );
    }
}

fn print_message(ui: &Ui, client: &Client, m: &Message) {
    let me = m.sender_id == client.entity_id().to_string();
    let name = if me {
        format!("{} (you)", m.sender_name)
    } else {
        m.sender_name.clone()
    };
    println!("{}: {}", ui.sender(&name, m.is_agent_reply(), me), m.text);
    for link in session::links(client, m) {
        println!("  {}", ui.paint("4", &format!("file: {link}")));
    }
}

fn on_event(ui: &Ui, client: &Client, view: &mut View, event: Event) {
    let current = view.channel.as_ref().map(|(c, _)| *c);
    let clear = |thinking: &mut bool| {
        if *thinking {
            print!("{}", if ui.color { "\r\x1b[2K" } else { "\n" });
            *thinking = false;
        }
    };
    match event {
        Event::Control { channel_id, action }
            if Some(channel_id) == current
                && action == "disable_input"
                && view.streaming.is_empty() =>
        {
            let who = dm_agent(view)
                .and_then(|a| agent_name(view, &a.to_string()))
                .unwrap_or_else(|| "The agent".into());
            print!("{}", ui.paint("2;3", &format!("{who} is thinking…")));
            let _ = std::io::stdout().flush();
            view.thinking = true;
        }
        Event::StreamChunk {
            channel_id,
            message_id,
            agent_id,
            chunk,
            ..
        } if Some(channel_id) == current => {
            clear(&mut view.thinking);
            if !view.streaming.contains_key(&message_id) {
                let name =
                    agent_name(view, &agent_id.to_string()).unwrap_or_else(|| "Agent".into());
                print!("{}: ", ui.sender(&name, true, false));
                view.streaming.insert(message_id, String::new());
            }
            if let Some(text) = view.streaming.get_mut(&message_id) {
                text.push_str(&chunk);
            }
            print!("{chunk}");
            let _ = std::io::stdout().flush();
        }
        Event::Message(m) if Some(m.channel_id) == current => {
            if let Some(streamed) = view.streaming.remove(&m.id) {
                // The reply was printed as it streamed: finish the line (and fix it if the
                // final text differs).
                println!();
                if streamed.trim() != m.text.trim() {
                    print_message(ui, client, &m);
                }
                return;
            }
            if m.client_message_id
                .as_ref()
                .is_some_and(|c| view.sent.remove(c))
            {
                return; // our own line, already on screen
            }
            clear(&mut view.thinking);
            print_message(ui, client, &m);
        }
        Event::Message(m) => {
            println!(
                "{}",
                ui.paint(
                    "2",
                    &format!("(new message in {}: {})", m.channel_id, m.sender_name)
                )
            );
        }
        Event::Complete { channel_id, .. } if Some(channel_id) == current => {
            clear(&mut view.thinking);
            for (_, _) in view.streaming.drain() {
                println!();
            }
        }
        Event::StreamError { error, .. } => ui.error(&format!("the agent failed: {error}")),
        Event::Error { error, .. } => ui.error(&error),
        Event::Disconnected { reason } => {
            clear(&mut view.thinking);
            ui.status(&format!("disconnected ({reason})"));
        }
        Event::Reconnecting { attempt, delay } => ui.status(&format!(
            "reconnecting in {:.1}s (attempt {attempt})",
            delay.as_secs_f32()
        )),
        Event::Connected { reconnected: true } => ui.status("reconnected"),
        Event::Joined(j) if j.rejoin => {
            let recovery = match &j.recovery {
                Some(r) => session::recovery_text(r),
                None => "nothing to recover".into(),
            };
            ui.status(&format!(
                "rejoined {} ({recovery})",
                channel_label(view, j.channel_id)
            ));
        }
        Event::GaveUp { attempts } => {
            ui.error(&format!("gave up after {attempts} reconnection attempts"))
        }
        _ => {}
    }
}

fn channel_label(view: &View, id: Uuid) -> String {
    match &view.channel {
        Some((c, name)) if *c == id => name.clone(),
        _ => id.to_string(),
    }
}

async fn dm(ui: &Ui, client: &Client, view: &mut View, wanted: &str) {
    match session::dm(client, &view.agents, wanted).await {
        Ok(ch) => open(ui, client, view, ch).await,
        Err(e) => ui.error(&e),
    }
}

async fn join(ui: &Ui, client: &Client, view: &mut View, wanted: &str) {
    match session::group(client, wanted).await {
        Ok(ch) => open(ui, client, view, ch).await,
        Err(e) => ui.error(&e),
    }
}

async fn open(ui: &Ui, client: &Client, view: &mut View, ch: SavedChannel) {
    if let Some((old, _)) = view.channel.take() {
        client.leave(old).ok();
    }
    match client.join(ch.id).await {
        Ok(_) => {
            ui.status(&format!("joined {} ({})", ch.label, ch.id));
            view.channel = Some((ch.id, ch.label.clone()));
            view.store.remember(ch);
            history(ui, client, view, 20).await;
        }
        Err(e) => ui.error(&format!("could not join: {e}")),
    }
}

async fn history(ui: &Ui, client: &Client, view: &View, n: u32) {
    let Some((id, _)) = &view.channel else { return };
    match client.rest().history(*id, n, None).await {
        Ok(list) if list.is_empty() => println!("{}", ui.paint("2", "(no messages yet)")),
        Ok(list) => {
            for m in &list {
                print_message(ui, client, m);
            }
        }
        Err(e) => ui.error(&format!("history: {e}")),
    }
}

/// Runs a `/command`; false to quit.
async fn command(ui: &Ui, client: &Client, view: &mut View, cmd: &str) -> bool {
    let (name, arg) = cmd.split_once(' ').unwrap_or((cmd, ""));
    let arg = arg.trim();
    match name {
        "quit" | "exit" | "q" => return false,
        "help" => println!(
            "  /join NAME|ID   open a group channel (created if new)\n  /dm AGENT       a DM with an agent\n  /leave          leave the current channel\n  /agents         list agents\n  /channels       list your channels\n  /history [N]    show the last N messages\n  /upload PATH    send a file\n  /quit           exit"
        ),
        "join" if !arg.is_empty() => join(ui, client, view, arg).await,
        "dm" => dm(ui, client, view, if arg.is_empty() { ELIZA } else { arg }).await,
        "leave" => match view.channel.take() {
            Some((id, label)) => {
                client.leave(id).ok();
                view.store.forget(id);
                ui.status(&format!("left {label}"));
            }
            None => ui.error("no channel open"),
        },
        "agents" => {
            view.agents = client.rest().agents().await.unwrap_or_default();
            list_agents(ui, view);
        }
        "channels" => {
            if view.store.server.channels.is_empty() {
                ui.status("no channels yet: /join NAME or /dm AGENT");
            }
            for c in &view.store.server.channels {
                let mark = if view.channel.as_ref().is_some_and(|(id, _)| *id == c.id) {
                    "*"
                } else {
                    " "
                };
                println!("{mark} {} {}", c.label, ui.paint("2", &c.id.to_string()));
            }
        }
        "upload" if !arg.is_empty() => {
            let Some((id, label)) = view.channel.clone() else {
                ui.error("no channel open: /join NAME or /dm AGENT");
                return true;
            };
            let ch = SavedChannel {
                id,
                label,
                agent: dm_agent(view),
            };
            match session::upload(client, &ch, std::path::Path::new(arg)).await {
                Ok((up, msg)) => {
                    ui.status(&format!(
                        "uploaded {} ({} bytes): {}",
                        up.original_name,
                        up.size,
                        client.rest().url(&up.url)
                    ));
                    if let Err(e) = client.send(msg).await {
                        ui.error(&format!("not sent: {e}"));
                    }
                }
                Err(e) => ui.error(&e),
            }
        }
        "history" => history(ui, client, view, arg.parse().unwrap_or(20)).await,
        _ => ui.error(&format!("unknown command /{cmd}; /help lists them")),
    }
    true
}
