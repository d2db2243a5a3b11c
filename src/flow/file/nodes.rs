//! A flow file's node table built into a node: a component in a role,
//! or a connector.

use std::collections::BTreeMap;
use std::path::Path;

use toml::Spanned;

use super::checks::{check_priority, line_of, location_of, memory_size};
use super::env::expand_environment;
use super::schema::{RawNode, COMPONENT_NODE_KEYS};
use super::window::window_of;
use crate::config::NodeLimits;
use crate::connect::ConnectorSpec;
use crate::flow::spec::{role_of, NodeSpec};

/// A node as read, with whether its table gave a `config` (else its
/// component's `config` is the default).
pub(super) struct ParsedNode {
    pub(super) node: NodeSpec,
    pub(super) config_given: bool,
}

/// One node of a flow file: a component in a role, or a connector. A
/// `component` that is a `file://` URI or a path (it names a `.wasm` or has
/// a `/`) declares that component under its own text.
pub(super) fn node_of(
    name: &str,
    mut raw: RawNode,
    text: &str,
    base: &Path,
    components: &mut BTreeMap<String, String>,
) -> std::result::Result<ParsedNode, String> {
    let line = |value: &Spanned<toml::Value>| line_of(text, value.span().start);
    // A misspelt key is named before any missing one it explains.
    if !raw.contains_key("connector") {
        if let Some((key, value)) = raw
            .iter()
            .find(|(key, _)| !COMPONENT_NODE_KEYS.contains(&key.as_str()))
        {
            return Err(format!(
                "node `{name}`: unknown field `{key}` (line {}), expected one of {}",
                line(value),
                COMPONENT_NODE_KEYS
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let mut string = |key: &str| -> std::result::Result<Option<String>, String> {
        match raw.remove(key) {
            None => Ok(None),
            Some(value) => match value.get_ref() {
                toml::Value::String(text) => Ok(Some(text.clone())),
                other => Err(format!(
                    "node `{name}`: `{key}` (line {}) must be a string, not {}",
                    line(&value),
                    other.type_str()
                )),
            },
        }
    };
    let interface =
        string("interface")?.ok_or_else(|| format!("node `{name}`: missing field `interface`"))?;
    let role = role_of(&interface).ok_or_else(|| {
        format!(
            "node `{name}`: interface `{interface}` is no stage role (torvyn:streaming/source, \
             torvyn:streaming/processor, torvyn:streaming/sink, torvyn:filtering/filter, \
             torvyn:filtering/router, torvyn:aggregation/aggregator, \
             torvyn:windowing/windowed-aggregator)"
        )
    })?;
    let _description = string("description")?;
    if let Some(kind) = string("connector")? {
        for key in [
            "component",
            "config",
            "fuel_budget",
            "max_memory",
            "recycle_after_elements",
            "recycle_at_memory_percent",
            "window",
        ] {
            if let Some(value) = raw.get(key) {
                return Err(format!(
                    "node `{name}`: `{key}` (line {}) is for component nodes; this node is a \
                     `{kind}` connector",
                    line(value)
                ));
            }
        }
        let mut spec = ConnectorSpec::new::<String, String>(&kind, []);
        for (key, value) in raw {
            let text = match value.get_ref() {
                toml::Value::String(text) => text.clone(),
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(x) => x.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(format!(
                        "node `{name}`: setting `{key}` (line {}) must be a string, number or \
                         boolean, not {}",
                        line(&value),
                        other.type_str()
                    ))
                }
            };
            let text = expand_environment(&text).map_err(|detail| {
                format!(
                    "node `{name}`: setting `{key}` (line {}): {detail}",
                    line(&value)
                )
            })?;
            // Files a connector reads or writes are relative to the flow file.
            let text = if key == "path" || key.ends_with("_file") {
                base.join(&text).display().to_string()
            } else {
                text
            };
            spec.lines.insert(key.clone(), line(&value));
            spec.settings.insert(key, text);
        }
        return Ok(ParsedNode {
            node: NodeSpec::connector(name, role, spec),
            config_given: false,
        });
    }
    let component = string("component")?.ok_or_else(|| {
        format!("node `{name}`: missing field `component` (or `connector` for a connector node)")
    })?;
    let config = string("config")?;
    let mut limits = NodeLimits::default();
    if let Some(value) = raw.remove("fuel_budget") {
        limits.fuel_per_call = Some(match value.get_ref() {
            toml::Value::Integer(fuel) if *fuel > 0 => *fuel as u64,
            other => {
                return Err(format!(
                "node `{name}`: `fuel_budget` (line {}) must be a positive integer, not {other}",
                line(&value)
            ))
            }
        });
    }
    if let Some(value) = raw.remove("max_memory") {
        limits.max_memory_bytes = Some(
            memory_size(&value, text).map_err(|e| format!("node `{name}`: `max_memory` {e}"))?,
        );
    }
    if let Some(value) = raw.remove("recycle_after_elements") {
        limits.recycle_after_elements = Some(match value.get_ref() {
            toml::Value::Integer(count) if *count > 0 => *count as u64,
            other => {
                return Err(format!(
                    "node `{name}`: `recycle_after_elements` (line {}) must be a positive \
                     integer, not {other}",
                    line(&value)
                ))
            }
        });
    }
    if let Some(value) = raw.remove("recycle_at_memory_percent") {
        limits.recycle_at_memory_percent = Some(match value.get_ref() {
            toml::Value::Integer(percent) if (1..=100).contains(percent) => *percent as u8,
            other => {
                return Err(format!(
                    "node `{name}`: `recycle_at_memory_percent` (line {}) must be an integer \
                     1 to 100, not {other}",
                    line(&value)
                ))
            }
        });
    }
    if let Some(value) = raw.remove("priority") {
        let toml::Value::Integer(priority) = value.get_ref() else {
            return Err(format!(
                "node `{name}`: `priority` (line {}) must be an integer 1 to 10",
                line(&value)
            ));
        };
        check_priority(*priority, line(&value))
            .map_err(|e| format!("node `{name}`: `priority` {e}"))?;
    }
    if let Some(reference) = component.strip_prefix("oci://") {
        return Err(format!(
            "node `{name}`: component `oci://{reference}`: registry references are not fetched \
             here; declare a [[component]] with the file's path"
        ));
    }
    let is_reference =
        component.starts_with("file://") || component.ends_with(".wasm") || component.contains('/');
    if is_reference {
        components
            .entry(component.clone())
            .or_insert_with(|| location_of(base, &component));
    } else if !components.contains_key(&component) {
        return Err(format!(
            "node `{name}` names component `{component}`, which no [[component]] declares"
        ));
    }
    let window = match raw.remove("window") {
        Some(value) => Some(window_of(name, &value, text)?),
        None => None,
    };
    let mut node = NodeSpec::component(name, &component, role, config.as_deref().unwrap_or(""));
    node.limits = limits;
    node.window = window;
    Ok(ParsedNode {
        node,
        config_given: config.is_some(),
    })
}
