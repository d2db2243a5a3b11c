//! Which call path serves each export of a component: typed bindings, a
//! dynamic plan checked against the contract, or by name only.

use wasmtime::component::{Component, Linker};

use crate::dynamic::{plan_interface, InterfacePlan};
use crate::error::{Error, Result};
use crate::interfaces::{CallPath, ExportInfo, Interface};
use crate::store::StoreState;

/// Keeps one export per interface on a stream-stage path: the typed one if
/// any, else the first dynamic one; the others become callable by name only.
pub(super) fn choose_paths(exports: impl Iterator<Item = ExportInfo>) -> Vec<ExportInfo> {
    let mut exports: Vec<ExportInfo> = exports.collect();
    let mut chosen: Vec<Interface> = Vec::new();
    for pass in [true, false] {
        for export in exports.iter_mut() {
            let Some(interface) = export.interface else {
                continue;
            };
            if (export.path == CallPath::Typed) != pass {
                continue;
            }
            if chosen.contains(&interface) {
                if !matches!(export.path, CallPath::ByNameOnly(_)) {
                    export.path = CallPath::ByNameOnly(format!(
                        "another export already provides `{interface}`"
                    ));
                }
            } else {
                chosen.push(interface);
            }
        }
    }
    exports
}

/// Plans every dynamic export; a shape the host cannot serve is refused now.
pub(super) fn plan_dynamic(
    name: &str,
    linker: &Linker<StoreState>,
    component: &Component,
    exports: &[ExportInfo],
) -> Result<Vec<InterfacePlan>> {
    let substituted = linker
        .substituted_component_type(component)
        .map_err(|e| Error::instantiate_by(name, "", e))?;
    let engine = component.engine();
    let mut plans = Vec::new();
    for export in exports {
        let (Some(interface), CallPath::Dynamic(_)) = (export.interface, &export.path) else {
            continue;
        };
        let instance_type = substituted
            .exports(engine)
            .find(|(n, _)| *n == export.name)
            .and_then(|(_, item)| match item.ty {
                wasmtime::component::types::ComponentItem::ComponentInstance(i) => Some(i),
                _ => None,
            });
        let Some(instance_type) = instance_type else {
            return Err(Error::ContractMismatch {
                component: name.to_string(),
                detail: format!("export `{}` is not an interface instance", export.name),
            });
        };
        let plan = plan_interface(component, interface, &export.name, &instance_type).map_err(
            |mismatch| Error::ContractMismatch {
                component: name.to_string(),
                detail: format!("export `{}` {mismatch}", export.name),
            },
        )?;
        plans.push(plan);
    }
    Ok(plans)
}
