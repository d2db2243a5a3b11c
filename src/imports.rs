//! Who serves each import of a component: the contract's host
//! interfaces (under their own names, or aliased for another version or
//! package), WASI, interfaces the user linked, or nobody.

use crate::interfaces::{split_export_name, CONTRACT_VERSION};

/// The host interfaces of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostInterface {
    Types,
    BufferAllocator,
    CapabilityQuery,
}

impl HostInterface {
    fn from_name(interface: &str) -> Option<HostInterface> {
        match interface {
            "types" => Some(HostInterface::Types),
            "buffer-allocator" => Some(HostInterface::BufferAllocator),
            "capability-query" => Some(HostInterface::CapabilityQuery),
            _ => None,
        }
    }
}

/// Who serves an import of a component.
///
/// ```
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// use torvyn_engine::ImportProvider;
///
/// let upper = engine.compile("upper", &torvyn_fixtures::uppercase_processor())?;
/// for (import, provider) in upper.import_providers() {
///     assert_eq!(provider, ImportProvider::Contract, "{import}");
/// }
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportProvider {
    /// The host's implementation of a contract interface, under its own name.
    Contract,
    /// WASI 0.2, deny-by-default ([`WasiGrants`](crate::WasiGrants)).
    Wasi,
    /// The host's implementation of the named contract interface, served
    /// under the component's name for it (another version or package).
    ServedAs(&'static str),
    /// An interface linked with
    /// [`WasmtimeEngine::with_host_imports`](crate::WasmtimeEngine::with_host_imports).
    Custom,
    /// Nobody: the component cannot be instantiated.
    Missing,
}

/// Whether `import` is one of the user's interfaces (any version of it).
pub(crate) fn is_custom(custom: &[String], import: &str) -> bool {
    let (base, _) = split_export_name(import);
    custom
        .iter()
        .any(|name| name == import || split_export_name(name).0 == base)
}

/// Whether the engine's linker serves an import as is, under an alias, or not at all.
pub(crate) enum HostImport {
    Provided(ImportProvider),
    Alias(HostInterface),
    Missing,
}

impl HostInterface {
    pub(crate) fn contract_name(self) -> &'static str {
        match self {
            HostInterface::Types => "torvyn:streaming/types",
            HostInterface::BufferAllocator => "torvyn:streaming/buffer-allocator",
            HostInterface::CapabilityQuery => "torvyn:capabilities/capability-query",
        }
    }
}

/// The WASI 0.2 packages `wasmtime-wasi` provides (deny-by-default).
const WASI_PACKAGES: [&str; 6] = [
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/",
    "wasi:filesystem/",
    "wasi:sockets/",
];

pub(crate) fn host_import(import: &str) -> HostImport {
    if WASI_PACKAGES
        .iter()
        .any(|package| import.starts_with(package))
    {
        return HostImport::Provided(ImportProvider::Wasi);
    }
    let (base, version) = split_export_name(import);
    let Some((_, interface)) = base.split_once('/') else {
        return HostImport::Missing;
    };
    let Some(kind) = HostInterface::from_name(interface) else {
        return HostImport::Missing;
    };
    // The linker matches semver-compatible versions of its own names itself.
    match version {
        Some(v) if base == kind.contract_name() && CONTRACT_VERSION.is_compatible_with(v) => {
            HostImport::Provided(ImportProvider::Contract)
        }
        _ => HostImport::Alias(kind),
    }
}
