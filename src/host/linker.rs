//! The contract's host interfaces linked into a linker: each interface's
//! generated functions, then the hot ones written by hand over them (the
//! linker is told to allow the shadowing for just that).

use wasmtime::component::{Linker, LinkerInstance};

use super::{buffer_allocator, capability_query, types, HostView};
use crate::imports::HostInterface;

/// The contract's host interfaces, each under its own name.
const INTERFACES: [(&str, HostInterface); 3] = [
    ("torvyn:streaming/types@0.1.0", HostInterface::Types),
    (
        "torvyn:streaming/buffer-allocator@0.1.0",
        HostInterface::BufferAllocator,
    ),
    (
        "torvyn:capabilities/capability-query@0.1.0",
        HostInterface::CapabilityQuery,
    ),
];

/// Links every host interface of the contract into `linker`, under its
/// own name (the linker also matches semver-compatible versions of it).
pub(crate) fn add_to_linker<T: HostView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    for (name, kind) in INTERFACES {
        add_to_linker_instance(&mut linker.instance(name)?, kind)?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// Links the contract's host interface `kind` into `instance`: under its
/// own name, or an alias a component imports it as (another version or
/// package with the same shapes). Its linker must allow shadowing.
pub(crate) fn add_to_linker_instance<T: HostView>(
    instance: &mut LinkerInstance<'_, T>,
    kind: HostInterface,
) -> wasmtime::Result<()> {
    match kind {
        HostInterface::Types => types::add_to_linker_instance(instance),
        HostInterface::BufferAllocator => buffer_allocator::add_to_linker_instance(instance),
        HostInterface::CapabilityQuery => capability_query::add_to_linker_instance(instance),
    }
}
