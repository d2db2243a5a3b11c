//! Handle misuse: every case traps (or is refused) with its own error, and
//! whatever the guest had handed over is released.

use torvyn_engine::{ComponentInvoker, EngineConfig, Error, GuestError};
use torvyn_fixtures::hostile;

use crate::{contained, contained_process, engine_with, trap_in};

#[test]
fn the_same_owned_handle_twice_in_a_flush_list() {
    let engine = engine_with(EngineConfig::builder());
    let error = contained(
        &engine,
        "duplicate-flush",
        &hostile::duplicate_flush_handles(),
        |guest| guest.flush(),
    );
    // The second use of the handle: the first moved it out of the table.
    assert_eq!(trap_in(&error, "flush"), "unknown handle index 2");
}

#[test]
fn the_borrowed_input_returned_as_the_output() {
    let engine = engine_with(EngineConfig::builder());
    let error = contained_process(
        &engine,
        "returns-borrow",
        &hostile::returns_borrowed_payload(),
    );
    assert_eq!(
        trap_in(&error, "process"),
        "borrow handles still remain at the end of the call"
    );
}

#[test]
fn a_mutable_buffer_where_a_buffer_is_expected() {
    let engine = engine_with(EngineConfig::builder());
    let error = contained_process(&engine, "wrong-type", &hostile::mutable_buffer_as_buffer());
    assert_eq!(
        trap_in(&error, "process"),
        "handle index 3 used with the wrong type, expected guest-defined resource but found a \
         different guest-defined resource"
    );
}

#[test]
fn use_after_drop() {
    let engine = engine_with(EngineConfig::builder());
    let error = contained_process(&engine, "use-after-drop", &hostile::use_after_drop());
    // The handle it dropped, used again (its frames are the backtrace).
    assert_eq!(trap_in(&error, "process"), "unknown handle index 4");
    assert!(error.backtrace().is_some());
}

#[test]
fn a_write_at_the_largest_offset_is_out_of_bounds() {
    let engine = engine_with(EngineConfig::builder());
    let error = contained_process(&engine, "write-max", &hostile::write_at_max_offset());
    match error {
        Error::Guest {
            error: GuestError::InvalidInput(message),
            ..
        } => assert_eq!(message, "out-of-bounds"),
        other => panic!("expected the guest to report out-of-bounds, got {other:?}"),
    }
}

#[test]
fn a_read_at_the_largest_offset_reads_nothing() {
    let engine = engine_with(EngineConfig::builder());
    let mut guest = crate::instance(&engine, "read-max", &hostile::read_at_max_offset());
    let out = guest.process(&crate::element(0)).unwrap();
    assert_eq!(out, torvyn_engine::ProcessOutcome::Drop);
    crate::common::assert_nothing_held(&mut guest);
}

#[test]
fn guest_errors_map_by_case_and_only_fatal_retires_the_instance() {
    let engine = engine_with(EngineConfig::builder());
    let cases = [
        (0, GuestError::InvalidInput("refused".into())),
        (1, GuestError::Unavailable("refused".into())),
        (2, GuestError::Internal("refused".into())),
        (3, GuestError::DeadlineExceeded),
        (4, GuestError::Fatal("refused".into())),
    ];
    for (case, expected) in cases {
        let bytes = hostile::reports_error(case);
        let error = contained_process(&engine, "reporter", &bytes);
        match &error {
            Error::Guest { error, site } => {
                assert_eq!(error, &expected);
                assert_eq!(site.function, "process");
            }
            other => panic!("case {case}: expected a guest error, got {other:?}"),
        }
        let fatal = matches!(expected, GuestError::Fatal(_));
        assert_eq!(error.poisons_instance(), fatal, "case {case}");
        // `contained` checked the poisoned instance refuses calls; the others go on.
        if !fatal {
            let mut guest = crate::instance(&engine, "reporter", &bytes);
            for sequence in 0..3 {
                match guest.process(&crate::element(sequence)) {
                    Err(Error::Guest { error, .. }) => assert_eq!(error, expected),
                    other => panic!("case {case}: {other:?}"),
                }
            }
        }
    }
}
