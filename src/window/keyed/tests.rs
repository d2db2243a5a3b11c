//! `KeyedWindows` against references computed another way.

use super::super::SourceWatermark;
use super::*;

/// Count and sum of the elements' values, as two little-endian `i64`s.
struct CountSum {
    value: i64,
}

fn decode(state: &[u8]) -> (i64, i64) {
    let count = i64::from_le_bytes(state[..8].try_into().unwrap());
    let sum = i64::from_le_bytes(state[8..].try_into().unwrap());
    (count, sum)
}

fn encode((count, sum): (i64, i64)) -> Vec<u8> {
    [count.to_le_bytes(), sum.to_le_bytes()].concat()
}

impl WindowFold for CountSum {
    type Error = String;

    fn fold(
        &mut self,
        _key: &str,
        _window: Window,
        state: Option<&[u8]>,
    ) -> Result<Vec<u8>, String> {
        let (count, sum) = state.map_or((0, 0), decode);
        Ok(encode((count + 1, sum + self.value)))
    }

    fn merge(
        &mut self,
        _key: &str,
        _window: Window,
        earlier: &[u8],
        later: &[u8],
    ) -> Result<Vec<u8>, String> {
        let (a, b) = (decode(earlier), decode(later));
        Ok(encode((a.0 + b.0, a.1 + b.1)))
    }
}

/// A fold whose call number `fail_at` fails.
struct FailingAt {
    calls: usize,
    fail_at: usize,
}

impl WindowFold for FailingAt {
    type Error = String;

    fn fold(&mut self, _: &str, _: Window, state: Option<&[u8]>) -> Result<Vec<u8>, String> {
        self.calls += 1;
        if self.calls == self.fail_at {
            return Err("trap".into());
        }
        Ok(vec![state.map_or(0, |s| s[0]) + 1])
    }

    fn merge(&mut self, _: &str, _: Window, a: &[u8], b: &[u8]) -> Result<Vec<u8>, String> {
        Ok(vec![a[0] + b[0]])
    }
}

/// xorshift64*: the same events on every run, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// `(key, event time, value)` in arrival order: times advance ~1 ms an
/// element, each out of order by up to `disorder_ms`, and `very_late`
/// of them (in a thousand) `disorder_ms` to five times that later.
fn events(n: usize, keys: u64, disorder_ms: u64, very_late: u64) -> Vec<(String, i64, i64)> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|i| {
            let key = format!("key-{}", rng.below(keys));
            let mut behind = rng.below(disorder_ms + 1);
            if rng.below(1_000) < very_late {
                behind += disorder_ms + rng.below(4 * disorder_ms);
            }
            let at = 1_000_000 + i as i64 - behind as i64;
            (key, at, rng.below(100) as i64)
        })
        .collect()
}

type Results = BTreeMap<(String, Window), (i64, i64)>;

/// Runs `events` through `KeyedWindows` with a bounded-disorder
/// watermark advanced after each element; every closed window's
/// result (each must close once) and the late events' indexes.
fn run(spec: WindowSpec, disorder_ms: u64, events: &[(String, i64, i64)]) -> (Results, Vec<usize>) {
    let mut windows = KeyedWindows::new(spec);
    let mut watermark = SourceWatermark::new(disorder_ms, None, 0);
    let mut results = Results::new();
    let mut late = Vec::new();
    let record = |closed: Vec<ClosedWindow>, results: &mut Results| {
        for closed in closed {
            let result = decode(closed.state());
            let again = results.insert((closed.key, closed.window), result);
            assert!(again.is_none(), "a window closed twice");
        }
    };
    for (index, (key, at, value)) in events.iter().enumerate() {
        let placed = windows
            .add(key, *at, &mut CountSum { value: *value })
            .unwrap();
        if placed.is_late() {
            late.push(index);
        }
        watermark.observe(*at, 0);
        let closed = windows.advance(watermark.watermark().unwrap());
        record(closed, &mut results);
    }
    record(windows.close_all(), &mut results);
    assert!(windows.is_empty());
    (results, late)
}

