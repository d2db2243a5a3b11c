//! Checks of single values: sizes, policies, priorities, and where in the
//! text a value stands.

use std::path::Path;

use toml::Spanned;

use super::schema::{RawBackpressure, SCHEDULING_POLICIES};

/// The line of byte `offset` in `text` (1-based).
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// A component's location: `bundled:NAME` as written, anything else
/// (a `file://` URI or a path) resolved against the flow file's folder.
pub(super) fn location_of(base: &Path, path: &str) -> String {
    match path.strip_prefix("bundled:") {
        Some(_) => path.to_string(),
        None => base
            .join(path.trim_start_matches("file://"))
            .display()
            .to_string(),
    }
}

/// `backpressure_policy`: this engine's queues block the producer; a
/// policy that drops elements is refused rather than ignored.
pub(super) fn check_backpressure(
    backpressure: &RawBackpressure,
    text: &str,
    place: &str,
) -> std::result::Result<(), String> {
    if backpressure.default_queue_depth == Some(0) {
        return Err(format!("{place}: default_queue_depth must be at least 1"));
    }
    match &backpressure.backpressure_policy {
        Some(policy) if policy.get_ref() != "block-producer" => Err(format!(
            "{place}: backpressure_policy `{}` (line {}): this engine never drops an element \
             or fails a full queue; its queues block the producer (`block-producer`)",
            policy.get_ref(),
            line_of(text, policy.span().start)
        )),
        _ => Ok(()),
    }
}

/// A scheduling policy of the runtime's file: checked, then accepted (the
/// driver forwards each element depth-first, so nothing waits to be
/// scheduled by it).
pub(super) fn check_scheduling(
    policy: &Spanned<String>,
    text: &str,
) -> std::result::Result<(), String> {
    if SCHEDULING_POLICIES.contains(&policy.get_ref().as_str()) {
        return Ok(());
    }
    Err(format!(
        "scheduling policy `{}` (line {}) is none of {}",
        policy.get_ref(),
        line_of(text, policy.span().start),
        SCHEDULING_POLICIES.join(", ")
    ))
}

pub(super) fn check_priority(priority: i64, line: usize) -> std::result::Result<(), String> {
    if (1..=10).contains(&priority) {
        return Ok(());
    }
    Err(format!(
        "(line {line}) is {priority}: a priority is 1 (lowest) to 10 (highest)"
    ))
}

/// A memory size: bytes as an integer, or text with a unit (`16MiB`,
/// `512KiB`, `1GiB`, `4096B`; `K`, `M`, `G` too).
pub(super) fn memory_size(
    value: &Spanned<toml::Value>,
    text: &str,
) -> std::result::Result<u64, String> {
    let line = line_of(text, value.span().start);
    let wrong = |why: String| format!("(line {line}): {why}");
    match value.get_ref() {
        toml::Value::Integer(bytes) if *bytes > 0 => Ok(*bytes as u64),
        toml::Value::String(size) => {
            let size = size.trim();
            let digits = size
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(size.len());
            let number: u64 = size[..digits]
                .parse()
                .map_err(|_| wrong(format!("`{size}` is no size (write e.g. \"16MiB\")")))?;
            let unit: u64 = match size[digits..].trim().to_ascii_lowercase().as_str() {
                "" | "b" => 1,
                "k" | "kib" => 1 << 10,
                "m" | "mib" => 1 << 20,
                "g" | "gib" => 1 << 30,
                other => {
                    return Err(wrong(format!(
                        "unknown unit `{other}` in `{size}` (B, KiB, MiB or GiB)"
                    )))
                }
            };
            match number.checked_mul(unit) {
                Some(bytes) if bytes > 0 => Ok(bytes),
                _ => Err(wrong(format!("`{size}` is not a size above zero"))),
            }
        }
        other => Err(wrong(format!(
            "must be a size (\"16MiB\") or bytes, not {}",
            other.type_str()
        ))),
    }
}
