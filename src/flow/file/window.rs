//! A windowed node's `window` table in a flow file:
//!
//! ```toml
//! [flow.main.nodes.counts.window]
//! kind = "sliding"              # tumbling | sliding | session
//! size_ms = 5000                # tumbling, sliding
//! slide_ms = 1000               # sliding
//! # gap_ms = 30000              # session
//! allowed_lateness_ms = 1000    # optional, 0
//! max_out_of_order_ms = 2000    # optional, 0: how far behind event time may come
//! idle_ms = 10000               # optional: a source silent this long holds no one back
//! ```

use toml::Spanned;

use super::checks::line_of;
use crate::flow::WindowSettings;
use crate::window::WindowSpec;

/// The keys a `window` table may hold.
const WINDOW_KEYS: &[&str] = &[
    "kind",
    "size_ms",
    "slide_ms",
    "gap_ms",
    "allowed_lateness_ms",
    "max_out_of_order_ms",
    "idle_ms",
];

/// Node `name`'s `window` table as settings; a mistake is named with its
/// line.
pub(super) fn window_of(
    name: &str,
    value: &Spanned<toml::Value>,
    text: &str,
) -> Result<WindowSettings, String> {
    let line = line_of(text, value.span().start);
    let toml::Value::Table(table) = value.get_ref() else {
        return Err(format!(
            "node `{name}`: `window` (line {line}) must be a table (kind, size_ms, ...)"
        ));
    };
    if let Some(key) = table
        .keys()
        .find(|key| !WINDOW_KEYS.contains(&key.as_str()))
    {
        return Err(format!(
            "node `{name}`: unknown window setting `{key}` (line {line}), expected one of {}",
            WINDOW_KEYS
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let number = |key: &str| -> Result<Option<u64>, String> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(n)) if *n >= 0 => Ok(Some(*n as u64)),
            Some(other) => Err(format!(
                "node `{name}`: window setting `{key}` (line {line}) must be a whole number of \
                 milliseconds, not {other}"
            )),
        }
    };
    let needed = |key: &str, kind: &str| -> Result<u64, String> {
        number(key)?
            .ok_or_else(|| format!("node `{name}`: a {kind} window (line {line}) needs `{key}`"))
    };
    let kind = match table.get("kind") {
        Some(toml::Value::String(kind)) => kind.as_str(),
        Some(other) => {
            return Err(format!(
                "node `{name}`: window `kind` (line {line}) must be a string, not {other}"
            ))
        }
        None => {
            return Err(format!(
                "node `{name}`: the window (line {line}) needs a `kind`"
            ))
        }
    };
    let spec = match kind {
        "tumbling" => WindowSpec::tumbling(needed("size_ms", kind)?),
        "sliding" => WindowSpec::sliding(needed("size_ms", kind)?, needed("slide_ms", kind)?),
        "session" => WindowSpec::session(needed("gap_ms", kind)?),
        other => {
            return Err(format!(
                "node `{name}`: window kind `{other}` (line {line}) is none of tumbling, \
                 sliding, session"
            ))
        }
    };
    let spec = spec.map_err(|error| format!("node `{name}` (line {line}): {error}"))?;
    let unused = match kind {
        "tumbling" => ["slide_ms", "gap_ms"].as_slice(),
        "sliding" => ["gap_ms"].as_slice(),
        _ => ["size_ms", "slide_ms"].as_slice(),
    };
    if let Some(key) = unused.iter().find(|key| table.contains_key(**key)) {
        return Err(format!(
            "node `{name}`: `{key}` (line {line}) is not a setting of a {kind} window"
        ));
    }
    let spec = spec.with_allowed_lateness(number("allowed_lateness_ms")?.unwrap_or(0));
    let mut settings = WindowSettings::new(spec);
    settings.max_out_of_order_ms = number("max_out_of_order_ms")?.unwrap_or(0);
    settings.idle_ms = number("idle_ms")?;
    if settings.idle_ms == Some(0) {
        return Err(format!(
            "node `{name}`: window setting `idle_ms` (line {line}) is 0: leave it out for \
             sources that are never idle"
        ));
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WindowSettings, String> {
        let table: toml::Table = toml::from_str(text).unwrap();
        let value = Spanned::new(0..1, toml::Value::Table(table));
        window_of("counts", &value, text)
    }

    #[test]
    fn each_kind_reads_its_settings() {
        let sliding = parse(
            "kind = \"sliding\"\nsize_ms = 5000\nslide_ms = 1000\nallowed_lateness_ms = 1000\n\
             max_out_of_order_ms = 2000\nidle_ms = 10000",
        )
        .unwrap();
        let expected = WindowSpec::sliding(5_000, 1_000)
            .unwrap()
            .with_allowed_lateness(1_000);
        assert_eq!(sliding.spec, expected);
        assert_eq!(
            (sliding.max_out_of_order_ms, sliding.idle_ms),
            (2_000, Some(10_000))
        );
        let session = parse("kind = \"session\"\ngap_ms = 400").unwrap();
        assert_eq!(session.spec, WindowSpec::session(400).unwrap());
        assert_eq!((session.max_out_of_order_ms, session.idle_ms), (0, None));
    }

    #[test]
    fn mistakes_are_named() {
        for (text, named) in [
            ("kind = \"tumbling\"", "needs `size_ms`"),
            ("kind = \"hopping\"\nsize_ms = 5", "`hopping`"),
            ("kind = \"tumbling\"\nsize_ms = 0", "`size_ms` is 0"),
            (
                "kind = \"sliding\"\nsize_ms = 10\nslide_ms = 20",
                "slide_ms",
            ),
            ("kind = \"tumbling\"\nsize_ms = 10\ngap_ms = 5", "`gap_ms`"),
            (
                "kind = \"tumbling\"\nsize = 10",
                "unknown window setting `size`",
            ),
            ("kind = \"tumbling\"\nsize_ms = -1", "whole number"),
            ("size_ms = 10", "needs a `kind`"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(named), "{text}: {error}");
            assert!(error.contains("node `counts`"), "{error}");
        }
    }
}
