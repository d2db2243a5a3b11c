//! The library's error type: one enum that tells apart what the guest
//! reported, what the limits stopped, and what went wrong in the host.

use std::path::PathBuf;

/// A `process-error` reported by a guest (the contract's error variant).
///
/// ```
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// use torvyn_engine::{ComponentInvoker, Element, Error, GuestError};
///
/// // A processor that reports `invalid-input("bad")` for every element.
/// let component = engine.compile("picky", &torvyn_fixtures::hostile::reports_error(0))?;
/// let mut picky = engine.instantiate(&component)?;
/// match picky.process(&Element::new(0, "", "x")) {
///     Err(Error::Guest { error: GuestError::InvalidInput(why), .. }) => println!("refused: {why}"),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuestError {
    /// The element is malformed for this stage.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A dependency is temporarily unavailable.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or unexpected state in the component.
    #[error("internal error: {0}")]
    Internal(String),
    /// The element's deadline passed.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// The component will take no more elements.
    #[error("fatal: {0}")]
    Fatal(String),
}

/// Where a call went wrong: which component, which function.
///
/// ```
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// use torvyn_engine::{ComponentInvoker, Element, Error};
///
/// let component = engine.compile("looper", &torvyn_fixtures::faults::unreachable_on_third())?;
/// let mut instance = engine.instantiate(&component)?;
/// for sequence in 0..2 {
///     instance.process(&Element::new(sequence, "", "x"))?;
/// }
/// match instance.process(&Element::new(2, "", "x")) {
///     Err(Error::Trap { site, .. }) => {
///         assert_eq!(site.component, "looper");
///         assert_eq!(site.function, "process");
///     }
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallSite {
    /// The component's name.
    pub component: String,
    /// The contract function called (`process`, `pull`, ...), or the
    /// export called by name.
    pub function: String,
}

impl std::fmt::Display for CallSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "component `{}`, function `{}`",
            self.component, self.function
        )
    }
}

