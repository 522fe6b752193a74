//! The full-screen `confab chat` in a real pseudo-terminal, its screen parsed by a terminal
//! emulator (vt100): the DM with ELIZA (type, see the reply), the input line's editing keys and
//! history, a resize, a channel list, a server restart (the status bar goes through
//! reconnecting → reconnected with the server's recovery report), quitting (the terminal is
//! restored), and `/upload` (needs the media routes of the server).

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::{Server, T, free_port, temp_dir};
use confab_client::{Client, Config, Outgoing};
use portable_pty::{CommandBuilder, MasterPty, PtySize, native_pty_system};
use uuid::Uuid;

struct Screen {
    parser: vt100::Parser,
    /// Every row ever drawn (to see states that do not last, like a streaming reply).
    seen: std::collections::HashSet<String>,
    closed: bool,
}

struct Tty {
    screen: Arc<(Mutex<Screen>, Condvar)>,
    writer: Box<dyn Write + Send>,
    master: Box<dyn MasterPty + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
}

fn size(rows: u16, cols: u16) -> PtySize {
    PtySize {
        rows,
        cols,
        pixel_width: 0,
        pixel_height: 0,
    }
}

fn nz(n: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(n).unwrap()
}

impl Tty {
    fn spawn(url: &str, state: &Path, rows: u16, cols: u16) -> Tty {
        let pty = native_pty_system().openpty(size(rows, cols)).unwrap();
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_confab"));
        cmd.args(["chat", url, "--name", "Pat"]);
        cmd.env("CONFAB_CHAT_STATE", state);
        cmd.env("TERM", "xterm-256color");
        let child = pty.slave.spawn_command(cmd).unwrap();
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().unwrap();
        let writer = pty.master.take_writer().unwrap();
        let screen = Arc::new((
            Mutex::new(Screen {
                parser: vt100::Parser::new(nz(rows), nz(cols), 0),
                seen: Default::default(),
                closed: false,
            }),
            Condvar::new(),
        ));
        let feed = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                let n = reader.read(&mut buf).unwrap_or(0);
                let (lock, cv) = &*feed;
                let mut s = lock.lock().unwrap();
                if n == 0 {
                    s.closed = true;
                    cv.notify_all();
                    return;
                }
                s.parser.process(&buf[..n]);
                let (_, cols) = s.parser.screen().size();
                let rows: Vec<String> = s.parser.screen().rows(0, cols.into()).collect();
                s.seen.extend(rows);
                cv.notify_all();
            }
        });
        Tty {
            screen,
            writer,
            master: pty.master,
            child,
        }
    }

    fn rows(&self) -> Vec<String> {
        let s = self.screen.0.lock().unwrap();
        let (_, cols) = s.parser.screen().size();
        s.parser.screen().rows(0, cols.into()).collect()
    }

    fn dump(&self) -> String {
        self.rows().join("\n")
    }

    /// Waits (bounded) until the screen satisfies `pred`; returns the rows then.
    fn wait(&self, what: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + T;
        let (lock, cv) = &*self.screen;
        let mut s = lock.lock().unwrap();
        loop {
            let (_, cols) = s.parser.screen().size();
            let rows: Vec<String> = s.parser.screen().rows(0, cols.into()).collect();
            if pred(&rows) {
                return rows;
            }
            let now = Instant::now();
            assert!(
                now < deadline && !s.closed,
                "timed out waiting for {what}; screen:\n{}",
                rows.join("\n")
            );
            s = cv.wait_timeout(s, deadline - now).unwrap().0;
        }
    }

    fn wait_text(&self, text: &str) -> Vec<String> {
        self.wait(text, |rows| rows.iter().any(|r| r.contains(text)))
    }

    fn ever_seen(&self, pred: impl Fn(&str) -> bool) -> bool {
        self.screen.0.lock().unwrap().seen.iter().any(|r| pred(r))
    }

    fn keys(&mut self, s: &str) {
        self.writer.write_all(s.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    fn resize(&self, rows: u16, cols: u16) {
        self.screen
            .0
            .lock()
            .unwrap()
            .parser
            .screen_mut()
            .set_size(nz(rows), nz(cols));
        self.master.resize(size(rows, cols)).unwrap();
    }

    /// Waits (bounded) until the input line (the row under the "Message" border) reads `text`.
    fn wait_input(&self, text: &str) {
        self.wait(&format!("the input line {text:?}"), |rows| {
            rows.iter()
                .rposition(|r| r.contains("┌Message"))
                .and_then(|at| rows.get(at + 1))
                .is_some_and(|r| r.trim_matches(|c: char| c == '│' || c.is_whitespace()) == text)
        });
    }

    /// Waits (bounded) for the process to end; its exit code.
    fn exit_code(&mut self) -> u32 {
        let deadline = Instant::now() + T;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.exit_code();
            }
            assert!(
                Instant::now() < deadline,
                "chat did not exit:\n{}",
                self.dump()
            );
            // Nothing to wait on but the process itself: poll it.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        self.child.kill().ok();
    }
}

