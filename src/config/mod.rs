//! Engine configuration: limits that contain untrusted components, and how
//! the engine compiles and caches them.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

mod limits;

pub use limits::{Limits, NodeLimits};

/// How instances get their memory.
///
/// ```
/// use torvyn_engine::{Allocation, EngineConfig, WasmtimeEngine};
///
/// // Slots for 16 live instances, reserved up front: fast instantiation.
/// let config = EngineConfig::builder()
///     .allocation(Allocation::Pooling { max_instances: 16 })
///     .build()?;
/// let engine = WasmtimeEngine::new(config)?;
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Allocation {
    /// Memory is mapped when an instance is created (wasmtime's default).
    #[default]
    OnDemand,
    /// Pre-reserved slots for up to this many live instances: much faster
    /// instantiation, bounded concurrency.
    Pooling {
        /// Live component instances the pool holds.
        max_instances: u32,
    },
}

/// How instances trade hot-path speed for how many can live at once.
///
/// A linear memory normally reserves 4 GiB of address space plus guard
/// regions, so wasm code needs no bounds checks; and every fiber stack (a
/// store keeps one after its first async call) has a guard page. Each costs
/// the process memory mappings, which the kernel caps (`vm.max_map_count`,
/// 65,530 by default): about 30,000 live instances at most.
///
/// ```
/// use torvyn_engine::{EngineConfig, InstanceDensity, WasmtimeEngine};
///
/// let config = EngineConfig::builder().density(InstanceDensity::Dense).build()?;
/// assert_eq!(config.density(), InstanceDensity::Dense);
/// let engine = WasmtimeEngine::new(config)?;
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum InstanceDensity {
    /// wasmtime's defaults: guard regions around memories and fiber stacks,
    /// no bounds checks in wasm code. The fastest calls.
    #[default]
    Guarded,
    /// No reservation or guard region for linear memories (wasm code checks
    /// bounds explicitly) and fiber stacks without guard pages, whose
    /// mappings merge: 100,000 live instances and more, ~22 KiB each.
    Dense,
}

/// What a component importing WASI 0.2 may reach. Everything is denied by
/// default: no arguments, no environment variables, no preopened
/// directories, no network, stdin empty and stdout/stderr discarded.
///
/// ```
/// use torvyn_engine::EngineConfig;
///
/// let config = EngineConfig::builder()
///     .wasi_env("LANG", "C.UTF-8")
///     .wasi_preopen(std::env::temp_dir(), "/tmp", true)
///     .build()?;
/// let grants = config.wasi();
/// assert_eq!(grants.env, [("LANG".to_string(), "C.UTF-8".to_string())]);
/// assert!(!grants.inherit_stdio);
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WasiGrants {
    /// Environment variables the guest sees.
    pub env: Vec<(String, String)>,
    /// Host directories the guest sees: (host path, guest path, read-only).
    pub preopens: Vec<(PathBuf, String, bool)>,
    /// Whether the guest's stdio is the host process's.
    pub inherit_stdio: bool,
}

/// Configuration of a [`WasmtimeEngine`](crate::WasmtimeEngine). Build with
/// [`EngineConfig::builder`].
///
/// ```
/// use std::time::Duration;
/// use torvyn_engine::{EngineConfig, WasmtimeEngine};
///
/// let config = EngineConfig::builder()
///     .fuel_per_call(Some(10_000_000))
///     .call_deadline(Some(Duration::from_secs(1)))
///     .build()?;
/// assert_eq!(config.limits().fuel_per_call, Some(10_000_000));
/// let engine = WasmtimeEngine::new(config)?;
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    pub(crate) limits: Limits,
    pub(crate) max_stack_bytes: usize,
    pub(crate) epoch_tick: Duration,
    pub(crate) time_slice: Duration,
    pub(crate) allocation: Allocation,
    pub(crate) density: InstanceDensity,
    pub(crate) cache_dir: Option<PathBuf>,
    pub(crate) capabilities: BTreeSet<String>,
    pub(crate) wasi: WasiGrants,
    pub(crate) component_fuel: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            limits: Limits::default(),
            max_stack_bytes: 512 << 10,
            epoch_tick: Duration::from_millis(1),
            time_slice: Duration::from_millis(1),
            allocation: Allocation::OnDemand,
            density: InstanceDensity::Guarded,
            cache_dir: None,
            capabilities: BTreeSet::new(),
            wasi: WasiGrants::default(),
            component_fuel: false,
        }
    }
}

