//! The stream a node names, and a source's durable consumer, found (its
//! filter checked) or created; the stream that captures dead letters.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};

use super::connection::{millis, nats_error, patiently, replicas};
use crate::connect::Settings;
use crate::error::Result;

/// The durable pull consumer `names` = (stream, subject, consumer) names,
/// found (its filter must be `subject`) or, with `create = true`, created
/// with `limits` = (ack wait, max deliveries).
pub(super) async fn consumer_of(
    settings: &Settings<'_>,
    stream: &jetstream::stream::Stream,
    (stream_name, subject, consumer_name): (&str, &str, &str),
    (ack_wait, max_deliver): (Duration, i64),
    url: &str,
) -> Result<jetstream::consumer::Consumer<pull::Config>> {
    let found = patiently(settings, || {
        stream.get_consumer::<pull::Config>(consumer_name)
    })
    .await?;
    match found {
        Ok(consumer) => {
            let config = &consumer.cached_info().config;
            if config.filter_subject != subject {
                return Err(settings.error(
                    "subject",
                    format!(
                        "consumer `{consumer_name}` of stream `{stream_name}` filters `{}`, \
                         not `{subject}` (one consumer per subject: name another)",
                        config.filter_subject
                    ),
                ));
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
            let config = pull::Config {
                durable_name: Some(consumer_name.to_string()),
                filter_subject: subject.to_string(),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait,
                max_deliver,
                max_ack_pending: settings.parse("max_ack_pending", 1000)?,
                ..Default::default()
            };
            patiently(settings, || stream.create_consumer(config.clone()))
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

/// Finds the stream `name`, or creates it when the node says `create`.
pub(super) async fn stream_of(
    settings: &Settings<'_>,
    js: &jetstream::Context,
    name: &str,
    subject: &str,
    url: &str,
) -> Result<jetstream::stream::Stream> {
    let found = patiently(settings, || js.get_stream(name)).await?;
    match found {
        Ok(stream) => Ok(stream),
        Err(error) if !settings.flag("create", false)? => Err(nats_error(
            settings.node,
            format!("stream `{name}` not found on {url} (set `create = true` to create it)"),
            error,
        )),
        Err(_) => {
            let subjects = match settings.get("stream_subjects") {
                Some(list) => list.split(',').map(|s| s.trim().to_string()).collect(),
                None => vec![subject.to_string()],
            };
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