/// What the windows must hold, computed another way: each event's
/// windows from their definition (every start `k * slide` with the
/// event inside), each kept unless the watermark before the event (the
/// latest time so far less the disorder, less 1) had reached the
/// window's last time plus the lateness.
fn reference(
    size: i64,
    slide: i64,
    lateness: i64,
    disorder_ms: i64,
    events: &[(String, i64, i64)],
) -> (Results, Vec<usize>) {
    let mut results = Results::new();
    let mut late = Vec::new();
    let mut latest: Option<i64> = None;
    for (index, (key, at, value)) in events.iter().enumerate() {
        let watermark = latest.map(|l| l - disorder_ms - 1);
        let mut kept = 0;
        let first = (at - size).div_euclid(slide) * slide;
        for start in (first..=*at).step_by(slide as usize) {
            if !(start <= *at && *at < start + size) {
                continue;
            }
            if watermark.is_some_and(|w| start + size - 1 + lateness <= w) {
                continue;
            }
            kept += 1;
            let entry = results
                .entry((key.clone(), Window::new(start, start + size).unwrap()))
                .or_default();
            entry.0 += 1;
            entry.1 += value;
        }
        if kept == 0 {
            late.push(index);
        }
        latest = Some(latest.map_or(*at, |l| l.max(*at)));
    }
    (results, late)
}

#[test]
fn tumbling_and_sliding_results_equal_a_reference_with_late_events() {
    // 20,000 events over 100 keys, 2 s out of order, 2 in a thousand
    // later than that.
    let events = events(20_000, 100, 2_000, 2);
    for (size, slide) in [(1_000, 1_000), (5_000, 1_000), (700, 300)] {
        let spec = WindowSpec::sliding(size, slide)
            .unwrap()
            .with_allowed_lateness(1_000);
        let (results, late) = run(spec, 2_000, &events);
        let (want, want_late) = reference(size as i64, slide as i64, 1_000, 2_000, &events);
        assert!(
            !want_late.is_empty(),
            "{size}/{slide}: the input has late events"
        );
        assert_eq!(late, want_late, "late events, {size}/{slide}");
        assert_eq!(results.len(), want.len(), "windows, {size}/{slide}");
        assert_eq!(results, want, "results, {size}/{slide}");
    }
}

/// Sessions of each key from its sorted times: a new session where two
/// consecutive times are more than the gap apart.
fn session_reference(gap: i64, events: &[(String, i64, i64)]) -> Results {
    let mut by_key: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for (key, at, value) in events {
        by_key.entry(key).or_default().push((*at, *value));
    }
    let mut results = Results::new();
    for (key, mut times) in by_key {
        times.sort();
        let mut session: Option<(i64, i64, i64, i64)> = None; // start, last, count, sum
        for (at, value) in times {
            session = Some(match session {
                Some((start, last, count, sum)) if at - last <= gap => {
                    (start, at, count + 1, sum + value)
                }
                Some((start, last, count, sum)) => {
                    let window = Window::new(start, last + gap).unwrap();
                    results.insert((key.to_owned(), window), (count, sum));
                    (at, at, 1, value)
                }
                None => (at, at, 1, value),
            });
        }
        if let Some((start, last, count, sum)) = session {
            results.insert(
                (key.to_owned(), Window::new(start, last + gap).unwrap()),
                (count, sum),
            );
        }
    }
    results
}

#[test]
fn sessions_equal_a_reference_computed_from_sorted_times() {
    // Sparse keys so that sessions end and begin: 5,000 events over 400
    // keys (a key every ~400 ms), 300 ms out of order, no element
    // behind the watermark (none is late, so arrival order cannot
    // change the sessions).
    let events = events(5_000, 400, 300, 0);
    for gap in [50, 400, 2_000] {
        let spec = WindowSpec::session(gap as u64).unwrap();
        let (results, late) = run(spec, 300, &events);
        assert!(late.is_empty());
        let want = session_reference(gap, &events);
        assert!(want.len() > 400, "gap {gap}: sessions end and begin");
        assert_eq!(results, want, "gap {gap}");
    }
}

