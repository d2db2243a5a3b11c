// Shared by the C guests: reading their `init` config.
#ifndef TORVYN_GUEST_CONFIG_H
#define TORVYN_GUEST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// The first run of decimal digits in `text`, or `fallback` if there is none.
static inline uint64_t first_number(const uint8_t *text, size_t len, uint64_t fallback) {
    uint64_t value = 0;
    bool seen = false;
    for (size_t i = 0; i < len; i++) {
        if (text[i] >= '0' && text[i] <= '9') {
            value = value * 10 + (uint64_t)(text[i] - '0');
            seen = true;
        } else if (seen) {
            break;
        }
    }
    return seen ? value : fallback;
}

#endif
