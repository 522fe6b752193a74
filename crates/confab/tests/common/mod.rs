//! Shared by the integration tests: the real binary on a free port, bounded waits.
#![allow(dead_code)] // each test file uses its own subset

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use confab_client::{Event, within};
use uuid::Uuid;

pub const ELIZA: &str = "b850bc30-45f8-0041-a00a-83df46d8555d";
pub const T: Duration = Duration::from_secs(20);

pub struct Server {
    child: Child,
}

impl Server {
    /// Starts the binary and waits (bounded) until it accepts connections.
    pub fn start(port: u16, dir: &Path) -> Server {
        let child = Command::new(env!("CARGO_BIN_EXE_confab"))
            .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--data-dir")
            .arg(dir)
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start confab");
        let deadline = std::time::Instant::now() + T;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "confab did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child }
    }
    pub fn kill(mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn temp_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("confab-client-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The next event matching `pred`, bounded.
pub async fn next_matching(
    events: &mut confab_client::Events,
    mut pred: impl FnMut(&Event) -> bool,
) -> Event {
    within(T, async {
        loop {
            let e = events.next().await.expect("events ended");
            if pred(&e) {
                return e;
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
}
