//! Where a NATS source takes each element's key and event time from (its
//! `key` and `event_time` settings), for windowed nodes downstream.
//!
//! - `key = "header:NAME"`: the message's header `NAME`; `key =
//!   "subject:N"`: token `N` of its subject, counted from 0 (`readings.eu.7`:
//!   token 2 is `7`). Not set: no key (every element in one group).
//! - `event_time = "stream"` (the default): when the stream stored the
//!   message; `"header:NAME"`: header `NAME`, milliseconds since the Unix
//!   epoch; `"arrival"`: when the element entered the flow.
//!
//! A message without what its source names (the header missing, a time
//! that is not a number, a subject with too few tokens) cannot be placed
//! in any window: it is dead-lettered with the reason, never processed
//! with a made-up key or time.

use crate::connect::Settings;
use crate::error::Result;

/// Where the key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyFrom {
    Header(String),
    SubjectToken(usize),
}

/// Where the event time comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TimeFrom {
    Stream,
    Header(String),
    Arrival,
}

/// A source's `key` and `event_time` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stamp {
    key: Option<KeyFrom>,
    time: TimeFrom,
}

/// What a message gives: its key (empty: none) and event time in
/// nanoseconds since the epoch (0: stamped as it enters the flow).
pub(super) type Stamped = (String, u64);

impl Stamp {
    /// The settings read; a form that is none of the above is named.
    pub(super) fn of(settings: &Settings<'_>) -> Result<Stamp> {
        let key = match settings.get("key") {
            None => None,
            Some(text) => Some(match text.split_once(':') {
                Some(("header", name)) if !name.is_empty() => KeyFrom::Header(name.to_string()),
                Some(("subject", token)) => KeyFrom::SubjectToken(token.parse().map_err(|_| {
                    settings.error("key", format!("`{text}`: `subject:N` takes a token number"))
                })?),
                _ => {
                    return Err(settings.error(
                        "key",
                        format!("`{text}` is neither `header:NAME` nor `subject:N`"),
                    ))
                }
            }),
        };
        let time = match settings.get("event_time") {
            None | Some("stream") => TimeFrom::Stream,
            Some("arrival") => TimeFrom::Arrival,
            Some(text) => match text.split_once(':') {
                Some(("header", name)) if !name.is_empty() => TimeFrom::Header(name.to_string()),
                _ => {
                    return Err(settings.error(
                        "event_time",
                        format!("`{text}` is none of `stream`, `arrival`, `header:NAME`"),
                    ))
                }
            },
        };
        Ok(Stamp { key, time })
    }

    /// The key and event time of a message on `subject` with `headers`,
    /// stored by the stream at `stored_ns`; `Err` says what is missing.
    pub(super) fn of_message(
        &self,
        subject: &str,
        headers: Option<&async_nats::HeaderMap>,
        stored_ns: u64,
    ) -> std::result::Result<Stamped, String> {
        let header = |name: &str| {
            headers
                .and_then(|headers| headers.get(name))
                .map(|value| value.as_str().to_string())
                .ok_or_else(|| format!("the message has no header `{name}`"))
        };
        let key = match &self.key {
            None => String::new(),
            Some(KeyFrom::Header(name)) => header(name)?,
            Some(KeyFrom::SubjectToken(token)) => subject
                .split('.')
                .nth(*token)
                .map(str::to_string)
                .ok_or_else(|| format!("subject `{subject}` has no token {token}"))?,
        };
        let time = match &self.time {
            TimeFrom::Stream => stored_ns,
            TimeFrom::Arrival => 0,
            TimeFrom::Header(name) => {
                let text = header(name)?;
                let ms: u64 = text.trim().parse().map_err(|_| {
                    format!("header `{name}` is `{text}`, not milliseconds since the epoch")
                })?;
                ms.checked_mul(1_000_000)
                    .filter(|&ns| ns > 0)
                    .ok_or_else(|| format!("header `{name}` is `{text}`: out of range"))?
            }
        };
        Ok((key, time))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::ConnectorSpec;

    fn stamp(settings: &[(&str, &str)]) -> Result<Stamp> {
        let spec = ConnectorSpec::new("nats", settings.iter().copied());
        Stamp::of(&Settings {
            node: "input",
            spec: &spec,
        })
    }

    #[test]
    fn keys_and_times_come_from_where_the_settings_say() {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Sensor", "s-7");
        headers.insert("Event-Ms", "1700000000123");
        let by_header =
            stamp(&[("key", "header:Sensor"), ("event_time", "header:Event-Ms")]).unwrap();
        assert_eq!(
            by_header.of_message("readings.eu", Some(&headers), 5),
            Ok(("s-7".to_string(), 1_700_000_000_123_000_000))
        );
        let by_subject = stamp(&[("key", "subject:1")]).unwrap();
        assert_eq!(
            by_subject.of_message("readings.eu.7", None, 5),
            Ok(("eu".to_string(), 5))
        );
        let arrival = stamp(&[("event_time", "arrival")]).unwrap();
        assert_eq!(arrival.of_message("a", None, 5), Ok((String::new(), 0)));
    }

    #[test]
    fn what_a_message_lacks_is_named() {
        let by_header = stamp(&[("key", "header:Sensor"), ("event_time", "header:Ms")]).unwrap();
        let missing = by_header.of_message("a", None, 5).unwrap_err();
        assert!(missing.contains("no header `Sensor`"), "{missing}");
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Sensor", "s");
        headers.insert("Ms", "soon");
        let bad = by_header.of_message("a", Some(&headers), 5).unwrap_err();
        assert!(bad.contains("`soon`, not milliseconds"), "{bad}");
        let short = stamp(&[("key", "subject:3")])
            .unwrap()
            .of_message("a.b", None, 5);
        assert!(short.unwrap_err().contains("no token 3"));
        for (key, value) in [
            ("key", "payload"),
            ("key", "subject:x"),
            ("event_time", "now"),
        ] {
            let error = stamp(&[(key, value)]).unwrap_err().to_string();
            assert!(error.contains(&format!("setting `{key}`")), "{error}");
        }
    }
}