/// Everything that can go wrong in the engine.
///
/// ```
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// use torvyn_engine::{ComponentInvoker, Element, Error, ErrorKind};
///
/// let component = engine.compile("trap", &torvyn_fixtures::faults::unreachable_on_third())?;
/// let mut instance = engine.instantiate(&component)?;
/// let error = (0..3)
///     .map(|sequence| instance.process(&Element::new(sequence, "", "x")))
///     .find_map(Result::err)
///     .unwrap();
/// assert_eq!(error.kind(), ErrorKind::Trap);
/// assert!(error.poisons_instance()); // make a fresh instance to go on
/// println!("{error}");
/// if let Some(frames) = error.backtrace() {
///     println!("{frames}"); // the guest's frames, with names where it has them
/// }
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The guest returned a `process-error`.
    #[error("{site}: guest reported {error}")]
    Guest {
        /// Where.
        site: CallSite,
        /// What the guest said.
        error: GuestError,
    },
    /// The call used up its fuel.
    #[error("{site}: fuel exhausted")]
    FuelExhausted {
        /// Where.
        site: CallSite,
    },
    /// The call ran past its wall-clock deadline.
    #[error("{site}: deadline exceeded")]
    DeadlineExceeded {
        /// Where.
        site: CallSite,
    },
    /// The guest needed more linear memory or table space than allowed.
    #[error("{site}: memory limit reached ({detail})")]
    MemoryLimit {
        /// Where.
        site: CallSite,
        /// What was refused.
        detail: String,
    },
    /// A stage's `save` returned more state than
    /// [`Limits::max_state_bytes`](crate::Limits::max_state_bytes) allows.
    /// The state is dropped; the instance is not poisoned.
    #[error("{site}: {bytes} bytes of state, over max_state_bytes = {limit}")]
    StateLimit {
        /// Where.
        site: CallSite,
        /// What the guest returned (`save`, `fold`, `merge`).
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The guest trapped.
    #[error("{site}: trap: {trap}")]
    Trap {
        /// Where.
        site: CallSite,
        /// The trap code or message.
        trap: String,
        /// wasmtime's trap code, when the guest trapped with one
        /// (`unreachable`, a stack overflow, an out-of-bounds access...);
        /// `None` for what the runtime or the host refused by message (a
        /// string that is no UTF-8, a stale handle, an output against the
        /// contract).
        code: Option<wasmtime::Trap>,
        /// The guest's frames where it trapped, innermost first: function
        /// names, and file:line where the component carries debug info
        /// (its `Display` prints them one per line). `None` when wasmtime
        /// captured none (a trap outside wasm code).
        backtrace: Option<Box<wasmtime::WasmBacktrace>>,
    },
    /// An earlier call trapped; this instance takes no more calls.
    #[error("{site}: instance poisoned by an earlier failure: {cause}")]
    Poisoned {
        /// Where.
        site: CallSite,
        /// The failure that poisoned the instance.
        cause: String,
    },
    /// The component does not export the interface this call needs.
    #[error("component `{component}` does not export `{interface}`")]
    NotExported {
        /// The component.
        component: String,
        /// The missing interface.
        interface: String,
    },
    /// The component's exports or imports do not match the contract.
    #[error("component `{component}` does not match the contract: {detail}")]
    ContractMismatch {
        /// The component.
        component: String,
        /// What differs.
        detail: String,
    },
    /// The component imports interfaces nobody provides.
    #[error("component `{component}` imports what the host does not provide: {}", missing.join(", "))]
    MissingImports {
        /// The component.
        component: String,
        /// Every import that is missing.
        missing: Vec<String>,
    },
    /// A call by name ([`invoke`](crate::WasmtimeInstance::invoke)) could
    /// not be made: unknown function, unparsable WAVE, wrong arguments.
    #[error("component `{component}`: cannot call `{call}`: {detail}")]
    BadCall {
        /// The component.
        component: String,
        /// The call text.
        call: String,
        /// Why.
        detail: String,
    },
    /// The bytes are not a valid component for this engine.
    #[error("cannot compile component `{component}`{}", colon(detail))]
    Compile {
        /// The component.
        component: String,
        /// Why, in the engine's words (empty when the cause says it all);
        /// the cause's own text is in `source`, never repeated here.
        detail: String,
        /// The underlying error (wasmtime's, the file system's), when
        /// there is one: downcast it to tell causes apart without
        /// matching text.
        #[source]
        source: Option<Cause>,
    },
    /// Linking or instantiating failed.
    #[error("cannot instantiate component `{component}`{}", colon(detail))]
    Instantiate {
        /// The component.
        component: String,
        /// Why, in the engine's words (empty when the cause says it all);
        /// the cause's own text is in `source`, never repeated here.
        detail: String,
        /// The underlying error (wasmtime's, the file system's), when
        /// there is one: downcast it to tell causes apart without
        /// matching text.
        #[source]
        source: Option<Cause>,
    },
    /// A flow is not valid (its graph, its flow file), or a router sent an
    /// element to a port no edge leaves. The detail names the node, edge,
    /// key or port at fault.
    #[error("flow `{flow}`: {detail}")]
    Flow {
        /// The flow's name (or the flow file, for file errors).
        flow: String,
        /// What is wrong.
        detail: String,
    },
    /// A flow file's component could not be found where the file says it
    /// is (a project directory not built, a build's output missing):
    /// [`FlowFile::resolve_component`](crate::flow::file::FlowFile::resolve_component).
    #[error("component `{component}`: {detail}")]
    Unresolved {
        /// The component's name in the flow file.
        component: String,
        /// Where it was looked for, and what to do about it.
        detail: String,
    },
    /// A connector node (a broker's stream, a file, stdio) could not be
    /// opened or failed: the node, its kind and what went wrong, with the
    /// underlying error kept as the source.
    #[error("node `{node}` ({kind} connector): {detail}")]
    Connector {
        /// The node.
        node: String,
        /// The connector kind (`nats`, `file`, ...).
        kind: String,
        /// What went wrong (never a secret: URLs and subjects, not tokens).
        detail: String,
        /// The client's own error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A stage's state could not be loaded from, stored in or removed from
    /// its state store.
    #[error("state store ({store}): {detail}")]
    State {
        /// The store (`directory /x`, `NATS key-value bucket B at URL`).
        store: String,
        /// What went wrong, naming the stage where there is one.
        detail: String,
        /// The store's own error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// An engine configuration value is invalid.
    #[error("invalid engine configuration: {0}")]
    Config(String),
    /// The compile cache on disk could not be used.
    #[error("compile cache {}{}", path.display(), colon(detail))]
    Cache {
        /// The file or folder.
        path: PathBuf,
        /// Why, in the engine's words; the cause's own text (an I/O
        /// error) is in `source`, never repeated here.
        detail: String,
        /// The file system's error, when there is one.
        #[source]
        source: Option<Cause>,
    },
}

/// The class of an [`Error`], to branch on without matching message text.
/// Classes may be added: match it with a wildcard arm.
///
/// ```
/// # use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
/// # let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// use torvyn_engine::ErrorKind;
///
/// match engine.compile("junk", b"not wasm") {
///     Err(error) if error.kind() == ErrorKind::Compile => println!("not a component: {error}"),
///     Err(error) => return Err(error),
///     Ok(_) => unreachable!(),
/// }
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The guest returned a `process-error` ([`Error::Guest`]).
    Guest,
    /// A limit stopped the call: fuel, deadline, memory, state size.
    Limit,
    /// The guest trapped, or its output broke the contract ([`Error::Trap`]).
    Trap,
    /// An earlier failure poisoned the instance ([`Error::Poisoned`]).
    Poisoned,
    /// The component does not fit the host: an export or import missing,
    /// or a shape against the contract.
    Contract,
    /// A call by name could not be made ([`Error::BadCall`]).
    BadCall,
    /// The bytes could not be compiled ([`Error::Compile`]).
    Compile,
    /// Linking or instantiating failed ([`Error::Instantiate`]).
    Instantiate,
    /// A flow is not valid, a router named a port no edge leaves, or a flow
    /// file's component is not where the file says.
    Flow,
    /// A connector could not be opened or failed.
    Connector,
    /// A state store could not be used.
    State,
    /// An engine configuration value is invalid.
    Config,
    /// The compile cache on disk could not be used.
    Cache,
}

impl Error {
    /// This error's class.
    ///
    /// ```
    /// use torvyn_engine::{EngineConfig, ErrorKind, WasmEngine, WasmtimeEngine};
    ///
    /// let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
    /// let error = engine.compile("junk", b"not wasm").unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::Compile);
    /// # Ok::<(), torvyn_engine::Error>(())
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Guest { .. } => ErrorKind::Guest,
            Error::FuelExhausted { .. }
            | Error::DeadlineExceeded { .. }
            | Error::MemoryLimit { .. }
            | Error::StateLimit { .. } => ErrorKind::Limit,
            Error::Trap { .. } => ErrorKind::Trap,
            Error::Poisoned { .. } => ErrorKind::Poisoned,
            Error::NotExported { .. }
            | Error::ContractMismatch { .. }
            | Error::MissingImports { .. } => ErrorKind::Contract,
            Error::BadCall { .. } => ErrorKind::BadCall,
            Error::Compile { .. } => ErrorKind::Compile,
            Error::Instantiate { .. } => ErrorKind::Instantiate,
            Error::Flow { .. } | Error::Unresolved { .. } => ErrorKind::Flow,
            Error::Connector { .. } => ErrorKind::Connector,
            Error::State { .. } => ErrorKind::State,
            Error::Config(_) => ErrorKind::Config,
            Error::Cache { .. } => ErrorKind::Cache,
        }
    }

    /// The guest's frames where it trapped (a [`Error::Trap`] that has
    /// them): function names, and file:line where the component carries
    /// debug info; its `Display` prints one frame per line.
    pub fn backtrace(&self) -> Option<&wasmtime::WasmBacktrace> {
        match self {
            Error::Trap { backtrace, .. } => backtrace.as_deref(),
            _ => None,
        }
    }

    /// Whether this error leaves the instance unusable (it must be
    /// re-instantiated): a limit or a trap stopped the call, an earlier
    /// failure poisoned it, or the guest itself said `fatal`.
    pub fn poisons_instance(&self) -> bool {
        matches!(
            self,
            Error::FuelExhausted { .. }
                | Error::DeadlineExceeded { .. }
                | Error::MemoryLimit { .. }
                | Error::Trap { .. }
                | Error::Poisoned { .. }
                | Error::Guest {
                    error: GuestError::Fatal(_),
                    ..
                }
        )
    }
}

