"""A torvyn processor in Python: appends " +py" to every payload."""

from wit_world import exports
from wit_world.imports import buffer_allocator, types


class Processor(exports.Processor):
    def process(self, input: types.StreamElement) -> types.ProcessResult:
        data = input.payload.read_all() + b" +py"
        with buffer_allocator.allocate(len(data)) as mutable:
            mutable.append(data)
            frozen = mutable.freeze()
        return types.ProcessResult_Emit(
            types.OutputElement(meta=input.meta, payload=frozen)
        )
