//! A deployment behind TLS: confab behind a TLS-terminating proxy on loopback with a self-signed
//! certificate. The client library (`wss://` and `https://`) and `confab chat` reach it when
//! told to trust that certificate, and refuse it when not.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::{ELIZA, Server, T, free_port, next_matching, temp_dir};
use confab_client::{Client, Config, Event, Outgoing, within};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

/// A self-signed certificate for `localhost` and 127.0.0.1: (certificate PEM, key PEM).
fn self_signed() -> (String, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("certificate");
    (ck.cert.pem(), ck.signing_key.serialize_pem())
}

/// Accepts TLS on a free loopback port and forwards the plain bytes to `backend`; returns the
/// port.
async fn tls_proxy(cert_pem: &str, key_pem: &str, backend: u16) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return; // a client that did not trust us
                };
                let Ok(mut plain) = TcpStream::connect(("127.0.0.1", backend)).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn client_reaches_a_tls_deployment_with_its_certificate() {
    let dir = temp_dir();
    let backend = free_port();
    let _srv = Server::start(backend, &dir);
    let (cert, key) = self_signed();
    let port = tls_proxy(&cert, &key, backend).await;
    let url = format!("https://localhost:{port}");

    // Not trusted: the system's roots do not include a self-signed certificate.
    let refused = within(T, Client::connect(Config::new(&url)))
        .await
        .expect("a bounded refusal");
    let err = refused.err().expect("an untrusted certificate is refused");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "the error names the certificate: {err}"
    );

    // Trusted: the socket (wss://) and REST (https://) both go through TLS.
    let (client, mut events) = within(
        T,
        Client::connect(
            Config::new(&url)
                .sender_name("Pat")
                .add_root_certificate_pem(cert.as_bytes()),
        ),
    )
    .await
    .expect("connects in time")
    .expect("connects over TLS");
    let eliza: Uuid = ELIZA.parse().unwrap();
    let agents = client.rest().agents().await.expect("REST over https");
    assert!(agents.iter().any(|a| a.id == eliza));
    let dm = client
        .rest()
        .dm_channel(client.entity_id(), eliza)
        .await
        .unwrap();
    client.join(dm.id).await.unwrap();
    let ack = client
        .send(Outgoing::new(dm.id, "I am unhappy.").dm_with(eliza))
        .await
        .expect("acknowledged over wss");
    let reply = next_matching(
        &mut events,
        |e| matches!(e, Event::Message(m) if m.is_agent_reply()),
    )
    .await;
    let Event::Message(reply) = reply else {
        unreachable!()
    };
    assert_eq!(reply.in_reply_to, Some(ack.message_id.to_string()));
    let history = client.rest().history(dm.id, 10, None).await.unwrap();
    assert!(history.iter().any(|m| m.id == ack.message_id));
    client.close();
}

#[tokio::test]
async fn confab_chat_reaches_a_tls_deployment_with_ca_file() {
    let dir = temp_dir();
    let backend = free_port();
    let _srv = Server::start(backend, &dir);
    let (cert, key) = self_signed();
    let port = tls_proxy(&cert, &key, backend).await;
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &cert).unwrap();

    // stdin is a pipe, so the chat runs in line mode.
    let mut chat = Command::new(env!("CARGO_BIN_EXE_confab"))
        .args([
            "chat",
            &format!("https://localhost:{port}"),
            "--name",
            "Pat",
        ])
        .arg("--ca-file")
        .arg(&ca)
        .env("NO_COLOR", "1")
        .env("CONFAB_CHAT_STATE", dir.join("chat.json"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start confab chat");
    let mut stdin = chat.stdin.take().unwrap();
    let stdout = chat.stdout.take().unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut wait_for = async |needle: &str| {
        within(T, async {
            while let Some(line) = lines.recv().await {
                seen.push(line.clone());
                if line.contains(needle) {
                    return;
                }
            }
            panic!("chat exited; printed:\n{}", seen.join("\n"));
        })
        .await
        .unwrap_or_else(|| panic!("no {needle:?} within {T:?}"));
    };
    wait_for("connected").await;
    wait_for("Type a message").await;
    writeln!(stdin, "I am unhappy.").unwrap();
    // The agent's streamed answer: "Eliza: …" (ELIZA's DOCTOR echoes the sad word).
    wait_for("Eliza: ").await;
    writeln!(stdin, "/quit").unwrap();
    drop(stdin);
    let status = within(T, tokio::task::spawn_blocking(move || chat.wait()))
        .await
        .expect("chat exits after /quit")
        .unwrap()
        .unwrap();
    assert!(status.success());
}
