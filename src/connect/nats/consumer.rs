//! The stream a node names, and a source's durable consumer, found (its
//! filter checked) or created; the stream that captures dead letters.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};

use super::connection::{millis, nats_error, patiently, replicas};
use super::version::ServerVersion;
use crate::connect::Settings;
use crate::error::{Cause, Result};

/// The subjects of a `subject` setting: one, or several comma-separated.
pub(super) fn subjects_of(subject: &str) -> Vec<String> {
    subject
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `key=value,key=value` (the `consumer_metadata` setting).
fn metadata_of(settings: &Settings<'_>, key: &str) -> Result<HashMap<String, String>> {
    let Some(text) = settings.get(key) else {
        return Ok(HashMap::new());
    };
    text.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => {
                Ok((name.trim().to_string(), value.trim().to_string()))
            }
            _ => Err(settings.error(key, format!("`{pair}`: expected `name=value`"))),
        })
        .collect()
}

/// The durable pull consumer `names` = (stream, subject, consumer) names,
/// found (its filter must be `subject`, and the limits the node sets must
/// be its own) or, with `create = true`, created with `limits` = (ack
/// wait, max deliveries). `subject` may list several subjects (a 2.10+
/// server); `consumer_metadata` needs one too.
pub(super) async fn consumer_of(
    settings: &Settings<'_>,
    (stream, version): (&jetstream::stream::Stream, ServerVersion),
    (stream_name, subject, consumer_name): (&str, &str, &str),
    (ack_wait, max_deliver): (Duration, i64),
    url: &str,
) -> Result<jetstream::consumer::Consumer<pull::Config>> {
    let subjects = subjects_of(subject);
    if subjects.len() > 1 {
        version.require_2_10(
            settings,
            "subject",
            "a consumer filtering several subjects",
            url,
        )?;
    }
    let metadata = metadata_of(settings, "consumer_metadata")?;
    if !metadata.is_empty() {
        version.require_2_10(settings, "consumer_metadata", "consumer metadata", url)?;
    }
    let max_ack_pending: i64 = settings.parse("max_ack_pending", 1000)?;
    let found = patiently(settings, || {
        stream.get_consumer::<pull::Config>(consumer_name)
    })
    .await?;
    match found {
        Ok(consumer) => {
            let config = &consumer.cached_info().config;
            let filters: BTreeSet<&str> = if config.filter_subjects.is_empty() {
                [config.filter_subject.as_str()].into()
            } else {
                config.filter_subjects.iter().map(String::as_str).collect()
            };
            let wanted: BTreeSet<&str> = subjects.iter().map(String::as_str).collect();
            if filters != wanted {
                let filters: Vec<&str> = filters.into_iter().collect();
                return Err(settings.error(
                    "subject",
                    format!(
                        "consumer `{consumer_name}` of stream `{stream_name}` filters `{}`, \
                         not `{subject}` (one consumer per subject: name another)",
                        filters.join(",")
                    ),
                ));
            }
            // A limit the node sets and the consumer has otherwise would be
            // silently not in force: named instead.
            let differs = [
                (
                    "ack_wait_ms",
                    config.ack_wait != ack_wait,
                    config.ack_wait.as_millis().to_string(),
                ),
                (
                    "max_deliver",
                    config.max_deliver != max_deliver,
                    config.max_deliver.to_string(),
                ),
                (
                    "max_ack_pending",
                    config.max_ack_pending != max_ack_pending,
                    config.max_ack_pending.to_string(),
                ),
            ];
            for (key, differs, theirs) in differs {
                if differs && settings.get(key).is_some() {
                    return Err(settings.error(
                        key,
                        format!(
                            "consumer `{consumer_name}` of stream `{stream_name}` exists with \
                             {key} = {theirs} (a consumer's limits are set when it is created: \
                             delete it, or name another consumer)"
                        ),
                    ));
                }
            }
            Ok(consumer)
        }
        Err(error) if !settings.flag("create", false)? => Err(nats_error(
            settings.node,
            format!(
                "consumer `{consumer_name}` of stream `{stream_name}` not found on {url} \
                     (set `create = true` to create it)"
            ),
            error,
        )),
        Err(_) => {
            let (filter_subject, filter_subjects) = match &subjects[..] {
                [one] => (one.clone(), Vec::new()),
                several => (String::new(), several.to_vec()),
            };
            let config = pull::Config {
                durable_name: Some(consumer_name.to_string()),
                filter_subject,
                filter_subjects,
                metadata,
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait,
                max_deliver,
                max_ack_pending,
                ..Default::default()
            };
            // Another worker may create it at the same moment: a 2.10+
            // server refuses to change one that exists with another
            // config (the same config is no change); older servers update.
            patiently(settings, || async {
                if version.has_2_10() {
                    (stream.create_consumer_strict(config.clone()).await).map_err(Cause::from)
                } else {
                    (stream.create_consumer(config.clone()).await).map_err(Cause::from)
                }
            })
            .await?
            .map_err(|e| {
                nats_error(
                    settings.node,
                    format!(
                        "cannot create consumer `{consumer_name}` of stream \
                             `{stream_name}` on {url}"
                    ),
                    e,
                )
            })
        }
    }
}

