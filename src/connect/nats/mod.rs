//! NATS JetStream connectors, on the official client (`async-nats`).
//!
//! **Source** (`connector = "nats"` on a source node): a durable pull
//! consumer on a stream, shared by every worker that names it; batches by
//! `fetch` (never the continuous `messages()`, which prefetches hundreds of
//! messages whose ack clocks start at once); explicit acks.
//! **Sink** (on a sink node): publishes to a subject of a stream and awaits
//! JetStream's publish ack for every message at each flush. Every message
//! carries `Nats-Msg-Id` = the id the flow gave it (derived from its input's
//! `STREAM:SEQUENCE` and its position), so the outputs of a redelivered input
//! are dropped by the server as duplicates within the stream's duplicate
//! window.
//!
//! | setting | role | meaning (default) |
//! |---|---|---|
//! | `url` | both | server URL, `nats://HOST:PORT` or `tls://…` (required) |
//! | `stream` | both | stream name (required for a source; for a sink only with `create`) |
//! | `subject` | both | source: the consumer's filter subject, or several comma-separated (2.10+ server); sink: where to publish (required) |
//! | `consumer` | source | durable consumer name, shared by all workers (required) |
//! | `create` | both | create the stream and consumer when missing (`false`: missing is an error) |
//! | `stream_subjects` | both | subjects of a created stream, comma-separated (`subject`) |
//! | `retention` | both | of a created stream: `limits` or `workqueue` (`limits`) |
//! | `duplicate_window_ms` | both | of a created stream (120000) |
//! | `compression` | both | of a created stream: `s2` (2.10+ server) or `none` (`none`) |
//! | `consumer_metadata` | source | of a created consumer, `name=value,…` (2.10+ server) |
//! | `batch` | source | most messages per fetch (100) |
//! | `fetch_wait_ms` | source | how long a fetch waits for its first message (500) |
//! | `ack_wait_ms` | source | of a created consumer (30000); set, it must be the existing consumer's |
//! | `max_deliver` | source | deliveries before a failing message is dead-lettered (5) |
//! | `max_ack_pending` | source | of a created consumer (1000); set, it must be the existing consumer's |
//! | `nak_delay_ms` | source | redelivery delay after a failure (500) |
//! | `dead_letter` | source | subject for messages that failed `max_deliver` times (none: terminated and logged) |
//! | `content_type` | source | for messages without a `Content-Type` header (`application/octet-stream`) |
//! | `key` | source | each element's key, for windowed nodes: `header:NAME` or `subject:N` (token N from 0) (none) |
//! | `ordered` | source | inputs in their stream order even after a worker's crash or a lost pull: nothing new is fetched while inputs delivered to a worker that is gone (or lost in transit) wait for their ack wait to pass, so they come first; for windowed flows, whose lateness depends on order (`false`) |
//! | `event_time` | source | each element's event time: `stream` (when the stream stored it), `header:NAME` (ms since the epoch) or `arrival` (`stream`) |
//! | `answer_timeout_ms` | both | how long the server may take to answer a request (a pull's first message after its wait, the next message of a pull, a publish ack, the acks' flush) before it counts as lost and is sent again (5000) |
//! | `connect_wait_ms` | both | how long the first connection is tried (a server restarting as the worker starts is waited for) before it is an error (5000) |
//! | `open_wait_ms` | both | how long opening the node asks JetStream again when it does not answer (a stream electing its leader, a server restarting) before it is an error (30000) |
//! | `replicas` | both | servers of a cluster keeping each stream, consumer and bucket the node creates, 1 to 5; 3 makes an acknowledged write survive a server's crash (1) |
//! | `token_env`, `token_file` | both | the auth token, from an environment variable or a file |
//! | `user`, `password_env`, `password_file` | both | a user and its password (from a variable or a file); or in the URL, `nats://user:password@host:port` |
//! | `nkey_seed_env`, `nkey_seed_file` | both | an NKey user's seed (`SU…`), from a variable or a file |
//! | `creds_file` | both | a `.creds` file (JWT + NKey seed) |
//! | `tls_ca_file` | both | the CA that signed the server's certificate (PEM; else the system's roots); implies TLS |
//! | `tls_cert_file`, `tls_key_file` | both | a client certificate and its key (PEM), for servers that verify clients |
//!
//! No wait on the server is unbounded: a request sent before the connection
//! broke is sent again as soon as the client has reconnected (a restarted
//! server or a moved stream leader has forgotten it), and one that gets no
//! answer within `answer_timeout_ms` is sent again too (a pull) or fails
//! its flush, which is retried (a publish).
//!
//! Secrets never stand in the flow file: only the variable or file that
//! holds them. Errors and logs name the URL (with any `user:password@`
//! removed), never the token.
//!
//! A setting a 2.10+ server offers is refused on an older one with an error
//! naming the server's version (an older server ignores the field: the
//! setting would silently do nothing). With `create = true` a 2.10+ server
//! also refuses, by name, a consumer that another worker created at the
//! same moment with another config.
//!
//! Here: the kind in `factory.rs`; the server's version in `version.rs`; the connection and shared settings in
//! `connection.rs`; bounded waits on the broker in `link.rs`; streams and
//! consumers found or created in `consumer.rs`; the source in `source.rs`
//! (its bookkeeping in `pull.rs`, each message's key and event time in
//! `stamp.rs`, messages set aside in `rejects.rs`, confirmed acks in
//! `acks.rs`); the sink in `sink.rs`; the key-value
//! state store in `state.rs`; partitions shared out by leases in `leases.rs`.

mod acks;
mod connection;
mod consumer;
mod factory;
mod leases;
mod link;
mod order;
mod pull;
mod rejects;
mod sink;
mod source;
mod stamp;
mod state;
mod version;

pub use connection::{ERROR_HEADER, ORIGIN_HEADER};
pub(crate) use factory::NatsFactory;
pub use leases::{LeaseChanges, PartitionLeases};
pub(crate) use sink::NatsSink;
pub(crate) use source::NatsSource;
pub use state::KvStateStore;
