//! What both chat modes do, without the screen: connecting as this user, opening DMs and group
//! channels, building messages, uploading files, describing a recovery.

use std::path::Path;
use std::time::Duration;

use confab_client::{
    AgentInfo, Attachment, Client, Config, Events, MediaFile, MediaUpload, Message, Outgoing,
    Reconnect, Recovery,
};
use uuid::Uuid;

use super::ChatArgs;
use super::state::{SavedChannel, Store};

/// ELIZA, the default agent.
pub const ELIZA: &str = "b850bc30-45f8-0041-a00a-83df46d8555d";

pub fn open_store(args: &ChatArgs) -> Store {
    Store::load(
        args.state.clone().or_else(super::state::default_path),
        &args.url,
    )
}

/// Connects as this user (the entity id kept in the state file), reconnecting forever.
pub async fn connect(args: &ChatArgs, store: &mut Store) -> anyhow::Result<(Client, Events)> {
    let mut config = Config::new(&args.url)
        .sender_name(&args.name)
        .entity_id(store.entity_id());
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
    Ok(Client::connect(config).await?)
}

/// The agent a name or id means (or the first agent when none matches).
pub fn find_agent<'a>(agents: &'a [AgentInfo], wanted: &str) -> Option<&'a AgentInfo> {
    agents
        .iter()
        .find(|a| a.id.to_string() == wanted || a.name.eq_ignore_ascii_case(wanted))
        .or(agents.first())
}

pub fn agent_name(agents: &[AgentInfo], id: Uuid) -> Option<String> {
    agents.iter().find(|a| a.id == id).map(|a| a.name.clone())
}

/// The DM channel with an agent (found or created by the server).
pub async fn dm(
    client: &Client,
    agents: &[AgentInfo],
    wanted: &str,
) -> Result<SavedChannel, String> {
    let agent = find_agent(agents, wanted).ok_or("no agent to talk to")?;
    let ch = client
        .rest()
        .dm_channel(client.entity_id(), agent.id)
        .await
        .map_err(|e| format!("could not open a DM: {e}"))?;
    Ok(SavedChannel {
        id: ch.id,
        label: format!("DM with {}", agent.name),
        agent: Some(agent.id),
    })
}

/// A group channel by id or name (created, with this user in it, when there is none).
pub async fn group(client: &Client, wanted: &str) -> Result<SavedChannel, String> {
    let wanted = wanted.trim_start_matches('#');
    if let Ok(id) = wanted.parse::<Uuid>() {
        return Ok(SavedChannel {
            id,
            label: format!("#{wanted}"),
            agent: None,
        });
    }
    let list = client.rest().channels().await.map_err(|e| e.to_string())?;
    if let Some(c) = list.into_iter().find(|c| c.name == wanted) {
        return Ok(SavedChannel {
            id: c.id,
            label: format!("#{}", c.name),
            agent: None,
        });
    }
    let c = client
        .rest()
        .create_group(wanted, &[client.entity_id()])
        .await
        .map_err(|e| format!("could not create #{wanted}: {e}"))?;
    Ok(SavedChannel {
        id: c.id,
        label: format!("#{}", c.name),
        agent: None,
    })
}

/// A message to the channel (marked as a DM with its agent, if it is one).
pub fn outgoing(channel: &SavedChannel, text: &str) -> Outgoing {
    let msg = Outgoing::new(channel.id, text);
    match channel.agent {
        Some(agent) => msg.dm_with(agent),
        None => msg,
    }
}

/// Uploads a file to the channel; the message that carries it (its text: the file's name).
pub async fn upload(
    client: &Client,
    channel: &SavedChannel,
    path: &Path,
) -> Result<(MediaUpload, Outgoing), String> {
    let file = MediaFile::read(path).await.map_err(|e| e.to_string())?;
    let name = file.name.clone();
    let up = client
        .rest()
        .upload_channel_media(channel.id, file)
        .await
        .map_err(|e| format!("upload failed: {e}"))?;
    let msg = outgoing(channel, &name).attach(Attachment::from_upload(&up));
    Ok((up, msg))
}

/// The links of a message's attachments, absolute.
pub fn links(client: &Client, m: &Message) -> Vec<String> {
    m.attachments
        .iter()
        .map(|a| client.rest().url(&a.url))
        .collect()
}

/// `3 missed messages recovered (complete)`, `… (incomplete: limit_exceeded)`.
pub fn recovery_text(r: &Recovery) -> String {
    let n = r.delivered;
    let state = match &r.reason {
        None if r.complete => "complete".to_owned(),
        None => "incomplete".to_owned(),
        Some(reason) => format!("incomplete: {reason}"),
    };
    format!(
        "{n} missed message{} recovered ({state})",
        if n == 1 { "" } else { "s" }
    )
}
