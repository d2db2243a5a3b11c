//! The caps on what a guest can make the host hold or do: named here so
//! each refusal can say which limit it hit.

/// Budget charged per buffer on top of its bytes, so a guest cannot exhaust
/// host memory with endless empty buffers.
pub const BUFFER_OVERHEAD_BYTES: u64 = 64;

/// Longest content type the host keeps (`set-content-type`, an output
/// element's `content-type`): longer ones are a guest fault. MIME types are
/// far shorter; the cap keeps guest strings out of host memory.
pub const MAX_CONTENT_TYPE_BYTES: usize = 256;

/// Longest capability name kept in the query log
/// ([`HostState::capability_queries`](super::HostState::capability_queries)); longer names are cut. No granted
/// capability is that long, so the answer is unaffected.
pub const MAX_CAPABILITY_NAME_BYTES: usize = 256;

/// Longest guest error message kept in an [`Error`](crate::Error): longer
/// ones are cut, with a marker saying how much was cut.
pub const MAX_GUEST_MESSAGE_BYTES: usize = 64 << 10;

/// Bytes the host copies for a guest (`read`, `read-all`, `write`,
/// `append`, a clone's first write) per unit of fuel charged to the call:
/// a guest cannot make the host work for free. At ~16 bytes per wasm
/// instruction's worth of time, the host's copying and the guest's own
/// code share one allowance per call, each up to the fuel limit.
pub const HOST_COPY_BYTES_PER_FUEL: u64 = 16;

/// `text` cut to at most `max` bytes at a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A guest's error message, cut to [`MAX_GUEST_MESSAGE_BYTES`] with a
/// marker naming how many bytes were cut.
pub(crate) fn cut_guest_message(message: String) -> String {
    if message.len() <= MAX_GUEST_MESSAGE_BYTES {
        return message;
    }
    let kept = cut(&message, MAX_GUEST_MESSAGE_BYTES);
    format!("{kept}… [cut: {} more bytes]", message.len() - kept.len())
}
