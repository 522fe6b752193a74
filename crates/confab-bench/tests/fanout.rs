//! A tiny `fanout` (and `agent` with the stand-in agent) against a real confab server on a free
//! port: every message reaches every member exactly once. No timing thresholds.

use clap::Parser;
use confab_bench::{BenchArgs, run};
use confab_server::{Config, LogHub};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

async fn server() -> (confab_server::Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        host: "127.0.0.1".into(),
        port: 0,
        data_dir: dir.path().to_path_buf(),
        fsync: false,
        ..Config::default()
    };
    // A load generator on one address is what the per-client limits exist to stop.
    let limits = &mut config.security.limits;
    limits.socket_messages_per_min = 0;
    limits.socket_joins_per_min = 0;
    limits.connections_per_ip = 0;
    limits.connections_per_entity = 0;
    limits.http_max = 0;
    let running = confab_server::start(config, LogHub::new()).await.unwrap();
    (running, dir)
}

fn args(line: &str, port: u16) -> BenchArgs {
    let url = format!("http://127.0.0.1:{port}");
    let mut argv = vec!["bench".to_owned()];
    argv.extend(line.split_whitespace().map(str::to_owned));
    argv.extend(["--url".into(), url, "--quiet".into()]);
    Cli::parse_from(argv).bench
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_delivers_every_message_once() {
    let (srv, _dir) = server().await;
    // 12 clients in 3 channels (4 members each), 2 senders per channel, closed loop.
    let report = run(args(
        "fanout -c 12 -k 3 --senders-per-channel 2 --window 2 -d 0.5 --drain 30",
        srv.addr.port(),
    ))
    .await
    .unwrap();
    let send = report.send.expect("send stats");
    assert_eq!(report.connect.connected, 12, "{:?}", report.error_samples);
    assert!(send.sent > 0);
    assert_eq!(send.acked, send.sent, "every message acknowledged");
    // Each message is expected once per member of its channel, the sender's own copy included.
    assert_eq!(send.expected, send.sent * 4);
    assert_eq!(send.delivered, send.expected);
    assert_eq!(send.lost, 0);
    assert_eq!(send.duplicates, 0);
    assert_eq!(send.errors, 0, "{:?}", report.error_samples);
    assert_eq!(report.end_reason, "complete");
    assert!(report.latency.unwrap().samples >= send.expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_scenario_with_the_stand_in_agent() {
    let (srv, _dir) = server().await;
    let report = run(args(
        "agent --sessions 5 --rate 50 -d 0.5 --drain 30 --fake-agent",
        srv.addr.port(),
    ))
    .await
    .unwrap();
    let send = report.send.expect("send stats");
    assert!(send.sent > 0);
    assert_eq!(send.delivered, send.sent, "{:?}", report.error_samples);
    assert_eq!(send.unanswered, Some(0));
    assert_eq!(send.errors, 0, "{:?}", report.error_samples);
}
