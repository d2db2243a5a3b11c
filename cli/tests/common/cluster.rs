//! A three-server JetStream cluster on loopback for the cluster tests:
//! each server its own client port, route port and store; routes to all
//! three; one cluster name. Servers are killed (SIGKILL) and started again
//! by index. Every wait is bounded.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;

use super::free_port;
use super::nats::{nats_server_binary, until_listening};

/// One server of the cluster.
pub struct Node {
    pub name: String,
    pub port: u16,
    config: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn launch(&mut self) {
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        until_listening(self.port, &self.name);
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

/// Three servers, `n1` `n2` `n3`, one JetStream cluster.
pub struct Cluster {
    pub nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts the three servers and waits (bounded) until JetStream
    /// answers with a meta leader elected.
    pub fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes = route_ports
            .iter()
            .map(|port| format!("nats-route://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut nodes = Vec::new();
        for (index, route_port) in route_ports.iter().enumerate() {
            let name = format!("n{}", index + 1);
            let port = free_port();
            let store = dir.path().join(&name);
            let config = dir.path().join(format!("{name}.conf"));
            std::fs::write(
                &config,
                format!(
                    "server_name: {name}\nlisten: \"127.0.0.1:{port}\"\n\
                     jetstream {{ store_dir: {store:?} }}\n\
                     cluster {{\n  name: torvyn\n  listen: \"127.0.0.1:{route_port}\"\n  \
                     routes: [{routes}]\n}}\n"
                ),
            )
            .expect("server config written");
            nodes.push(Node {
                name,
                port,
                config,
                child: None,
            });
        }
        for node in &mut nodes {
            node.launch();
        }
        Cluster { nodes, _dir: dir }
    }

    /// Every server, as a client's server list.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("nats://127.0.0.1:{}", node.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn index_of(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|node| node.name == name)
            .unwrap_or_else(|| panic!("no server named {name}"))
    }

    /// SIGKILL: the server dies with whatever it had not written.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].child.take() {
            child.kill().expect("SIGKILL");
            let _ = child.wait();
        }
    }

    /// Starts a killed server again, with its store and ports.
    pub fn restart(&mut self, index: usize) {
        self.nodes[index].launch();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for index in 0..self.nodes.len() {
            self.kill(index);
        }
    }
}

/// The test's own client, connected to every server of the list.
pub async fn cluster_context(url: &str) -> jetstream::Context {
    let mut js = super::nats::context(url, None).await;
    js.set_timeout(Duration::from_secs(2));
    js
}

/// Retries `attempt` (bounded: 60 s) while the cluster cannot answer, as
/// during an election.
pub async fn retried<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster did not answer for 60 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates stream `name` on three servers (retried while the cluster
/// elects its meta leader after start).
pub async fn make_replicated_stream(js: &jetstream::Context, name: &str, subject: &str) {
    retried(&format!("create stream {name}"), || async {
        js.get_or_create_stream(jetstream::stream::Config {
            name: name.into(),
            subjects: vec![subject.into()],
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .ok()
        .map(|_| ())
    })
    .await
}

/// Stream `name`'s information, `None` while it cannot be had.
pub async fn stream_info(js: &jetstream::Context, name: &str) -> Option<jetstream::stream::Info> {
    let mut stream = js.get_stream(name).await.ok()?;
    stream.info().await.ok().cloned()
}

/// The server leading stream `name` (retried while it has none).
pub async fn leader_of(js: &jetstream::Context, name: &str) -> String {
    retried(&format!("the leader of {name}"), || async {
        stream_info(js, name).await?.cluster?.leader
    })
    .await
}

/// The server leading consumer `consumer` of `stream` (retried while it has
/// none).
pub async fn consumer_leader_of(js: &jetstream::Context, stream: &str, consumer: &str) -> String {
    retried(&format!("the leader of consumer {consumer}"), || async {
        super::nats::try_consumer_info(js, stream, consumer)
            .await?
            .cluster?
            .leader
    })
    .await
}

/// Makes `server` the leader of consumer `consumer` of `stream`: its
/// leader is asked to step down until the election lands there (each
/// election picks one of the other two; bounded at 20 tries). The
/// consumer's leader, not the stream's, answers the workers' pulls and
/// acks: a fault meant to cut them must kill the server leading both.
pub async fn move_consumer_leader(
    js: &jetstream::Context,
    stream: &str,
    consumer: &str,
    server: &str,
) {
    let client = js.client();
    let subject = format!("$JS.API.CONSUMER.LEADER.STEPDOWN.{stream}.{consumer}");
    for _ in 0..20 {
        let leader = consumer_leader_of(js, stream, consumer).await;
        if leader == server {
            return;
        }
        // The answer is not needed: a lost one shows in the leader read
        // next.
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            client.request(subject.clone(), "".into()),
        )
        .await;
        // The step-down ends the old leader's term at once; wait for a
        // successor rather than read the old name again.
        retried(&format!("a new leader of consumer {consumer}"), || async {
            let info = super::nats::try_consumer_info(js, stream, consumer).await?;
            let now = info.cluster?.leader?;
            (now != leader).then_some(())
        })
        .await;
    }
    panic!("consumer {consumer} of {stream}: its leader did not move to {server} in 20 step-downs");
}

/// Messages in stream `name` (retried while the cluster cannot say).
pub async fn stored(js: &jetstream::Context, name: &str) -> u64 {
    retried(&format!("the size of {name}"), || async {
        Some(stream_info(js, name).await?.state.messages)
    })
    .await
}

/// Publishes each payload with its own `Nats-Msg-Id`, 500 in flight at a
/// time; a chunk whose acks do not all come is sent again (its copies are
/// dropped by the server).
pub async fn publish_chunks(js: &jetstream::Context, subject: &str, payloads: &[String]) {
    for chunk in payloads.chunks(500) {
        retried("publishing a chunk", || async {
            let mut acks = Vec::new();
            for payload in chunk {
                let message = jetstream::message::PublishMessage::build()
                    .payload(payload.clone().into())
                    .message_id(payload);
                acks.push(js.send_publish(subject.to_string(), message).await.ok()?);
            }
            let acks = acks.into_iter().map(std::future::IntoFuture::into_future);
            for ack in futures_util::future::join_all(acks).await {
                ack.ok()?;
            }
            Some(())
        })
        .await;
    }
}
