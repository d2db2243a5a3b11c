//! The demo pipeline: a counting source, an uppercasing processor and a
//! recording sink, all real WebAssembly components (bundled as WAT in
//! `torvyn-fixtures`), run through the engine on the typed bindings.
//!
//! `cargo run --release --example demo [-- <elements to print> [<elements to time>]]`

use torvyn_engine::{EngineConfig, Pipeline, WasmEngine, WasmtimeEngine};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>());
    let shown = args.next().transpose()?.unwrap_or(10);
    let timed = args.next().transpose()?.unwrap_or(200_000);

    let engine = WasmtimeEngine::new(EngineConfig::builder().build()?)?;
    let source = engine.compile("counting-source", &torvyn_fixtures::counting_source())?;
    let upper = engine.compile("uppercase", &torvyn_fixtures::uppercase_processor())?;
    let sink = engine.compile("recording-sink", &torvyn_fixtures::recording_sink())?;
    let pipeline = |count: u64| -> Result<_, torvyn_engine::Error> {
        let mut pipeline = Pipeline::new(
            engine.instantiate(&source)?,
            vec![engine.instantiate(&upper)?],
            engine.instantiate(&sink)?,
        )?;
        // Each stage reads the first number of its config: the source's
        // element count, the sink's pause interval.
        pipeline.init(&count.to_string())?;
        Ok(pipeline)
    };

    println!("source → uppercase → sink, {shown} elements:");
    let mut small = pipeline(shown)?;
    let report = small.run(|element| {
        println!(
            "  #{:<4} {:<12} {:?}",
            element.meta.sequence,
            element.meta.content_type,
            String::from_utf8_lossy(&element.payload)
        )
    })?;
    small.teardown()?;
    let (_, _, sink) = small.stages();
    println!(
        "sink saw {} elements, {} bytes; guest reported: {:?}",
        report.delivered,
        report.bytes_delivered,
        sink.host().capability_queries()
    );

    let mut large = pipeline(timed)?;
    let report = large.run(|_| {})?;
    large.teardown()?;
    println!(
        "throughput: {:.0} elements/s ({} elements through 3 components in {:.1} ms, {} payload bytes)",
        report.elements_per_second(),
        report.delivered,
        report.elapsed.as_secs_f64() * 1e3,
        report.bytes_delivered
    );
    Ok(())
}