/// The client's own error behind an [`Error::Connector`].
pub(crate) type Cause = Box<dyn std::error::Error + Send + Sync>;

/// `detail` after a colon, or nothing when it is empty (the cause, kept as
/// the source, says it all).
fn colon(detail: &str) -> String {
    match detail.is_empty() {
        true => String::new(),
        false => format!(": {detail}"),
    }
}

impl Error {
    /// An [`Error::Compile`] of `component`; `source` kept as its cause.
    pub(crate) fn compile(component: &str, detail: String, source: Option<Cause>) -> Error {
        Error::Compile {
            component: component.to_string(),
            detail,
            source,
        }
    }

    /// An [`Error::Instantiate`] of `component`; `source` kept as its cause.
    pub(crate) fn instantiate(component: &str, detail: String, source: Option<Cause>) -> Error {
        Error::Instantiate {
            component: component.to_string(),
            detail,
            source,
        }
    }

    /// An [`Error::Instantiate`] caused by wasmtime's `error` (kept as the
    /// source, its text not repeated), `what` saying what was being done.
    pub(crate) fn instantiate_by(component: &str, what: &str, error: wasmtime::Error) -> Error {
        Error::instantiate(component, what.to_string(), Some(error.into()))
    }

    /// An [`Error::Connector`] of node `node` (a `kind` connector), with the
    /// client's error as its source when there is one.
    pub(crate) fn connector(
        node: &str,
        kind: &str,
        detail: impl Into<String>,
        source: Option<Cause>,
    ) -> Error {
        Error::Connector {
            node: node.to_string(),
            kind: kind.to_string(),
            detail: detail.into(),
            source,
        }
    }
}

/// The library's result type.
///
/// ```
/// use torvyn_engine::{EngineConfig, WasmEngine, WasmtimeEngine};
///
/// fn compile_all(engine: &WasmtimeEngine, parts: &[(&str, Vec<u8>)]) -> torvyn_engine::Result<usize> {
///     for (name, bytes) in parts {
///         engine.compile(name, bytes)?;
///     }
///     Ok(parts.len())
/// }
///
/// let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
/// assert_eq!(compile_all(&engine, &[("upper", torvyn_fixtures::uppercase_processor())])?, 1);
/// # Ok::<(), torvyn_engine::Error>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;
