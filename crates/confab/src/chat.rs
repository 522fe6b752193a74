//! `confab chat [URL]`: a terminal chat on top of `confab-client`.
//!
//! Lines you type are sent; lines starting with `/` are commands. Agent replies stream in as
//! they are generated; a status line reports the connection (reconnects included).

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::Args;
use confab_client::{
    AgentInfo, Client, Config, ConnectionState, Event, Message, Outgoing, Reconnect,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use uuid::Uuid;

const ELIZA: &str = "b850bc30-45f8-0041-a00a-83df46d8555d";

#[derive(Args, Clone)]
pub struct ChatArgs {
    /// The server to talk to.
    #[arg(default_value = "http://localhost:3000")]
    url: String,
    /// Your display name.
    #[arg(long, env = "USER", default_value = "User")]
    name: String,
    /// Open this channel (name or id) instead of a DM with the agent.
    #[arg(long)]
    channel: Option<String>,
    /// The agent to open a DM with (name or id); default: Eliza, or the first agent.
    #[arg(long)]
    agent: Option<String>,
    /// The server's API key (`ELIZA_SERVER_AUTH_TOKEN` on the server), when it requires one.
    #[arg(long, env = "CONFAB_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Also trust the certificates in this PEM file for https:// (a private CA or a
    /// self-signed server); the system's root certificates are always trusted.
    #[arg(long, env = "CONFAB_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
}

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
    let mut config = Config::new(&args.url).sender_name(&args.name);
    if let Some(key) = &args.api_key {
        config = config.api_key(key);
    }
    if let Some(path) = &args.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("--ca-file {}: {e}", path.display()))?;
        config = config.add_root_certificate_pem(pem);
    }
    let config = config
        .reconnect(Reconnect {
            max_attempts: None,
            ..Reconnect::default()
        })
        .min_send_interval(Duration::from_millis(250));
    let (client, mut events) = Client::connect(config).await?;
    ui.status("connected");
    let mut view = View {
        channel: None,
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
                let mut msg = Outgoing::new(channel, line);
                if let Some(agent) = dm_agent(&view) {
                    msg = msg.dm_with(agent);
                }
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
    let (_, name) = view.channel.as_ref()?;
    view.agents
        .iter()
        .find(|a| name == &format!("DM with {}", a.name))
        .map(|a| a.id)
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
            let recovered = j.recovered.unwrap_or(0);
            ui.status(&format!(
                "rejoined {} ({recovered} missed message{} recovered)",
                channel_label(view, j.channel_id),
                if recovered == 1 { "" } else { "s" }
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
    let agent = view
        .agents
        .iter()
        .find(|a| a.id.to_string() == wanted || a.name.eq_ignore_ascii_case(wanted))
        .or(view.agents.first())
        .cloned();
    let Some(agent) = agent else {
        ui.error("no agent to talk to");
        return;
    };
    match client.rest().dm_channel(client.entity_id(), agent.id).await {
        Ok(ch) => {
            open(ui, client, view, ch.id, format!("DM with {}", agent.name)).await;
        }
        Err(e) => ui.error(&format!("could not open a DM: {e}")),
    }
}

async fn join(ui: &Ui, client: &Client, view: &mut View, wanted: &str) {
    let found = match wanted.parse::<Uuid>() {
        Ok(id) => Some((id, wanted.to_owned())),
        Err(_) => match client.rest().channels().await {
            Ok(list) => list
                .into_iter()
                .find(|c| c.name == wanted)
                .map(|c| (c.id, c.name)),
            Err(e) => {
                ui.error(&e.to_string());
                return;
            }
        },
    };
    let (id, name) = match found {
        Some(f) => f,
        None => match client
            .rest()
            .create_group(wanted, &[client.entity_id()])
            .await
        {
            Ok(c) => (c.id, c.name),
            Err(e) => {
                ui.error(&format!("could not create #{wanted}: {e}"));
                return;
            }
        },
    };
    open(ui, client, view, id, format!("#{name}")).await;
}

async fn open(ui: &Ui, client: &Client, view: &mut View, id: Uuid, label: String) {
    if let Some((old, _)) = view.channel.take() {
        client.leave(old).ok();
    }
    match client.join(id).await {
        Ok(_) => {
            ui.status(&format!("joined {label} ({id})"));
            view.channel = Some((id, label));
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
            "  /join NAME|ID   open a group channel (created if new)\n  /dm AGENT       a DM with an agent\n  /leave          leave the current channel\n  /agents         list agents\n  /channels       list channels\n  /history [N]    show the last N messages\n  /quit           exit"
        ),
        "join" if !arg.is_empty() => join(ui, client, view, arg).await,
        "dm" => dm(ui, client, view, if arg.is_empty() { ELIZA } else { arg }).await,
        "leave" => match view.channel.take() {
            Some((id, label)) => {
                client.leave(id).ok();
                ui.status(&format!("left {label}"));
            }
            None => ui.error("no channel open"),
        },
        "agents" => {
            view.agents = client.rest().agents().await.unwrap_or_default();
            list_agents(ui, view);
        }
        "channels" => match client.rest().channels().await {
            Ok(list) => {
                for c in list {
                    println!(
                        "  {} {} {}",
                        c.kind,
                        c.name,
                        ui.paint("2", &c.id.to_string())
                    );
                }
            }
            Err(e) => ui.error(&e.to_string()),
        },
        "history" => history(ui, client, view, arg.parse().unwrap_or(20)).await,
        _ => ui.error(&format!("unknown command /{cmd}; /help lists them")),
    }
    true
}
