//! Components bundled with the tool (the WAT fixtures of `torvyn-fixtures`),
//! named `bundled:<name>` on the command line.

/// A bundled component: (name, what it is, builder of its bytes).
pub type Bundled = (&'static str, &'static str, fn() -> Vec<u8>);

/// Every bundled component.
pub const BUNDLED: &[Bundled] = &[
    (
        "counting-source",
        "source of `element <n>` payloads; config: count",
        torvyn_fixtures::counting_source,
    ),
    (
        "uppercase",
        "processor emitting an uppercased copy",
        torvyn_fixtures::uppercase_processor,
    ),
    (
        "uppercase-or-trap",
        "uppercase, but traps on a payload starting with `!` (a poison message)",
        torvyn_fixtures::uppercase_trapping_on_bang,
    ),
    (
        "acme-uppercase",
        "the uppercase processor under acme:etl@2.0.0 (dynamic path)",
        || torvyn_fixtures::foreign::uppercase_processor_in("acme:etl@2.0.0"),
    ),
    (
        "dropper",
        "processor dropping every n-th element; config: n",
        torvyn_fixtures::dropping_processor,
    ),
    (
        "recording-sink",
        "sink checking order, pausing every n; config: n",
        torvyn_fixtures::recording_sink,
    ),
    (
        "filter",
        "keeps sequences not divisible by n",
        torvyn_fixtures::modulo_filter,
    ),
    (
        "router",
        "routes to even/odd/audit",
        torvyn_fixtures::parity_router,
    ),
    (
        "aggregator",
        "concatenates every n payloads",
        torvyn_fixtures::concat_aggregator,
    ),
    (
        "counter",
        "counts its inputs, emits the count at flush; exports torvyn:state",
        || torvyn_fixtures::counting_aggregator(0),
    ),
    (
        "window-count",
        "windowed aggregator: count and sum of decimal payloads per key and window",
        torvyn_fixtures::windowed_count_sum,
    ),
    (
        "calculator",
        "not a stream stage: calc.add, calc.shout",
        torvyn_fixtures::calculator,
    ),
    (
        "sleeper",
        "imports WASI; sleeps 10 s in every process call (for deadlines)",
        || torvyn_fixtures::hostile::wasi_sleeper(10_000),
    ),
    (
        "wasi-printer",
        "imports WASI; writes each payload to its stdout, drops it",
        torvyn_fixtures::wasi_printer,
    ),
    (
        "wasi-probe",
        "imports WASI; probe.env-count, probe.preopen-count",
        torvyn_fixtures::wasi_probe,
    ),
];

/// The bytes of bundled component `name`, if there is one.
pub(crate) fn bytes_of(name: &str) -> Option<Vec<u8>> {
    BUNDLED
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, build)| build())
}

/// The names of the bundled components.
pub(crate) fn names() -> Vec<&'static str> {
    BUNDLED.iter().map(|(n, _, _)| *n).collect()
}
