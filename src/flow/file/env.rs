//! `${NAME}` and `${NAME:-default}` in connector settings, from the
//! environment.

/// Replaces `${NAME}` and `${NAME:-default}` in a connector setting with the
/// environment variable's value (so one flow file serves every machine:
/// `url = "${NATS_URL:-nats://127.0.0.1:4222}"`). A variable that is not set
/// and has no default is an error naming it.
pub(super) fn expand_environment(text: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("`${{` without a closing `}}` in `{text}`"))?;
        let (name, default) = match after[..end].split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (&after[..end], None),
        };
        match (std::env::var(name), default) {
            (Ok(value), _) => out.push_str(&value),
            (Err(_), Some(default)) => out.push_str(default),
            (Err(_), None) => {
                return Err(format!(
                    "the environment variable `{name}` is not set (write `${{{name}:-DEFAULT}}` \
                     for a default)"
                ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
