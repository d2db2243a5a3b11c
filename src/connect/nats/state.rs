//! A JetStream key-value bucket as a served flow's state store
//! ([`StateStore`]): a worker that stops on one machine may come back on
//! another and find its stages' state where it left it.
//!
//! The bucket is on the server of one of the flow's `nats` nodes (its `url`
//! and credentials), created when missing with file storage and one value
//! per key (by the client's `create_key_value` on a 2.10+ server; on 2.9,
//! whose account-info answer the client cannot read, as the stream that
//! call would make). A `put` returns once JetStream has stored the value, so the
//! inputs a state absorbed are acknowledged only after that. A put whose
//! answer is lost (the server restarted under it) is sent again, for up to
//! twice the node's `answer_timeout_ms`: putting the same value twice
//! leaves one value, so a put that did land is harmless to repeat.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use async_trait::async_trait;

use super::connection::{answer_timeout, connect, patiently, replicas};
use super::link::Link;
use super::version::ServerVersion;
use crate::connect::state::StateStore;
use crate::connect::{ConnectorSpec, Settings};
use crate::error::{Cause, Error, Result};

/// What a created bucket says it is.
const DESCRIPTION: &str = "torvyn stages' state (torvyn:state)";

/// A key-value bucket holding stages' state.
///
/// ```
/// use std::sync::Arc;
/// use torvyn_engine::connect::nats::KvStateStore;
/// use torvyn_engine::connect::ConnectorSpec;
/// use torvyn_engine::flow::StateOptions;
///
/// # async fn open() -> torvyn_engine::Result<()> {
/// // The connection settings a `nats` node takes (credentials included).
/// let spec = ConnectorSpec::new("nats", [("url", "nats://127.0.0.1:4222")]);
/// let store = KvStateStore::open("state", &spec, "TORVYN_STATE").await?;
/// let state = StateOptions::new(Arc::new(store), "orders");
/// # Ok(())
/// # }
/// ```
pub struct KvStateStore {
    bucket: OpenedBucket,
}

impl std::fmt::Debug for KvStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.bucket.described)
    }
}

impl KvStateStore {
    /// The bucket `bucket` on the server of the `nats` node `node` (whose
    /// connector spec is `spec`), created when missing.
    pub async fn open(node: &str, spec: &ConnectorSpec, bucket: &str) -> Result<KvStateStore> {
        Ok(KvStateStore {
            bucket: open_bucket(node, spec, bucket, DESCRIPTION).await?,
        })
    }

    /// `request` on `key`, asked again while the bucket does not answer (a
    /// bucket just made, or a cluster electing its leader, times out):
    /// reading, storing and purging a key are harmless to repeat. `doing`
    /// names it in the log of each retry, `verb` in the error.
    async fn answered<T, E, F>(
        &self,
        key: &str,
        doing: &str,
        verb: &str,
        request: impl FnMut() -> F,
    ) -> Result<T>
    where
        E: Into<Cause>,
        F: std::future::Future<Output = std::result::Result<T, E>>,
    {
        let retrying = |error: &Cause| {
            tracing::warn!(store = %self.bucket.described, %key, %error, "{doing} a state failed; retrying");
        };
        self.bucket
            .link
            .until_answered(self.bucket.answer_timeout, request, retrying)
            .await
            .map_err(|error| self.error(format!("cannot {verb} key `{key}`"), error))
    }

    fn error(&self, detail: String, source: Cause) -> Error {
        Error::State {
            store: self.bucket.described.clone(),
            detail,
            source: Some(source),
        }
    }
}

#[async_trait]
impl StateStore for KvStateStore {
    fn describe(&self) -> String {
        self.bucket.described.clone()
    }

    async fn load(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.answered(key, "reading", "read", || self.bucket.store.get(key))
            .await
            .map(|found| found.map(|bytes| bytes.to_vec()))
    }

    async fn store(&self, key: &str, state: &[u8]) -> Result<()> {
        let value = bytes::Bytes::copy_from_slice(state);
        self.answered(key, "storing", "store", || {
            self.bucket.store.put(key, value.clone())
        })
        .await
        .map(drop)
    }

    async fn remove(&self, key: &str) -> Result<()> {
        self.answered(key, "removing", "remove", || self.bucket.store.purge(key))
            .await
    }
}

/// A bucket opened: its store, how it is named in errors, and the
/// connection's bounded waits.
pub(crate) struct OpenedBucket {
    pub(crate) store: kv::Store,
    pub(crate) described: String,
    pub(crate) link: Link,
    pub(crate) answer_timeout: Duration,
}

/// The bucket `bucket` on the server of the `nats` node `node` (whose
/// connector spec is `spec`), created when missing with `description` (the
/// state store's and the partition leases' buckets alike).
pub(crate) async fn open_bucket(
    node: &str,
    spec: &ConnectorSpec,
    bucket: &str,
    description: &str,
) -> Result<OpenedBucket> {
    let settings = Settings { node, spec };
    let connection = connect(&settings).await?;
    let answer_timeout = answer_timeout(&settings)?;
    let described = format!("NATS key-value bucket `{bucket}` at {}", connection.url);
    let error = |detail: String, source: Cause| Error::State {
        store: described.clone(),
        detail,
        source: Some(source),
    };
    let valid = !bucket.is_empty()
        && bucket
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(Error::State {
            store: described,
            detail: "a bucket name is letters, digits, `-` and `_`".into(),
            source: None,
        });
    }
    let version = ServerVersion::of(&connection.client);
    let mut js = jetstream::new(connection.client);
    js.set_timeout(answer_timeout);
    if patiently(&settings, || js.get_key_value(bucket))
        .await?
        .is_err()
    {
        let replicas = replicas(&settings)?;
        let created = if version.has_2_10() {
            // The client's own way, as a user would make it.
            let config = kv::Config {
                bucket: bucket.to_string(),
                description: description.into(),
                history: 1,
                storage: stream::StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            };
            patiently(&settings, || js.create_key_value(config.clone()))
                .await?
                .map(|_| ())
                .map_err(Cause::from)
        } else {
            // The bucket's stream, made as the client's `create_key_value`
            // makes it: that call first asks for the account's info in a
            // shape nats-server 2.9 does not answer ("data did not match
            // any variant"), while creating the stream works there.
            let config = stream::Config {
                name: format!("KV_{bucket}"),
                description: Some(description.into()),
                subjects: vec![format!("$KV.{bucket}.>")],
                max_messages_per_subject: 1,
                storage: stream::StorageType::File,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: stream::DiscardPolicy::New,
                num_replicas: replicas,
                ..Default::default()
            };
            patiently(&settings, || js.get_or_create_stream(config.clone()))
                .await?
                .map(|_| ())
                .map_err(Cause::from)
        };
        // Another worker may have made it meanwhile: opened below.
        if let Err(cause) = created {
            if patiently(&settings, || js.get_key_value(bucket))
                .await?
                .is_err()
            {
                return Err(error("cannot create the bucket".into(), cause));
            }
        }
    }
    let store = patiently(&settings, || js.get_key_value(bucket))
        .await?
        .map_err(|e| error("cannot open the bucket".into(), e.into()))?;
    Ok(OpenedBucket {
        store,
        described,
        link: connection.link,
        answer_timeout,
    })
}
