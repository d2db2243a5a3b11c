//! A flow's partitions shared out among however many workers run it, by
//! leases in a JetStream key-value bucket (issue 36, item 4).
//!
//! Each partition `p` has a key `lease.p` whose value names its holder; each
//! worker has a key `worker.ID` it rewrites every tick (its heartbeat).
//! Every write goes through the bucket's compare-and-set (`create` for a
//! free key, `update` at the revision last read), so two workers never both
//! succeed in taking one lease.
//!
//! **Expiry without clocks in common.** A lease or heartbeat has expired
//! when the reader has seen its revision unchanged for the lease's time to
//! live, by the reader's own monotonic clock: no wall clocks are compared
//! between machines, so skew cannot make a live lease look dead. A holder
//! renews every tick (a third of the TTL by default) and, if it has not
//! managed to for two thirds of the TTL by its own clock, counts the lease
//! as lost before any other worker can count it expired: the others wait a
//! whole TTL from the last change *they saw*, which came after the holder's
//! write.
//!
//! **Shares.** The live workers are those whose heartbeat has changed within
//! the TTL; each aims at `ceil(partitions / live)`. A worker over its share
//! names the partitions to give up ([`LeaseChanges::to_release`]) and
//! releases each with [`PartitionLeases::release`] once it has stopped its
//! work on it (its states stored, its inputs acked); a worker under its
//! share takes free partitions, then expired ones. A worker's first tick
//! takes nothing: it announces the worker and looks, so that workers
//! started together see each other before any takes a share. A dead
//! worker's partitions are taken within about a TTL and a tick of its last
//! renewal.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use futures_util::TryStreamExt;

use super::state::open_bucket;
use crate::connect::ConnectorSpec;
use crate::error::{Error, Result};

/// What a created bucket says it is.
const DESCRIPTION: &str = "torvyn partition leases";

/// The partitions a worker holds, gained and lost, as one tick left them.
///
/// ```
/// use torvyn_engine::connect::nats::LeaseChanges;
///
/// fn act(changes: &LeaseChanges) {
///     for partition in changes.gained() {
///         println!("start partition {partition}, from its stored states");
///     }
///     for partition in changes.lost() {
///         println!("stop partition {partition} now: another worker has it");
///     }
///     for partition in changes.to_release() {
///         println!("stop partition {partition}, store its states, then release it");
///     }
/// }
/// act(&LeaseChanges::default());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseChanges {
    gained: Vec<u32>,
    lost: Vec<u32>,
    to_release: Vec<u32>,
}

impl LeaseChanges {
    /// Partitions this worker took: start their work.
    pub fn gained(&self) -> &[u32] {
        &self.gained
    }

    /// Partitions this worker no longer holds (it could not renew them in
    /// time, or another worker took them): stop their work at once.
    pub fn lost(&self) -> &[u32] {
        &self.lost
    }

    /// Partitions over this worker's share: stop their work, then
    /// [`release`](PartitionLeases::release) each.
    pub fn to_release(&self) -> &[u32] {
        &self.to_release
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.gained.is_empty() && self.lost.is_empty() && self.to_release.is_empty()
    }
}

/// One worker's view of a flow's partition leases: call
/// [`tick`](Self::tick) every [`tick_every`](Self::tick_every).
///
/// ```no_run
/// use std::time::Duration;
/// use torvyn_engine::connect::ConnectorSpec;
/// use torvyn_engine::connect::nats::PartitionLeases;
///
/// # async fn run() -> torvyn_engine::Result<()> {
/// let spec = ConnectorSpec::new("nats", [("url", "nats://127.0.0.1:4222")]);
/// let mut leases =
///     PartitionLeases::open("input", &spec, "TORVYN_LEASES_orders", 8, Duration::from_secs(5)).await?;
/// loop {
///     let changes = leases.tick().await?;
///     for &partition in changes.to_release() {
///         // ... stop the partition's work, store its states ...
///         leases.release(partition).await?;
///     }
///     println!("holding {:?}", leases.held().collect::<Vec<_>>());
///     tokio::time::sleep(leases.tick_every()).await;
/// }
/// # }
/// ```
pub struct PartitionLeases {
    store: kv::Store,
    described: String,
    worker: String,
    partitions: u32,
    ttl: Duration,
    /// Held partitions: the revision of this worker's last write, and when
    /// (by its clock) that write was confirmed.
    held: BTreeMap<u32, (u64, Instant)>,
    /// Every key's revision as last read, and when it was first read at
    /// that revision.
    seen: HashMap<String, (u64, Instant)>,
    /// This worker's heartbeat's revision.
    heartbeat: Option<u64>,
    /// Whether a tick has run: the first only announces this worker and
    /// looks, so that workers started together see each other before any
    /// takes a share (else the first takes every partition and gives most
    /// back a tick later, each started and stopped for nothing).
    looked: bool,
}

