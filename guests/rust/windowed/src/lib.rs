//! A torvyn windowed aggregator in Rust: the count and the sum of each
//! key's values per window, a value being the first decimal number of an
//! element's payload.
//!
//! The host keeps every window's state and hands it in: `fold` gets the
//! state before (none for a new window) and returns the state after, so
//! this component keeps nothing between calls. The state is the count and
//! the sum as two little-endian `u64`s; `emit` gives `KEY START COUNT SUM`
//! as text, exactly as the WAT fixture `windowed_count_sum` does.

wit_bindgen::generate!({
    path: ["../../../wit/streaming.wit", "../../../wit/windowing.wit"],
    world: "torvyn:windowing/windowed-aggregation",
    generate_all,
});

use exports::torvyn::streaming::lifecycle;
use exports::torvyn::windowing::windowed_aggregator::{Guest, Window};
use torvyn::streaming::buffer_allocator;
use torvyn::streaming::types::{ElementMeta, OutputElement, ProcessError, StreamElement};

/// A window's count and sum.
#[derive(Default)]
struct CountSum {
    count: u64,
    sum: u64,
}

impl CountSum {
    fn read(state: &[u8]) -> Result<CountSum, ProcessError> {
        let (count, sum) = state
            .split_first_chunk::<8>()
            .and_then(|(count, rest)| Some((count, rest.first_chunk::<8>()?)))
            .ok_or_else(|| {
                ProcessError::InvalidInput(format!("a state of {} bytes, not 16", state.len()))
            })?;
        Ok(CountSum {
            count: u64::from_le_bytes(*count),
            sum: u64::from_le_bytes(*sum),
        })
    }

    fn bytes(&self) -> Vec<u8> {
        [self.count.to_le_bytes(), self.sum.to_le_bytes()].concat()
    }
}

/// The first run of decimal digits in `payload` (0 if none).
fn value_of(payload: &[u8]) -> u64 {
    payload
        .iter()
        .skip_while(|b| !b.is_ascii_digit())
        .take_while(|b| b.is_ascii_digit())
        .fold(0u64, |value, digit| {
            value.wrapping_mul(10).wrapping_add(u64::from(digit - b'0'))
        })
}

struct CountSumPerWindow;

impl Guest for CountSumPerWindow {
    fn fold(state: Option<Vec<u8>>, element: StreamElement) -> Result<Vec<u8>, ProcessError> {
        let mut window = match state {
            Some(state) => CountSum::read(&state)?,
            None => CountSum::default(),
        };
        window.count += 1;
        window.sum = window
            .sum
            .wrapping_add(value_of(&element.payload.read_all()));
        Ok(window.bytes())
    }

    fn merge(earlier: Vec<u8>, later: Vec<u8>) -> Result<Vec<u8>, ProcessError> {
        let (a, b) = (CountSum::read(&earlier)?, CountSum::read(&later)?);
        Ok(CountSum {
            count: a.count + b.count,
            sum: a.sum.wrapping_add(b.sum),
        }
        .bytes())
    }

    fn emit(window: Window, state: Vec<u8>) -> Result<OutputElement, ProcessError> {
        let totals = CountSum::read(&state)?;
        let text = format!(
            "{} {} {} {}",
            window.key, window.start_ms, totals.count, totals.sum
        );
        let fail = |e| ProcessError::Internal(format!("{e:?}"));
        let buffer = buffer_allocator::allocate(text.len() as u64).map_err(fail)?;
        buffer.append(text.as_bytes()).map_err(fail)?;
        Ok(OutputElement {
            meta: ElementMeta {
                sequence: 0,
                timestamp_ns: 0,
                content_type: "text/plain".into(),
            },
            payload: buffer.freeze(),
        })
    }
}

impl lifecycle::Guest for CountSumPerWindow {
    fn init(_config: String) -> Result<(), ProcessError> {
        Ok(())
    }

    fn teardown() {}
}

export!(CountSumPerWindow);
