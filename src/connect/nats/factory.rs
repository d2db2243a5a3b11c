//! The `nats` connector kind: its settings' keys, and nodes opened over a
//! connection per URL and credentials.

use std::collections::HashMap;

use async_trait::async_trait;

use super::connection::{connect, Connection};
use super::{NatsSink, NatsSource};
use crate::connect::{Connector, ConnectorFactory, Settings};
use crate::error::Result;
use crate::interfaces::Interface;

/// The settings that choose a connection: nodes naming the same values
/// share one. Listed once, and every one of them is a setting.
macro_rules! settings {
    (connection: [$($connection:literal),* $(,)?], others: [$($other:literal),* $(,)?] $(,)?) => {
        const CONNECTION_KEYS: &[&str] = &[$($connection),*];
        const SOURCE_KEYS: &[&str] = &[$($connection,)* $($other),*];
    };
}

settings! {
    connection: [
        "url",
        "token_env",
        "token_file",
        "user",
        "password_env",
        "password_file",
        "nkey_seed_env",
        "nkey_seed_file",
        "creds_file",
        "tls_ca_file",
        "tls_cert_file",
        "tls_key_file",
    ],
    others: [
        "stream",
        "subject",
        "consumer",
        "create",
        "stream_subjects",
        "retention",
        "duplicate_window_ms",
        "compression",
        "consumer_metadata",
        "batch",
        "fetch_wait_ms",
        "ack_wait_ms",
        "max_deliver",
        "max_ack_pending",
        "nak_delay_ms",
        "dead_letter",
        "content_type",
        "key",
        "event_time",
        "ordered",
        "answer_timeout_ms",
        "connect_wait_ms",
        "open_wait_ms",
        "replicas",
    ],
}

/// The `nats` connector kind. Nodes of one flow with the same URL and
/// credentials share one connection (one socket, one reader task: a
/// source's acks and a sink's publishes travel together).
#[derive(Default)]
pub(crate) struct NatsFactory {
    clients: tokio::sync::Mutex<HashMap<String, Connection>>,
}

#[async_trait]
impl ConnectorFactory for NatsFactory {
    fn keys(&self) -> &'static [&'static str] {
        SOURCE_KEYS
    }

    fn roles(&self) -> &'static [Interface] {
        &[Interface::Source, Interface::Sink]
    }

    async fn open(&self, role: Interface, settings: &Settings<'_>) -> Result<Connector> {
        // The key names where the secret is, never the secret.
        let key = CONNECTION_KEYS
            .iter()
            .map(|k| settings.get(k).unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let connected = {
            let mut clients = self.clients.lock().await;
            match clients.get(&key) {
                Some(client) => client.clone(),
                None => {
                    let client = connect(settings).await?;
                    clients.insert(key, client.clone());
                    client
                }
            }
        };
        if role == Interface::Source {
            let source = NatsSource::open(settings, connected).await?;
            Ok(Connector::Source(Box::new(source)))
        } else {
            let sink = NatsSink::open(settings, connected).await?;
            Ok(Connector::Sink(Box::new(sink)))
        }
    }
}
