//! The pooling allocator's check against the kernel's map limit.

use crate::config::InstanceDensity;
use crate::error::{Error, Result};
use crate::stacks;

/// Memory mappings one pooled instance may cost the process at most: its
/// memory slots and fiber stack, each a mapping plus a guard mapping.
const MAPS_PER_POOLED_INSTANCE: u64 = 4;

/// Refuses a pool the kernel's map limit could not hold, naming the limit,
/// what it allows and how to raise it (rather than a bare mapping failure
/// later).
pub(super) fn check_map_budget(max_instances: u32, density: InstanceDensity) -> Result<()> {
    let Some(limit) = stacks::max_map_count() else {
        return Ok(());
    };
    let per_instance = match density {
        InstanceDensity::Guarded => MAPS_PER_POOLED_INSTANCE,
        InstanceDensity::Dense => MAPS_PER_POOLED_INSTANCE / 2,
    };
    // Leave room for the process's own mappings (libraries, heaps, threads).
    let available = limit.saturating_sub(limit / 8);
    let needed = u64::from(max_instances) * per_instance;
    if needed > available {
        return Err(Error::Config(format!(
            "a pool of {max_instances} instances needs up to {needed} memory mappings, but the \
             kernel allows {limit} per process (vm.max_map_count), enough for about {} pooled \
             instances; raise it (e.g. `sysctl -w vm.max_map_count={}`), pool fewer instances, \
             or use on-demand allocation with InstanceDensity::Dense",
            available / per_instance,
            (needed + limit / 8).next_power_of_two()
        )));
    }
    Ok(())
}