/// The chat's state file: its user id and channels on this server.
fn state_of(path: &Path, url: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["servers"][url].clone()
}

fn channel_id(state: &serde_json::Value, label: &str) -> Uuid {
    state["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["label"] == label)
        .and_then(|c| c["id"].as_str())
        .unwrap()
        .parse()
        .unwrap()
}

fn fixture() -> (PathBuf, u16, Server, String, PathBuf) {
    let dir = temp_dir();
    let port = free_port();
    let srv = Server::start(port, &dir.join("data"));
    let url = format!("http://127.0.0.1:{port}");
    let state = dir.join("chat.json");
    (dir, port, srv, url, state)
}

#[tokio::test(flavor = "multi_thread")]
async fn tui_dm_editing_resize_channels_and_reconnect() {
    let (dir, port, srv, url, state) = fixture();
    let mut tty = Tty::spawn(&url, &state, 30, 100);
    tty.wait("the DM and the status bar", |rows| {
        rows.iter().any(|r| r.contains("> DM with Eliza"))
            && rows.last().is_some_and(|r| r.contains("● connected"))
    });

    // Type, see the reply (ELIZA reflects "unhappy").
    tty.keys("I am unhappy.\r");
    let rows = tty.wait("Eliza's reply", |rows| {
        rows.iter().any(|r| r.contains("Pat (you): I am unhappy."))
            && rows
                .iter()
                .any(|r| r.contains("│Eliza: ") && !r.contains('▍'))
    });
    let mine = rows
        .iter()
        .position(|r| r.contains("Pat (you): I am unhappy."))
        .unwrap();
    let reply = rows.iter().position(|r| r.contains("│Eliza: ")).unwrap();
    assert!(
        reply > mine,
        "the reply comes after the question:\n{}",
        rows.join("\n")
    );
    tty.wait("the thinking indicator gone", |rows| {
        !rows.iter().any(|r| r.contains("is thinking"))
    });

    // Editing keys: Left, Home, End, Ctrl-A/E, Backspace, Delete, Ctrl-W, Ctrl-U; history.
    tty.keys("helo wrld");
    tty.wait_input("helo wrld");
    tty.keys("\x1b[D\x1b[D\x1b[D"); // ←←← (before "rld")
    tty.keys("o");
    tty.wait_input("helo world");
    tty.keys("\x1b[H"); // Home
    tty.keys("\x1b[C\x1b[C\x1b[C"); // →→→ (after "hel")
    tty.keys("l");
    tty.wait_input("hello world");
    tty.keys("\x01X\x05!"); // Ctrl-A X, Ctrl-E !
    tty.wait_input("Xhello world!");
    tty.keys("\x7f\x17"); // Backspace, Ctrl-W
    tty.wait_input("Xhello");
    tty.keys("\x01\x1b[3~"); // Ctrl-A, Delete
    tty.wait_input("hello");
    tty.keys("\x1b[F "); // End, space
    tty.keys("\x15"); // Ctrl-U
    tty.wait_input("");
    tty.keys("\x1b[A"); // ↑: the last line sent
    tty.wait_input("I am unhappy.");
    tty.keys("\x1b[B"); // ↓: back to the (empty) draft
    tty.wait_input("");

    // Resize: the layout follows (status bar on the new last row, input box above it).
    tty.resize(20, 70);
    let rows = tty.wait("the redraw at 20x70", |rows| {
        rows.len() == 20
            && rows[19].contains("● connected")
            && rows[16].contains("Message")
            && rows[0].contains("Channels")
    });
    assert!(rows.iter().all(|r| r.chars().count() <= 70));
    tty.resize(30, 100);
    tty.wait("the redraw at 30x100", |rows| {
        rows.len() == 30 && rows[29].contains("● connected") && rows[26].contains("Message")
    });

    // A group channel: it joins the list; the title follows.
    let room = format!("tty-{}", &Uuid::new_v4().simple().to_string()[..6]);
    tty.keys(&format!("/join {room}\r"));
    tty.wait("the group channel", |rows| {
        rows.iter().any(|r| r.contains(&format!("> #{room}")))
            && rows.iter().any(|r| r.contains("  DM with Eliza"))
            && rows[0].contains(&format!("#{room}"))
    });
    let me = state_of(&state, &url);
    let room_id = channel_id(&me, &format!("#{room}"));
    // Ctrl-P / Ctrl-N switch channels.
    tty.keys("\x10");
    tty.wait("back in the DM", |rows| {
        rows.iter().any(|r| r.contains("> DM with Eliza"))
    });
    tty.wait("the DM's history", |rows| {
        rows.iter().any(|r| r.contains("Pat (you): I am unhappy."))
    });
    tty.keys("\x0e");
    tty.wait("the group again", |rows| {
        rows.iter().any(|r| r.contains(&format!("> #{room}")))
    });

    // A server restart: reconnecting, then reconnected, rejoined with the recovery report; a
    // message sent meanwhile shows once.
    srv.kill();
    tty.wait("reconnecting", |rows| {
        rows.last().is_some_and(|r| r.contains("reconnecting in"))
    });
    tty.wait("the third attempt", |rows| {
        rows.last().is_some_and(|r| r.contains("(attempt 3)"))
    });
    let srv = Server::start(port, &dir.join("data"));
    let (writer, _events) = Client::connect(Config::new(&url).sender_name("Robin"))
        .await
        .unwrap();
    writer.join(room_id).await.unwrap();
    writer
        .send(Outgoing::new(room_id, "while you were away"))
        .await
        .unwrap();
    let rows = tty.wait("reconnected with a recovery report", |rows| {
        rows.last().is_some_and(|r| {
            r.contains("● reconnected")
                && r.contains(&format!("rejoined #{room}:"))
                && r.contains("recovered (")
        })
    });
    println!("status bar after the restart: {}", rows.last().unwrap());
    let rows = tty.wait_text("Robin: while you were away");
    assert_eq!(
        rows.iter()
            .filter(|r| r.contains("Robin: while you were away"))
            .count(),
        1
    );
    // And the chat still sends.
    tty.keys("back again\r");
    tty.wait("the echo", |rows| {
        rows.iter().any(|r| r.contains("Pat (you): back again"))
    });
    // A message in the channel not open is counted in the list; opening it shows it.
    tty.keys("\x10"); // Ctrl-P: the DM
    tty.wait("the DM open", |rows| {
        rows.iter().any(|r| r.contains("> DM with Eliza"))
    });
    writer
        .send(Outgoing::new(room_id, "are you there?"))
        .await
        .unwrap();
    tty.wait("the unread count", |rows| {
        rows.iter().any(|r| r.contains(&format!("│  #{room} (1)")))
    });
    tty.keys("\x0e"); // Ctrl-N: the group
    let rows = tty.wait("the group with the new message", |rows| {
        rows.iter().any(|r| r.contains(&format!("> #{room} ")))
            && rows.iter().any(|r| r.contains("Robin: are you there?"))
    });
    assert!(!rows.iter().any(|r| r.contains(&format!("#{room} (1)"))));
    writer.close();

    // The channels are kept in the state file for the next run, with the same user.
    let me2 = state_of(&state, &url);
    assert_eq!(me2["entityId"], me["entityId"]);
    assert_eq!(me2["channels"].as_array().unwrap().len(), 2);
    assert_eq!(me2["history"][0], "I am unhappy.");

    tty.keys("\x03"); // Ctrl-C
    assert_eq!(tty.exit_code(), 0);
    let restored = !tty
        .screen
        .0
        .lock()
        .unwrap()
        .parser
        .screen()
        .alternate_screen();
    assert!(restored, "the alternate screen is left on exit");
    println!(
        "a streaming frame was seen: {}",
        tty.ever_seen(|r| r.contains("Eliza: ") && r.contains('▍'))
    );
    drop(srv);
    std::fs::remove_dir_all(dir).ok();
}

/// Needs the server's media routes (`POST /api/messaging/channels/:id/upload-media` and
/// `/media/uploads/...`), which come from the media branch.
#[tokio::test(flavor = "multi_thread")]
async fn tui_upload_sends_the_file_and_shows_the_link() {
    let (dir, port, srv, url, state) = fixture();
    // A 1×1 PNG.
    let png: &[u8] = &[
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f,
        0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8,
        0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00,
        0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    let file = dir.join("pixel.png");
    std::fs::write(&file, png).unwrap();
    let mut tty = Tty::spawn(&url, &state, 30, 160);
    tty.wait_text("> DM with Eliza");
    let dm = channel_id(&state_of(&state, &url), "DM with Eliza");

    tty.keys(&format!("/upload {}\r", file.display()));
    let link_prefix = format!("http://127.0.0.1:{port}/media/uploads/channels/{dm}/");
    let rows = tty.wait("the upload's link and the message", |rows| {
        rows.iter()
            .any(|r| r.contains("uploaded pixel.png (") && r.contains(&link_prefix))
            && rows.iter().any(|r| r.contains("Pat (you): pixel.png"))
            && rows
                .iter()
                .any(|r| r.contains(&format!("file: {link_prefix}")))
    });
    println!("{}", rows.join("\n"));

    // Stored with the attachment, served at the link.
    let (reader, _events) = Client::connect(Config::new(&url)).await.unwrap();
    let history = reader.rest().history(dm, 10, None).await.unwrap();
    let sent = history
        .iter()
        .find(|m| m.text == "pixel.png")
        .expect("the upload's message is stored");
    let att = &sent.attachments[0];
    assert_eq!(att.content_type.as_deref(), Some("image"));
    assert!(
        att.url.contains(&format!("/media/uploads/channels/{dm}/")),
        "{att:?}"
    );
    let served = http_get(port, &att.url[att.url.find("/media/").unwrap()..]);
    assert!(
        served.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&served)
    );
    assert!(
        served.windows(png.len()).any(|w| w == png),
        "the file is served as uploaded"
    );

    // A missing file is an error in the pane, not a crash.
    tty.keys("/upload /no/such/file.png\r");
    tty.wait_text("/no/such/file.png:");
    reader.close();
    tty.keys("/quit\r");
    assert_eq!(tty.exit_code(), 0);
    drop(srv);
    std::fs::remove_dir_all(dir).ok();
}

/// A plain HTTP/1.1 GET on loopback; the whole response.
fn http_get(port: u16, path: &str) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}