/// A stream capturing `subject` (the dead letters), created when none
/// does: a dead letter nobody stores is lost.
pub(super) async fn dead_letter_stream(
    settings: &Settings<'_>,
    js: &jetstream::Context,
    subject: &str,
    stream_name: &str,
    url: &str,
) -> Result<()> {
    let captured = patiently(settings, || js.stream_by_subject(subject.to_string())).await?;
    if captured.is_err() {
        let name = format!("{stream_name}_DEAD");
        let config = jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![subject.to_string()],
            num_replicas: replicas(settings)?,
            ..Default::default()
        };
        patiently(settings, || js.get_or_create_stream(config.clone()))
            .await?
            .map_err(|e| {
                nats_error(
                    settings.node,
                    format!("cannot create dead-letter stream `{name}` on {url}"),
                    e,
                )
            })?;
    }
    Ok(())
}

/// Finds the stream `name`, or creates it when the node says `create`
/// (capturing `subject`'s subjects unless `stream_subjects` names others;
/// `compression = "s2"` on a 2.10+ server).
pub(super) async fn stream_of(
    settings: &Settings<'_>,
    (js, version): (&jetstream::Context, ServerVersion),
    name: &str,
    subject: &str,
    url: &str,
) -> Result<jetstream::stream::Stream> {
    // Checked even when the stream exists: the setting would do nothing.
    let compression = match settings.get("compression") {
        None | Some("none") => None,
        Some("s2") => {
            version.require_2_10(settings, "compression", "stream compression", url)?;
            Some(jetstream::stream::Compression::S2)
        }
        Some(other) => {
            return Err(settings.error("compression", format!("`{other}`: expected `s2` or `none`")))
        }
    };
    let found = patiently(settings, || js.get_stream(name)).await?;
    match found {
        Ok(stream) => Ok(stream),
        Err(error) if !settings.flag("create", false)? => Err(nats_error(
            settings.node,
            format!("stream `{name}` not found on {url} (set `create = true` to create it)"),
            error,
        )),
        Err(_) => {
            let subjects = subjects_of(settings.get("stream_subjects").unwrap_or(subject));
            let retention = match settings.get("retention").unwrap_or("limits") {
                "limits" => jetstream::stream::RetentionPolicy::Limits,
                "workqueue" => jetstream::stream::RetentionPolicy::WorkQueue,
                other => {
                    return Err(settings.error(
                        "retention",
                        format!("`{other}`: expected `limits` or `workqueue`"),
                    ))
                }
            };
            let config = jetstream::stream::Config {
                name: name.to_string(),
                subjects,
                retention,
                duplicate_window: millis(settings, "duplicate_window_ms", 120_000)?,
                num_replicas: replicas(settings)?,
                compression,
                ..Default::default()
            };
            patiently(settings, || js.get_or_create_stream(config.clone()))
                .await?
                .map_err(|e| {
                    nats_error(
                        settings.node,
                        format!("cannot create stream `{name}` on {url}"),
                        e,
                    )
                })
        }
    }
}