impl std::fmt::Debug for PartitionLeases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionLeases")
            .field("bucket", &self.described)
            .field("worker", &self.worker)
            .field("partitions", &self.partitions)
            .field("held", &self.held.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A random part for worker ids: std's hasher keys are random per process
/// (and differ per call), mixed with the time.
fn unique() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::hash::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{:016x}", hasher.finish())
}

fn lease_key(partition: u32) -> String {
    format!("lease.{partition}")
}

impl PartitionLeases {
    /// Leases of `partitions` partitions in bucket `bucket` on the server
    /// of the `nats` node `node` (its connector spec `spec`; the bucket
    /// created when missing), each held for `ttl` without renewal. This
    /// worker's id is made unique (host, process, a random part).
    pub async fn open(
        node: &str,
        spec: &ConnectorSpec,
        bucket: &str,
        partitions: u32,
        ttl: Duration,
    ) -> Result<PartitionLeases> {
        let opened = open_bucket(node, spec, bucket, DESCRIPTION).await?;
        if partitions == 0 || ttl < Duration::from_millis(300) {
            return Err(Error::State {
                store: opened.described,
                detail: format!(
                    "partition leases: {partitions} partitions with a TTL of {ttl:?}: at least \
                     1 partition and 300 ms"
                ),
                source: None,
            });
        }
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        let worker = format!(
            "{}-{}-{}",
            host.replace(['.', '*', '>', ' '], "_"),
            std::process::id(),
            unique()
        );
        Ok(PartitionLeases {
            store: opened.store,
            described: opened.described,
            worker,
            partitions,
            ttl,
            held: BTreeMap::new(),
            seen: HashMap::new(),
            heartbeat: None,
            looked: false,
        })
    }

