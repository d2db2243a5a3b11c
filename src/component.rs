//! A compiled component: compiled once, linked and pre-instantiated once,
//! its exports classified and its dynamic exports planned once, so that
//! each instantiation only creates a store and an instance.

use std::sync::Arc;

use wasmtime::component::InstancePre;

use crate::cache::hex;
use crate::config::Limits;
use crate::dynamic::InterfacePlan;
use crate::error::{Error, Result};
use crate::exports::TypedIndices;
use crate::gate::WasiRuntime;
use crate::imports::{host_import, is_custom, HostImport, ImportProvider};
use crate::interfaces::{CallPath, ExportInfo, Interface};
use crate::store::{Epoch, ExtensionSlot, StoreState};

/// A compiled and pre-instantiated component: linking and export lookups are
/// done once here, so each instantiation only creates a store and an instance.
///
/// ```
/// use torvyn_engine::{CallPath, EngineConfig, Interface, WasmEngine, WasmtimeEngine};
///
/// // A processor that drops every element, written in WAT against the
/// // contract's canonical ABI and made a component with the contract's WIT.
/// const DROP: &str = r#"(module
///   (import "torvyn:streaming/types@0.1.0" "[resource-drop]buffer" (func $drop_buffer (param i32)))
///   (import "torvyn:streaming/types@0.1.0" "[resource-drop]flow-context" (func $drop_context (param i32)))
///   (memory (export "memory") 1)
///   (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
///   (func (export "torvyn:streaming/processor@0.1.0#process")
///     (param i64 i64 i32 i32) (param $payload i32) (param $context i32) (result i32)
///     (call $drop_buffer (local.get $payload))
///     (call $drop_context (local.get $context))
///     (i32.store8 (i32.const 64) (i32.const 0))  ;; ok(
///     (i32.store8 (i32.const 72) (i32.const 1))  ;;    drop)
///     (i32.const 64)))"#;
/// let bytes = torvyn_fixtures::build("torvyn:streaming/transform@0.1.0", DROP).unwrap();
/// let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// let component = engine.compile("drop", &bytes)?;
/// assert_eq!(component.name(), "drop");
/// assert_eq!(component.path_for(Interface::Processor), Some(&CallPath::Typed));
/// // Cheap to clone; each clone makes instances of the same compiled code.
/// let mut first = engine.instantiate(&component)?;
/// let mut second = engine.instantiate(&component.clone())?;
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Clone)]
pub struct CompiledComponent {
    pub(crate) inner: Arc<CompiledInner>,
}

pub(crate) struct CompiledInner {
    pub(crate) name: String,
    pub(crate) digest: [u8; 32],
    pub(crate) pre: InstancePre<StoreState>,
    pub(crate) exports: Vec<ExportInfo>,
    pub(crate) typed: TypedIndices,
    pub(crate) dynamic: Vec<InterfacePlan>,
    /// Whether instances need a WASI context.
    pub(crate) imports_wasi: bool,
    /// For components importing WASI (linked async): the runtime of its
    /// host futures.
    pub(crate) wasi_runtime: Option<Arc<WasiRuntime>>,
    /// The engine's user-linked interfaces.
    pub(crate) custom_imports: Vec<String>,
    /// The host states each instance gets (`HostImports::state`).
    pub(crate) extensions: Arc<[ExtensionSlot]>,
    /// Whether the engine compiled it with fuel metering.
    pub(crate) metered: bool,
    /// The engine's epoch, as its ticker counts it.
    pub(crate) epoch: Epoch,
    pub(crate) limits: Limits,
}

impl CompiledComponent {
    /// The name given at compile time.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// SHA-256 of the component bytes, in hex.
    pub fn digest(&self) -> String {
        hex(&self.inner.digest)
    }

    /// The component's exports and how each is called.
    pub fn exports(&self) -> &[ExportInfo] {
        &self.inner.exports
    }

    /// How calls to `interface` are made, if the component exports it.
    pub fn path_for(&self, interface: Interface) -> Option<&CallPath> {
        self.inner
            .exports
            .iter()
            .find(|e| e.interface == Some(interface) && !matches!(e.path, CallPath::ByNameOnly(_)))
            .map(|e| &e.path)
    }

    /// Each import of the component and who serves it.
    pub fn import_providers(&self) -> Vec<(String, ImportProvider)> {
        self.imports()
            .into_iter()
            .map(|import| {
                if is_custom(&self.inner.custom_imports, &import) {
                    return (import, ImportProvider::Custom);
                }
                let provider = match host_import(&import) {
                    HostImport::Provided(provider) => provider,
                    HostImport::Alias(kind) => ImportProvider::ServedAs(kind.contract_name()),
                    HostImport::Missing => ImportProvider::Missing,
                };
                (import, provider)
            })
            .collect()
    }

    /// The names of the component's imports.
    pub fn imports(&self) -> Vec<String> {
        let component = self.inner.pre.component();
        let engine = component.engine();
        component
            .component_type()
            .imports(engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// The limits its instances get.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// A copy with other limits for its instances (e.g. a component that needs
    /// more fuel than the engine's default). A fuel limit needs an engine
    /// that meters fuel (`fuel_per_call` or `component_fuel(true)`): on
    /// another it is an [`Error::Config`] naming the setting, not a limit
    /// silently ignored.
    pub fn with_limits(&self, limits: Limits) -> Result<CompiledComponent> {
        let inner = &self.inner;
        if let (Some(fuel), false) = (limits.fuel_per_call, inner.metered) {
            return Err(Error::Config(format!(
                "component `{}`: fuel_per_call = {fuel} needs fuel metering, which this engine \
                 does not compile in: build it with EngineConfig::builder().component_fuel(true) \
                 (or an engine-wide fuel_per_call)",
                inner.name
            )));
        }
        if let Some(why) = limits.problem() {
            return Err(Error::Config(format!("component `{}`: {why}", inner.name)));
        }
        Ok(CompiledComponent {
            inner: Arc::new(CompiledInner {
                name: inner.name.clone(),
                digest: inner.digest,
                pre: inner.pre.clone(),
                exports: inner.exports.clone(),
                typed: inner.typed.clone(),
                dynamic: inner.dynamic.clone(),
                imports_wasi: inner.imports_wasi,
                wasi_runtime: inner.wasi_runtime.clone(),
                custom_imports: inner.custom_imports.clone(),
                extensions: inner.extensions.clone(),
                metered: inner.metered,
                epoch: inner.epoch.clone(),
                limits,
            }),
        })
    }
}

impl std::fmt::Debug for CompiledComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledComponent")
            .field("name", &self.inner.name)
            .field("digest", &self.digest())
            .field("exports", &self.inner.exports)
            .finish()
    }
}
