// A torvyn sink in C: reads every payload, checks that sequence numbers
// arrive in order (invalid-input otherwise) and answers `pause` every N
// elements (N: its config's first number, default 100).
#include <stdlib.h>

#include "config.h"
#include "data_sink.h"

static uint64_t pause_every = 100;
static uint64_t received = 0;
static uint64_t expected_sequence = 0;

bool exports_torvyn_streaming_lifecycle_init(data_sink_string_t *config,
                                             exports_torvyn_streaming_lifecycle_process_error_t *err) {
    (void)err;
    pause_every = first_number(config->ptr, config->len, 100);
    if (pause_every == 0) {
        pause_every = 100; // 0 would mean "never"; keep the default.
    }
    data_sink_string_free(config);
    return true;
}

void exports_torvyn_streaming_lifecycle_teardown(void) {}

bool exports_torvyn_streaming_sink_push(exports_torvyn_streaming_sink_stream_element_t *element,
                                        exports_torvyn_streaming_sink_backpressure_signal_t *ret,
                                        exports_torvyn_streaming_sink_process_error_t *err) {
    data_sink_list_u8_t payload;
    torvyn_streaming_types_method_buffer_read_all(element->payload, &payload);
    data_sink_list_u8_free(&payload);
    uint64_t sequence = element->meta.sequence;
    // Borrowed handles must be dropped before returning.
    torvyn_streaming_types_buffer_drop_borrow(element->payload);
    torvyn_streaming_types_flow_context_drop_borrow(element->context);
    exports_torvyn_streaming_sink_stream_element_free(element);

    if (sequence != expected_sequence) {
        err->tag = TORVYN_STREAMING_TYPES_PROCESS_ERROR_INVALID_INPUT;
        data_sink_string_dup(&err->val.invalid_input, "sequence out of order");
        return false;
    }
    expected_sequence++;
    received++;
    *ret = received % pause_every == 0 ? TORVYN_STREAMING_TYPES_BACKPRESSURE_SIGNAL_PAUSE
                                       : TORVYN_STREAMING_TYPES_BACKPRESSURE_SIGNAL_READY;
    return true;
}

bool exports_torvyn_streaming_sink_complete(exports_torvyn_streaming_sink_process_error_t *err) {
    (void)err;
    return true;
}
