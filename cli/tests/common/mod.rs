//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)]

use std::process::Child;

pub mod cluster;
pub mod nats;

/// Prints `line` and adds it to `target/tmp/<file>`, which `.ci/run`
/// prints after the tests (they run there without their output shown).
pub fn report(file: &str, line: &str) {
    use std::io::Write;
    println!("{line}");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(file);
    let mut report = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("report {}: {e}", path.display()));
    writeln!(report, "{line}").unwrap_or_else(|e| panic!("report {}: {e}", path.display()));
}

/// A child process killed (and reaped) if the test ends before it exits.
pub struct Running(pub Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `--metrics` page served at `address` (status line, headers and the
/// exposition), or `None` while nothing answers there.
pub fn metrics_page(address: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut page = String::new();
    stream.read_to_string(&mut page).ok()?;
    Some(page)
}

/// The value of `series` (a metric with its labels, as the page prints
/// it) on `page`.
pub fn metric(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

/// A free loopback port (for `--metrics` and servers the tests start).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// A flow file's text: stdin → node `name` (component `name` at `path`, in
/// role `interface`) → stdout.
pub fn stdio_flow(name: &str, path: &str, interface: &str) -> String {
    format!(
        r#"[[component]]
name = "{name}"
path = "{path}"
[flow.main.nodes.input]
connector = "stdin"
interface = "torvyn:streaming/source"
[flow.main.nodes.{name}]
component = "{name}"
interface = "{interface}"
[flow.main.nodes.output]
connector = "stdout"
interface = "torvyn:streaming/sink"
[[flow.main.edges]]
from = {{ node = "input" }}
to = {{ node = "{name}" }}
[[flow.main.edges]]
from = {{ node = "{name}" }}
to = {{ node = "output" }}
"#
    )
}