    /// This worker's id, as its leases name it.
    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// The partitions held now (as the last tick left them).
    pub fn held(&self) -> impl Iterator<Item = u32> + '_ {
        self.held.keys().copied()
    }

    /// The instant after which this worker counts `partition` lost unless
    /// a tick renews it first (its last confirmed renewal and two thirds of
    /// the TTL); `None` when it is not held. Work on a partition must have
    /// stopped by then, whether or not the next tick has come: a worker
    /// stuck waiting for the server still must not run a partition another
    /// may take.
    ///
    /// ```no_run
    /// # async fn run(leases: &torvyn_engine::connect::nats::PartitionLeases) {
    /// for partition in leases.held() {
    ///     let until = leases.held_until(partition).expect("held");
    ///     println!("partition {partition}: stop its work by {until:?} unless renewed");
    /// }
    /// # }
    /// ```
    pub fn held_until(&self, partition: u32) -> Option<Instant> {
        let (_, confirmed) = self.held.get(&partition)?;
        Some(*confirmed + self.renewal_limit())
    }

    /// How often to tick: a third of the TTL.
    pub fn tick_every(&self) -> Duration {
        self.ttl / 3
    }

    /// How long a held lease may go unrenewed before this worker counts it
    /// lost: two thirds of the TTL, so that it stops the partition's work
    /// before another worker, waiting a whole TTL from the last change it
    /// saw, may take it.
    fn renewal_limit(&self) -> Duration {
        self.ttl * 2 / 3
    }

    fn heartbeat_key(&self) -> String {
        format!("worker.{}", self.worker)
    }

    fn error(&self, detail: String, source: impl Into<crate::error::Cause>) -> Error {
        Error::State {
            store: self.described.clone(),
            detail: format!("partition leases of worker `{}`: {detail}", self.worker),
            source: Some(source.into()),
        }
    }

    /// Notes `key` at `revision`; how long it has stood at it, by this
    /// worker's clock.
    fn unchanged_for(&mut self, key: &str, revision: u64, now: Instant) -> Duration {
        match self.seen.get(key) {
            Some(&(seen, since)) if seen == revision => now - since,
            _ => {
                self.seen.insert(key.to_owned(), (revision, now));
                Duration::ZERO
            }
        }
    }

    /// One round: the heartbeat written, held leases renewed (those not
    /// renewed within two thirds of the TTL lost), then this worker's
    /// share worked out from the live workers, and free or expired
    /// partitions taken up to it (or those over it named for release).
    pub async fn tick(&mut self) -> Result<LeaseChanges> {
        let mut changes = LeaseChanges::default();
        let beat = self.store.put(self.heartbeat_key(), "alive".into()).await;
        let beat = beat.map_err(|e| self.error("cannot write the heartbeat".into(), e))?;
        self.heartbeat = Some(beat);

        // Renew what is held. A renewal that lands keeps the lease whatever
        // the time (the compare-and-set proves no one took it meanwhile);
        // one that fails for two thirds of the TTL loses it, as another
        // worker may count it expired a TTL after the last change it saw.
        let held: Vec<(u32, (u64, Instant))> = self.held.iter().map(|(p, r)| (*p, *r)).collect();
        for (partition, (revision, confirmed)) in held {
            let key = lease_key(partition);
            let renewed = self
                .store
                .update(&key, self.worker.clone().into(), revision)
                .await;
            let now = Instant::now();
            let still_ours = match renewed {
                Ok(revision) => Some(revision),
                // The revision moved: our own earlier write whose answer
                // was lost, or another worker's.
                Err(_) => match self.store.entry(key.clone()).await {
                    Ok(Some(entry))
                        if entry.operation == kv::Operation::Put
                            && entry.value == self.worker.as_bytes() =>
                    {
                        Some(entry.revision)
                    }
                    Ok(_) => None,
                    // The server does not answer: ours until the limit.
                    Err(_) => Some(revision),
                },
            };
            match still_ours {
                Some(now_at) if now_at != revision => {
                    self.held.insert(partition, (now_at, now));
                }
                // Unchanged: the others' clocks run on it.
                Some(_) if now - confirmed < self.renewal_limit() => {}
                _ => {
                    self.held.remove(&partition);
                    changes.lost.push(partition);
                }
            }
        }

        // The live workers, this one included.
        let now = Instant::now();
        let keys: Vec<String> = match self.store.keys().await {
            Ok(keys) => keys
                .try_collect()
                .await
                .map_err(|e| self.error("cannot list the bucket's keys".into(), e))?,
            Err(e) => return Err(self.error("cannot list the bucket's keys".into(), e)),
        };
        // What is read of a heartbeat gone from the bucket is forgotten:
        // workers come and go for as long as this one runs.
        self.seen
            .retain(|key, _| !key.starts_with("worker.") || keys.contains(key));
        let mut live = BTreeSet::from([self.worker.clone()]);
        for key in keys.iter().filter(|key| key.starts_with("worker.")) {
            let Ok(Some(entry)) = self.store.entry(key.clone()).await else {
                continue;
            };
            if entry.operation != kv::Operation::Put {
                continue;
            }
            let unchanged = self.unchanged_for(key, entry.revision, now);
            if unchanged < self.ttl {
                live.insert(key["worker.".len()..].to_owned());
            } else if unchanged > self.ttl * 3 {
                // A dead worker's heartbeat: removed (at the revision read,
                // so a worker that came back is not), else every tick of
                // every worker would read it for ever.
                let _ = self
                    .store
                    .delete_expect_revision(key, Some(entry.revision))
                    .await;
            }
        }
        let share = (self.partitions as usize).div_ceil(live.len());

        // Every lease not held is read each tick, whether or not this
        // worker will take one: the time a dead worker's lease has stood
        // unchanged must run from when it stopped, not from when this
        // worker's share grew (a dead worker's heartbeat expires too, and
        // the two waits would add up).
        // Start at a place of this worker's own, so that workers starting
        // together try different partitions first.
        let offset = live.iter().position(|w| *w == self.worker).unwrap_or(0) * share;
        let mut takeable = Vec::new();
        for step in 0..self.partitions {
            let partition = (offset as u32 + step) % self.partitions;
            if self.held.contains_key(&partition) {
                continue;
            }
            let key = lease_key(partition);
            let entry = self
                .store
                .entry(key.clone())
                .await
                .map_err(|e| self.error(format!("cannot read `{key}`"), e))?;
            match entry {
                None => takeable.push((partition, None)),
                Some(entry) if entry.operation != kv::Operation::Put => {
                    takeable.push((partition, Some(entry.revision)))
                }
                Some(entry) => {
                    if self.unchanged_for(&key, entry.revision, now) >= self.ttl {
                        takeable.push((partition, Some(entry.revision)));
                    }
                }
            }
        }

        if !std::mem::replace(&mut self.looked, true) {
            return Ok(changes);
        }
        if self.held.len() > share {
            // The highest-numbered first: every worker gives up the same
            // end, so the freed partitions are not fought over.
            changes.to_release = self
                .held
                .keys()
                .rev()
                .take(self.held.len() - share)
                .copied()
                .collect();
            return Ok(changes);
        }
        for (partition, revision) in takeable {
            if self.held.len() >= share {
                break;
            }
            let key = lease_key(partition);
            let value = self.worker.clone().into();
            // Compare-and-set: of two workers taking it, one succeeds.
            let taken = match revision {
                None => self.store.create(&key, value).await.ok(),
                Some(revision) => self.store.update(&key, value, revision).await.ok(),
            };
            if let Some(revision) = taken {
                self.held.insert(partition, (revision, Instant::now()));
                changes.gained.push(partition);
            }
        }
        Ok(changes)
    }

    /// Drops the held partitions not renewed for two thirds of the TTL and
    /// names them: after a [`tick`](Self::tick) that failed (the server
    /// away), their work must stop before another worker may take them.
    ///
    /// ```no_run
    /// # async fn run(leases: &mut torvyn_engine::connect::nats::PartitionLeases) {
    /// if let Err(error) = leases.tick().await {
    ///     eprintln!("{error}");
    ///     for partition in leases.expire_unrenewed() {
    ///         println!("stop partition {partition}");
    ///     }
    /// }
    /// # }
    /// ```
    pub fn expire_unrenewed(&mut self) -> Vec<u32> {
        let limit = self.renewal_limit();
        let expired: Vec<u32> = self
            .held
            .iter()
            .filter(|(_, (_, confirmed))| confirmed.elapsed() >= limit)
            .map(|(partition, _)| *partition)
            .collect();
        for partition in &expired {
            self.held.remove(partition);
        }
        expired
    }

    /// Gives up `partition` (its work stopped): its lease is deleted, free
    /// for another worker's next tick. A partition not held is ignored.
    pub async fn release(&mut self, partition: u32) -> Result<()> {
        let Some((revision, _)) = self.held.remove(&partition) else {
            return Ok(());
        };
        let key = lease_key(partition);
        // At the revision held: a lease another worker took meanwhile is
        // not deleted.
        self.store
            .delete_expect_revision(&key, Some(revision))
            .await
            .map_err(|e| self.error(format!("cannot release `{key}`"), e))
    }

    /// Releases every lease held and removes the heartbeat: the others
    /// take the partitions at their next tick rather than after the TTL.
    pub async fn release_all(&mut self) -> Result<()> {
        let held: Vec<u32> = self.held().collect();
        for partition in held {
            self.release(partition).await?;
        }
        if let Some(revision) = self.heartbeat.take() {
            self.store
                .delete_expect_revision(self.heartbeat_key(), Some(revision))
                .await
                .map_err(|e| self.error("cannot remove the heartbeat".into(), e))?;
        }
        Ok(())
    }
}