impl EngineConfig {
    /// Whether components are compiled with fuel metering: fuel is
    /// configured engine-wide or allowed per component.
    pub(crate) fn metered(&self) -> bool {
        self.limits.fuel_per_call.is_some() || self.component_fuel
    }

    /// A builder starting from the defaults: 5 s call deadline, no fuel
    /// metering, 64 MiB linear memory, 64 MiB buffer budget, 512 KiB stack.
    pub fn builder() -> EngineConfigBuilder {
        EngineConfigBuilder {
            config: EngineConfig::default(),
        }
    }

    /// The limits every instance gets.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The epoch tick: the granularity of call deadlines and time slices.
    pub fn epoch_tick(&self) -> Duration {
        self.epoch_tick
    }

    /// The wasm stack each call may use.
    pub fn max_stack_bytes(&self) -> usize {
        self.max_stack_bytes
    }

    /// How long an async call runs before it yields to its executor.
    pub fn time_slice(&self) -> Duration {
        self.time_slice
    }

    /// What components importing WASI are granted.
    pub fn wasi(&self) -> &WasiGrants {
        &self.wasi
    }

    /// The instance density setting.
    pub fn density(&self) -> InstanceDensity {
        self.density
    }

    /// The folder of the on-disk compile cache, if any.
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.cache_dir.as_deref()
    }
}

/// Builds a validated [`EngineConfig`].
///
/// ```
/// use torvyn_engine::EngineConfig;
///
/// // Each setting is checked by `build`, which names what is wrong.
/// let error = EngineConfig::builder().fuel_per_call(Some(0)).build().unwrap_err();
/// assert!(error.to_string().contains("fuel_per_call"));
/// ```
#[derive(Debug, Clone)]
pub struct EngineConfigBuilder {
    config: EngineConfig,
}

impl EngineConfigBuilder {
    /// Meters fuel in every component even without an engine-wide
    /// [`fuel_per_call`](Self::fuel_per_call), so that
    /// [`CompiledComponent::with_limits`](crate::CompiledComponent::with_limits)
    /// can give one component a fuel limit. Metering costs compute-bound
    /// guests about a quarter to a third more time, so it is only compiled
    /// in when fuel is configured (this, or `fuel_per_call`); deadlines work
    /// on any engine (epoch interruption is always on).
    pub fn component_fuel(mut self, allowed: bool) -> Self {
        self.config.component_fuel = allowed;
        self
    }

    /// Fuel per call; `None` turns fuel metering off.
    pub fn fuel_per_call(mut self, fuel: Option<u64>) -> Self {
        self.config.limits.fuel_per_call = fuel;
        self
    }

    /// Wall-clock deadline per call; `None` turns deadlines off.
    pub fn call_deadline(mut self, deadline: Option<Duration>) -> Self {
        self.config.limits.call_deadline = deadline;
        self
    }

    /// Largest linear memory per instance, in bytes.
    pub fn max_memory_bytes(mut self, bytes: u64) -> Self {
        self.config.limits.max_memory_bytes = bytes;
        self
    }

    /// Largest table per instance, in elements.
    pub fn max_table_elements(mut self, elements: usize) -> Self {
        self.config.limits.max_table_elements = elements;
        self
    }

    /// Host buffer bytes a guest may hold at once.
    pub fn buffer_budget_bytes(mut self, bytes: u64) -> Self {
        self.config.limits.buffer_budget_bytes = bytes;
        self
    }

    /// Core instances, memories and tables one instance may create.
    pub fn max_instance_parts(
        mut self,
        core_instances: usize,
        memories: usize,
        tables: usize,
    ) -> Self {
        self.config.limits.max_core_instances = core_instances;
        self.config.limits.max_memories = memories;
        self.config.limits.max_tables = tables;
        self
    }

