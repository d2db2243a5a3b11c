//! Runs one benchmark case in a loop, for profilers:
//! `cargo run --release -p torvyn-cli --example hot -- "typed process -> drop" 5000000`

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args
        .next()
        .unwrap_or_else(|| "typed process -> drop".into());
    let iterations: u64 = args
        .next()
        .map_or(5_000_000, |n| n.parse().expect("a count"));
    let mut cases = torvyn_cli::bench::call_cases();
    let Some(case) = cases.iter_mut().find(|c| c.name == name) else {
        let names: Vec<_> = cases.iter().map(|c| c.name).collect();
        eprintln!("no case `{name}`; cases: {names:?}");
        std::process::exit(2);
    };
    let start = std::time::Instant::now();
    for _ in 0..iterations {
        (case.run)();
    }
    println!(
        "{name}: {:.1} ns/op",
        start.elapsed().as_nanos() as f64 / iterations as f64
    );
}
