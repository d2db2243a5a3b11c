"""componentize-py reproduction: the control's buffer, with 1 KiB appended
(a `list<u8>` argument of an imported function). componentize-py 0.25.1
keeps the copy of the bytes it lowers for the call: linear memory grows by
about 1 KiB a call, and the host holds nothing."""

from wit_world import exports
from wit_world.imports import buffer_allocator, types

KIB = b"x" * 1024


class Processor(exports.Processor):
    def process(self, input: types.StreamElement) -> types.ProcessResult:
        with buffer_allocator.allocate(len(KIB)) as mutable:
            mutable.append(KIB)
        return types.ProcessResult_Drop()