#[test]
fn a_failed_fold_changes_no_state() {
    let mut windows = KeyedWindows::new(WindowSpec::sliding(5, 1).unwrap());
    let mut fold = FailingAt {
        calls: 0,
        fail_at: 3,
    };
    assert!(windows.add("k", 10, &mut fold).is_err());
    assert!(windows.is_empty() && windows.take_changes().is_empty());
    assert_eq!(windows.add("k", 10, &mut fold).unwrap().windows(), 5);

    // A session whose merge then fold fails keeps both sessions.
    let mut sessions = KeyedWindows::new(WindowSpec::session(10).unwrap());
    let mut fold = FailingAt {
        calls: 0,
        fail_at: 3,
    };
    sessions.add("k", 0, &mut fold).unwrap();
    sessions.add("k", 15, &mut fold).unwrap();
    sessions.take_changes();
    assert!(sessions.add("k", 8, &mut fold).is_err());
    assert_eq!(sessions.len(), 2);
    assert!(sessions.take_changes().is_empty());
}

#[test]
fn changes_name_each_state_once_and_restore_is_not_a_change() {
    let mut windows = KeyedWindows::new(WindowSpec::tumbling(100).unwrap());
    let mut fold = CountSum { value: 1 };
    windows.add("a", 10, &mut fold).unwrap();
    windows.add("a", 20, &mut fold).unwrap();
    windows.add("b", 150, &mut fold).unwrap();
    let changes = windows.take_changes();
    assert_eq!(changes.len(), 2, "{changes:?}");
    let first = Window::new(0, 100).unwrap();
    assert!(changes.contains(&StateChange::Put {
        key: "a".into(),
        window: first,
        state: encode((2, 2)),
    }));
    let closed = windows.advance(99);
    assert_eq!(closed.len(), 1);
    assert_eq!(
        windows.take_changes(),
        [StateChange::Removed {
            key: "a".into(),
            window: first,
        }]
    );
    // Another worker takes the partition over from the stored states.
    let mut moved = KeyedWindows::new(WindowSpec::tumbling(100).unwrap());
    moved.restore("b", Window::new(100, 200).unwrap(), encode((1, 1)));
    assert!(moved.take_changes().is_empty());
    moved.add("b", 160, &mut fold).unwrap();
    let closed = moved.close_all();
    assert_eq!(decode(closed[0].state()), (2, 2));
    assert_eq!(closed[0].result_id("n"), "n/100-200/b");
}

#[test]
fn a_window_closes_when_the_watermark_reaches_its_last_time_plus_lateness() {
    let spec = WindowSpec::tumbling(1_000)
        .unwrap()
        .with_allowed_lateness(100);
    let mut windows = KeyedWindows::new(spec);
    let mut fold = CountSum { value: 1 };
    windows.add("a", 999, &mut fold).unwrap();
    assert!(windows.advance(1_098).is_empty(), "one ms before");
    assert_eq!(windows.add("a", 0, &mut fold).unwrap().windows(), 1);
    let closed = windows.advance(1_099);
    assert_eq!(closed.len(), 1, "at 999 + 100");
    assert_eq!(decode(closed[0].state()), (2, 2));
    assert!(windows.add("a", 999, &mut fold).unwrap().is_late());
    assert!(!windows.add("a", 1_000, &mut fold).unwrap().is_late());
}

#[test]
fn a_lower_watermark_is_ignored() {
    let mut windows = KeyedWindows::new(WindowSpec::tumbling(100).unwrap());
    let mut fold = CountSum { value: 1 };
    assert!(windows.advance(500).is_empty());
    assert!(windows.advance(10).is_empty());
    assert_eq!(windows.watermark(), Some(500));
    assert!(windows.add("a", 450, &mut fold).unwrap().is_late());
    assert_eq!(windows.add("a", 501, &mut fold).unwrap().windows(), 1);
}
