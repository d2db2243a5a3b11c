//! The typed exports of an instance: export indices looked up once per
//! component, bound once per instance; and the dynamic exports beside them.

use wasmtime::component::InstancePre;
use wasmtime::Store;

use crate::bindings::{
    content_filter, content_router, data_sink, data_source, managed_transform, stateful_aggregator,
    stream_aggregator, transform, windowed_aggregation,
};
use crate::dynamic::DynamicExport;
use crate::error::{Error, Result};
use crate::interfaces::{CallPath, ExportInfo, Interface};
use crate::store::StoreState;

use content_filter::exports::torvyn::filtering::filter;
use content_router::exports::torvyn::filtering::router;
use data_sink::exports::torvyn::streaming::sink;
use data_source::exports::torvyn::streaming::source;
use managed_transform::exports::torvyn::streaming::lifecycle;
use stateful_aggregator::exports::torvyn::state::snapshot;
use stream_aggregator::exports::torvyn::aggregation::aggregator;
use transform::exports::torvyn::streaming::processor;
use windowed_aggregation::exports::torvyn::windowing::windowed_aggregator;

/// Declares the typed export indices (looked up once per component) and the
/// loaded typed exports (bound once per instance), one field per interface.
macro_rules! typed_exports {
    ($($field:ident: $module:ident = $interface:expr,)*) => {
        /// Export indices resolved at pre-instantiation, per interface.
        #[derive(Clone, Default)]
        pub(crate) struct TypedIndices {
            $($field: Option<$module::GuestIndices>,)*
        }

        /// Typed exports bound to one instance.
        #[derive(Default)]
        pub(crate) struct TypedExports {
            $(pub(crate) $field: Option<$module::Guest>,)*
        }

        impl TypedIndices {
            /// Looks up the typed exports of every interface that takes the typed path.
            pub(crate) fn new(
                name: &str,
                pre: &InstancePre<StoreState>,
                exports: &[ExportInfo],
            ) -> Result<TypedIndices> {
                let typed = |interface: Interface| {
                    exports
                        .iter()
                        .any(|e| e.interface == Some(interface) && e.path == CallPath::Typed)
                };
                let mismatch = |e: wasmtime::Error| Error::ContractMismatch {
                    component: name.to_string(),
                    detail: format!("{e:#}"),
                };
                Ok(TypedIndices {
                    $($field: if typed($interface) {
                        Some($module::GuestIndices::new(pre).map_err(mismatch)?)
                    } else {
                        None
                    },)*
                })
            }

            /// Binds the typed exports to an instance; this type-checks each
            /// function against the contract.
            pub(crate) fn load(
                &self,
                store: &mut Store<StoreState>,
                instance: &wasmtime::component::Instance,
            ) -> wasmtime::Result<TypedExports> {
                Ok(TypedExports {
                    $($field: match &self.$field {
                        Some(indices) => Some(indices.load(&mut *store, instance)?),
                        None => None,
                    },)*
                })
            }
        }
    };
}

typed_exports! {
    lifecycle: lifecycle = Interface::Lifecycle,
    processor: processor = Interface::Processor,
    source: source = Interface::Source,
    sink: sink = Interface::Sink,
    filter: filter = Interface::Filter,
    router: router = Interface::Router,
    aggregator: aggregator = Interface::Aggregator,
    windowed: windowed_aggregator = Interface::Windowed,
    snapshot: snapshot = Interface::Snapshot,
}

/// The callable exports of one instance: typed where the bindings apply,
/// dynamic where they do not.
pub(crate) struct Exports {
    pub(crate) typed: TypedExports,
    pub(crate) dynamic: Vec<DynamicExport>,
}

impl Exports {
    pub(crate) fn dynamic(&mut self, interface: Interface) -> Option<&mut DynamicExport> {
        self.dynamic.iter_mut().find(|d| d.interface == interface)
    }

    /// Whether `interface` can be called, on either path.
    pub(crate) fn has(&self, interface: Interface) -> bool {
        let typed = &self.typed;
        let is_typed = match interface {
            Interface::Lifecycle => typed.lifecycle.is_some(),
            Interface::Processor => typed.processor.is_some(),
            Interface::Source => typed.source.is_some(),
            Interface::Sink => typed.sink.is_some(),
            Interface::Filter => typed.filter.is_some(),
            Interface::Router => typed.router.is_some(),
            Interface::Aggregator => typed.aggregator.is_some(),
            Interface::Windowed => typed.windowed.is_some(),
            Interface::Snapshot => typed.snapshot.is_some(),
        };
        is_typed || self.dynamic.iter().any(|d| d.interface == interface)
    }
}