    /// Component-model handles live at once in one instance.
    pub fn max_handles(mut self, handles: usize) -> Self {
        self.config.limits.max_handles = handles;
        self
    }

    /// Bytes the guest may pass to the host in one transfer.
    pub fn max_transfer_bytes(mut self, bytes: usize) -> Self {
        self.config.limits.max_transfer_bytes = bytes;
        self
    }

    /// Bytes of state a stage's `save` may return.
    pub fn max_state_bytes(mut self, bytes: usize) -> Self {
        self.config.limits.max_state_bytes = bytes;
        self
    }

    /// Maximum wasm stack, in bytes.
    pub fn max_stack_bytes(mut self, bytes: usize) -> Self {
        self.config.max_stack_bytes = bytes;
        self
    }

    /// Granularity of call deadlines (the background ticker's period).
    pub fn epoch_tick(mut self, tick: Duration) -> Self {
        self.config.epoch_tick = tick;
        self
    }

    /// How long an async call runs before yielding to its executor, so
    /// other tasks on the same worker thread keep moving (rounded up to
    /// whole epoch ticks, at least one; default 1 ms).
    pub fn time_slice(mut self, slice: Duration) -> Self {
        self.config.time_slice = slice;
        self
    }

    /// How instance memory is allocated.
    pub fn allocation(mut self, allocation: Allocation) -> Self {
        self.config.allocation = allocation;
        self
    }

    /// How many instances can live at once, against hot-path speed.
    pub fn density(mut self, density: InstanceDensity) -> Self {
        self.config.density = density;
        self
    }

    /// Keeps compiled components in this folder across processes.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.cache_dir = Some(dir.into());
        self
    }

    /// Grants a capability that guests can query through `torvyn:capabilities`.
    pub fn grant(mut self, capability: impl Into<String>) -> Self {
        self.config.capabilities.insert(capability.into());
        self
    }

    /// Lets WASI guests see the environment variable `key`.
    pub fn wasi_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.wasi.env.push((key.into(), value.into()));
        self
    }

    /// Lets WASI guests see host directory `host` as `guest`.
    pub fn wasi_preopen(
        mut self,
        host: impl Into<PathBuf>,
        guest: impl Into<String>,
        read_only: bool,
    ) -> Self {
        self.config
            .wasi
            .preopens
            .push((host.into(), guest.into(), read_only));
        self
    }

    /// Gives WASI guests the host process's stdin, stdout and stderr.
    pub fn wasi_inherit_stdio(mut self, inherit: bool) -> Self {
        self.config.wasi.inherit_stdio = inherit;
        self
    }

    /// Checks the values and returns the configuration.
    pub fn build(self) -> Result<EngineConfig> {
        let config = self.config;
        let limits = &config.limits;
        if let Some(why) = limits.problem() {
            return Err(Error::Config(why.into()));
        }
        if let Some(deadline) = limits.call_deadline {
            if deadline < config.epoch_tick {
                return Err(Error::Config(format!(
                    "call_deadline {deadline:?} is shorter than the epoch tick {:?}",
                    config.epoch_tick
                )));
            }
        }
        if config.epoch_tick.is_zero() {
            return Err(Error::Config("epoch_tick must be positive".into()));
        }
        if limits.max_memory_bytes < 65_536 {
            return Err(Error::Config(format!(
                "max_memory_bytes {} is below one wasm page (65536)",
                limits.max_memory_bytes
            )));
        }
        if !(64 << 10..=256 << 20).contains(&config.max_stack_bytes) {
            return Err(Error::Config(format!(
                "max_stack_bytes {} is outside 64 KiB..=256 MiB",
                config.max_stack_bytes
            )));
        }
        for (host, _, _) in &config.wasi.preopens {
            if !host.is_dir() {
                return Err(Error::Config(format!(
                    "WASI preopen {} is not a directory",
                    host.display()
                )));
            }
        }
        if let Allocation::Pooling { max_instances: 0 } = config.allocation {
            return Err(Error::Config("pooling needs max_instances > 0".into()));
        }
        Ok(config)
    }
}
