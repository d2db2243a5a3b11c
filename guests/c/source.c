// A torvyn source in C: `count` elements (its config's first number,
// default 10) with payloads `c-element <n>`, content type text/plain.
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "data_source.h"

static uint64_t total = 10;
static uint64_t next_sequence = 0;

// Writes "c-element <n>" into out (at least 32 bytes); returns its length.
static size_t format_payload(uint64_t n, char *out) {
    const char prefix[] = "c-element ";
    size_t len = sizeof(prefix) - 1;
    memcpy(out, prefix, len);
    char digits[20];
    size_t count = 0;
    do {
        digits[count++] = (char)('0' + n % 10);
        n /= 10;
    } while (n != 0);
    while (count > 0) {
        out[len++] = digits[--count];
    }
    return len;
}

static bool fail(exports_torvyn_streaming_source_process_error_t *err, const char *message) {
    err->tag = TORVYN_STREAMING_TYPES_PROCESS_ERROR_INTERNAL;
    data_source_string_dup(&err->val.internal, message);
    return false;
}

bool exports_torvyn_streaming_lifecycle_init(data_source_string_t *config,
                                             exports_torvyn_streaming_lifecycle_process_error_t *err) {
    (void)err;
    total = first_number(config->ptr, config->len, 10);
    data_source_string_free(config);
    return true;
}

void exports_torvyn_streaming_lifecycle_teardown(void) {}

bool exports_torvyn_streaming_source_pull(exports_torvyn_streaming_source_option_output_element_t *ret,
                                          exports_torvyn_streaming_source_process_error_t *err) {
    if (next_sequence >= total) {
        ret->is_some = false;
        return true;
    }
    char payload[32];
    size_t len = format_payload(next_sequence, payload);

    torvyn_streaming_buffer_allocator_own_mutable_buffer_t mutable_buffer;
    torvyn_streaming_types_buffer_error_t buffer_error;
    if (!torvyn_streaming_buffer_allocator_allocate(len, &mutable_buffer, &buffer_error)) {
        torvyn_streaming_types_buffer_error_free(&buffer_error);
        return fail(err, "allocation refused");
    }
    torvyn_streaming_types_borrow_mutable_buffer_t buffer =
        torvyn_streaming_types_borrow_mutable_buffer(mutable_buffer);
    data_source_list_u8_t bytes = {(uint8_t *)payload, len};
    if (!torvyn_streaming_types_method_mutable_buffer_append(buffer, &bytes, &buffer_error)) {
        torvyn_streaming_types_buffer_error_free(&buffer_error);
        torvyn_streaming_types_mutable_buffer_drop_own(mutable_buffer);
        return fail(err, "append refused");
    }
    torvyn_streaming_types_own_buffer_t frozen = torvyn_streaming_types_method_mutable_buffer_freeze(buffer);
    torvyn_streaming_types_mutable_buffer_drop_own(mutable_buffer);

    ret->is_some = true;
    ret->val.meta.sequence = next_sequence;
    ret->val.meta.timestamp_ns = 0;
    data_source_string_dup(&ret->val.meta.content_type, "text/plain");
    ret->val.payload = frozen;
    next_sequence++;
    return true;
}

void exports_torvyn_streaming_source_notify_backpressure(
    exports_torvyn_streaming_source_backpressure_signal_t signal) {
    (void)signal; // This source produces on demand; nothing to slow down.
}
