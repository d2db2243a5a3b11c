//! The contract's exported interfaces, and which of them a component exports.

use std::fmt;

/// An interface of the contract that a component can export.
///
/// ```
/// use torvyn_engine::Interface;
///
/// assert_eq!(Interface::Processor.wit_name(), "torvyn:streaming/processor");
/// assert_eq!(Interface::from_role("filter"), Some(Interface::Filter));
/// assert_eq!(Interface::from_wit_name("torvyn:aggregation/aggregator"), Some(Interface::Aggregator));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Interface {
    /// `torvyn:streaming/lifecycle`: `init`, `teardown`.
    Lifecycle,
    /// `torvyn:streaming/processor`: `process`.
    Processor,
    /// `torvyn:streaming/source`: `pull`, `notify-backpressure`.
    Source,
    /// `torvyn:streaming/sink`: `push`, `complete`.
    Sink,
    /// `torvyn:filtering/filter`: `evaluate`.
    Filter,
    /// `torvyn:filtering/router`: `route`.
    Router,
    /// `torvyn:aggregation/aggregator`: `ingest`, `flush`.
    Aggregator,
    /// `torvyn:windowing/windowed-aggregator`: `fold`, `merge`, `emit` (the
    /// host keeps each key's and window's state; see [`crate::window`]).
    Windowed,
    /// `torvyn:state/snapshot`: `save`, `restore` (a stage whose state can
    /// be carried to another instance; not a role of its own).
    Snapshot,
}

/// The contract version the typed bindings were generated for.
pub const CONTRACT_VERSION: Version = Version {
    major: 0,
    minor: 1,
    patch: 0,
};

impl Interface {
    /// Every exportable interface.
    pub const ALL: [Interface; 9] = [
        Interface::Lifecycle,
        Interface::Processor,
        Interface::Source,
        Interface::Sink,
        Interface::Filter,
        Interface::Router,
        Interface::Aggregator,
        Interface::Windowed,
        Interface::Snapshot,
    ];

    /// The unversioned WIT name, e.g. `torvyn:streaming/processor`.
    pub fn wit_name(self) -> &'static str {
        match self {
            Interface::Lifecycle => "torvyn:streaming/lifecycle",
            Interface::Processor => "torvyn:streaming/processor",
            Interface::Source => "torvyn:streaming/source",
            Interface::Sink => "torvyn:streaming/sink",
            Interface::Filter => "torvyn:filtering/filter",
            Interface::Router => "torvyn:filtering/router",
            Interface::Aggregator => "torvyn:aggregation/aggregator",
            Interface::Windowed => "torvyn:windowing/windowed-aggregator",
            Interface::Snapshot => "torvyn:state/snapshot",
        }
    }

    /// The versioned export name the typed bindings look up.
    pub fn export_name(self) -> &'static str {
        match self {
            Interface::Lifecycle => "torvyn:streaming/lifecycle@0.1.0",
            Interface::Processor => "torvyn:streaming/processor@0.1.0",
            Interface::Source => "torvyn:streaming/source@0.1.0",
            Interface::Sink => "torvyn:streaming/sink@0.1.0",
            Interface::Filter => "torvyn:filtering/filter@0.1.0",
            Interface::Router => "torvyn:filtering/router@0.1.0",
            Interface::Aggregator => "torvyn:aggregation/aggregator@0.1.0",
            Interface::Windowed => "torvyn:windowing/windowed-aggregator@0.1.0",
            Interface::Snapshot => "torvyn:state/snapshot@0.1.0",
        }
    }

    /// The interface whose unversioned name is `name`.
    pub fn from_wit_name(name: &str) -> Option<Interface> {
        Interface::ALL.into_iter().find(|i| i.wit_name() == name)
    }

    /// The interface's own name, e.g. `processor`.
    pub fn role(self) -> &'static str {
        let name = self.wit_name();
        &name[name.rfind('/').map_or(0, |slash| slash + 1)..]
    }

    /// The interface whose own name is `role` (`processor`, `sink`, ...),
    /// whatever package exports it.
    pub fn from_role(role: &str) -> Option<Interface> {
        Interface::ALL.into_iter().find(|i| i.role() == role)
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wit_name())
    }
}

/// A semantic version as found in WIT export names.
///
/// ```
/// use torvyn_engine::{Version, CONTRACT_VERSION};
///
/// let v = Version::parse("0.1.4").unwrap();
/// assert!(CONTRACT_VERSION.is_compatible_with(v)); // 0.1.x: same minor
/// assert!(!CONTRACT_VERSION.is_compatible_with(Version::parse("0.2.0").unwrap()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
    /// Patch.
    pub patch: u64,
}

