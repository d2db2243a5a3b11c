"""componentize-py reproduction, control: allocates a mutable buffer and
drops it, passing no bytes to the host. Its linear memory stays flat."""

from wit_world import exports
from wit_world.imports import buffer_allocator, types


class Processor(exports.Processor):
    def process(self, input: types.StreamElement) -> types.ProcessResult:
        with buffer_allocator.allocate(1024) as mutable:
            pass
        return types.ProcessResult_Drop()
