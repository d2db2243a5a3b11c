//! Guest-sized strings the host would keep: content types, capability
//! names, error messages. Each is capped or charged to the buffer budget.

use torvyn_engine::host::{
    MAX_CAPABILITY_NAME_BYTES, MAX_CONTENT_TYPE_BYTES, MAX_GUEST_MESSAGE_BYTES,
};
use torvyn_engine::{ComponentInvoker, EngineConfig, Error, GuestError, ProcessOutcome};
use torvyn_fixtures::{foreign, hostile};

use crate::common::alloc::held_bytes;
use crate::{contained, contained_process, element, engine_with, instance, trap_in};

const MIB: u32 = 1 << 20;

#[test]
fn a_one_mib_content_type_is_refused_and_not_kept() {
    let engine = engine_with(EngineConfig::builder());
    for frozen_first in [false, true] {
        let before = held_bytes();
        let error = contained_process(
            &engine,
            "content-type-hog",
            &hostile::content_type_hog(MIB, frozen_first),
        );
        let message = trap_in(&error, "process");
        assert!(
            message.contains("content type of 1048576 bytes")
                && message.contains(&format!("{MAX_CONTENT_TYPE_BYTES}-byte limit")),
            "{message}"
        );
        // The host lifted the string for the call, and let go of it.
        let kept = held_bytes() - before;
        assert!(kept < 256 << 10, "host keeps {kept} bytes after the call");
    }
}

#[test]
fn content_types_are_charged_to_the_buffer_budget() {
    let budget = 64 << 10;
    let engine = engine_with(EngineConfig::builder().buffer_budget_bytes(budget));
    for frozen_first in [false, true] {
        let mut guest = instance(
            &engine,
            "content-type-hog",
            &hostile::content_type_hog(200, frozen_first),
        );
        let before = held_bytes();
        let mut accepted = 0u64;
        let error = loop {
            match guest.process(&element(accepted)) {
                Ok(ProcessOutcome::Drop) => accepted += 1,
                Ok(other) => panic!("unexpected {other:?}"),
                Err(error) => break error,
            }
            assert!(accepted < 10_000, "the budget never stopped the guest");
        };
        // Each element keeps a 16-byte buffer (+64 overhead) with a 200-byte type.
        assert_eq!(
            accepted,
            budget / (16 + 64 + 200),
            "frozen first: {frozen_first}"
        );
        assert!(
            matches!(&error, Error::Guest { error: GuestError::Internal(m), .. } if m.contains("budget")),
            "{error}"
        );
        assert!(guest.host().budget_in_use() <= budget);
        let kept = held_bytes() - before;
        assert!(
            kept < 4 * budget as i64,
            "host keeps {kept} bytes for a {budget}-byte budget"
        );
        drop(guest);
        assert_eq!(engine.totals().guest_buffer_bytes(), 0);
    }
}

#[test]
fn capability_names_are_cut_in_the_query_log() {
    let engine = engine_with(EngineConfig::builder());
    let mut guest = instance(&engine, "capability-hog", &hostile::capability_hog(MIB, 50));
    let before = held_bytes();
    for sequence in 0..30 {
        assert_eq!(
            guest.process(&element(sequence)).unwrap(),
            ProcessOutcome::Drop
        );
    }
    let kept = held_bytes() - before;
    // 1,500 names of 1 MiB asked; the log keeps the first 1,024, cut.
    assert!(
        kept < 1024 * 1024,
        "host keeps {kept} bytes of capability names"
    );
    let queries = guest.host().capability_queries();
    assert_eq!(queries.len(), 1024);
    assert!(queries
        .iter()
        .all(|name| name.len() <= MAX_CAPABILITY_NAME_BYTES + '…'.len_utf8()));
}

#[test]
fn long_guest_error_messages_are_cut_with_a_marker() {
    let engine = engine_with(EngineConfig::builder());
    let error = contained_process(&engine, "long-error", &hostile::long_error(MIB));
    match error {
        Error::Guest {
            error: GuestError::Internal(message),
            ..
        } => {
            assert!(
                message.len() < MAX_GUEST_MESSAGE_BYTES + 64,
                "{}",
                message.len()
            );
            assert!(message.starts_with("eeee"));
            let cut = MIB as usize - MAX_GUEST_MESSAGE_BYTES;
            assert!(
                message.ends_with(&format!("… [cut: {cut} more bytes]")),
                "{}",
                &message[message.len() - 40..]
            );
        }
        other => panic!("expected the guest's error, got {other:?}"),
    }
}

#[test]
fn an_output_content_type_over_the_cap_is_refused_on_both_paths() {
    let engine = engine_with(EngineConfig::builder());
    for package in ["torvyn:streaming@0.1.0", "torvyn:streaming@0.2.0"] {
        let bytes = foreign::long_output_content_type_in(package, 300);
        let error = contained(&engine, package, &bytes, |guest| guest.process(&element(0)));
        let message = trap_in(&error, "process");
        assert!(
            message.contains("content type is 300 bytes"),
            "{package}: {message}"
        );
        // Within the cap the same guest is fine.
        let mut fine = instance(
            &engine,
            package,
            &foreign::long_output_content_type_in(package, 256),
        );
        match fine.process(&element(0)).unwrap() {
            ProcessOutcome::Emit(out) => assert_eq!(out.meta.content_type, "x".repeat(256)),
            other => panic!("{package}: {other:?}"),
        }
    }
}