impl Version {
    /// Parses `1.2.3` (pre-release and build suffixes are ignored).
    pub fn parse(text: &str) -> Option<Version> {
        let core = text.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        let version = Version {
            major: parts.next()??,
            minor: parts.next()??,
            patch: parts.next()??,
        };
        parts.next().is_none().then_some(version)
    }

    /// Whether code built for `self` can call a component of `other` (semver:
    /// same major, and for 0.x the same minor).
    pub fn is_compatible_with(self, other: Version) -> bool {
        self.major == other.major && (self.major != 0 || self.minor == other.minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// An export of a component, as found in its type.
///
/// ```
/// use torvyn_engine::{classify_export, CallPath, Interface};
///
/// let export = classify_export("torvyn:streaming/processor@0.1.2");
/// assert_eq!(export.interface, Some(Interface::Processor));
/// assert_eq!(export.path, CallPath::Typed);
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// // A compiled component lists its own:
/// let upper = engine.compile("upper", &torvyn_fixtures::uppercase_processor())?;
/// assert!(upper.exports().iter().any(|e| e.interface == Some(Interface::Processor)));
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportInfo {
    /// The full export name, e.g. `torvyn:streaming/processor@0.1.2`.
    pub name: String,
    /// The contract interface it provides, if any.
    pub interface: Option<Interface>,
    /// How calls to it are made.
    pub path: CallPath,
}

/// How the engine calls an export.
///
/// ```
/// use torvyn_engine::{classify_export, CallPath};
///
/// // Another version of the contract runs on the dynamic path:
/// match classify_export("torvyn:streaming/processor@0.2.0").path {
///     CallPath::Dynamic(why) => println!("dynamic: {why}"),
///     other => panic!("{other}"),
/// }
/// assert!(matches!(classify_export("acme:calc/calc").path, CallPath::ByNameOnly(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallPath {
    /// Through the generated typed bindings (no `Val` marshaling).
    Typed,
    /// Through `Val`s matched to the contract by name; the reason says why
    /// the typed bindings do not apply.
    Dynamic(String),
    /// Not a stream-stage interface: callable only by name
    /// ([`WasmtimeInstance::invoke`](crate::WasmtimeInstance::invoke)).
    ByNameOnly(String),
}

impl fmt::Display for CallPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallPath::Typed => f.write_str("typed"),
            CallPath::Dynamic(why) => write!(f, "dynamic ({why})"),
            CallPath::ByNameOnly(why) => write!(f, "by name only ({why})"),
        }
    }
}

/// Splits `ns:pkg/iface@1.2.3` into (`ns:pkg/iface`, version).
pub fn split_export_name(name: &str) -> (&str, Option<Version>) {
    match name.split_once('@') {
        Some((base, version)) => (base, Version::parse(version)),
        None => (name, None),
    }
}

/// Classifies one export name of a component: the contract's interfaces
/// at a semver-compatible version take the typed path; the same roles under
/// another version or package take the dynamic path.
pub fn classify_export(name: &str) -> ExportInfo {
    let (base, version) = split_export_name(name);
    let contract = Interface::from_wit_name(base);
    let role = base
        .split_once('/')
        .and_then(|(_, interface)| Interface::from_role(interface));
    let path = match (contract, version) {
        (Some(_), Some(v)) if CONTRACT_VERSION.is_compatible_with(v) => CallPath::Typed,
        (Some(_), Some(v)) => CallPath::Dynamic(format!(
            "version {v} is not semver-compatible with {CONTRACT_VERSION}"
        )),
        (Some(_), None) => CallPath::Dynamic("unversioned export".into()),
        (None, _) if role.is_some() => CallPath::Dynamic(format!(
            "not the contract's package; matched by interface name `{}`",
            base.rsplit('/').next().unwrap_or(base)
        )),
        (None, _) => CallPath::ByNameOnly("not a stream-stage interface".into()),
    };
    ExportInfo {
        name: name.to_string(),
        interface: contract.or(role),
        path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_semver_for_zero_major() {
        let v = |s| Version::parse(s).unwrap();
        assert!(CONTRACT_VERSION.is_compatible_with(v("0.1.7")));
        assert!(!CONTRACT_VERSION.is_compatible_with(v("0.2.0")));
        assert!(!CONTRACT_VERSION.is_compatible_with(v("1.1.0")));
        assert_eq!(Version::parse("0.1"), None);
        assert_eq!(Version::parse("0.1.0-rc1"), Some(v("0.1.0")));
    }
}
