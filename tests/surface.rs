//! The public surface, read as text: every type and trait declared `pub`
//! in `src/` carries a runnable example in its own documentation (a fenced
//! block, which rustdoc compiles and runs as a doc test), so an embedder
//! finds one on every page of the API reference. Items in private modules
//! are held to it too: they are one `pub use` away from the surface.

use std::path::{Path, PathBuf};

#[path = "common/source_files.rs"]
mod source_files;

use source_files::{root, rust_files};

/// `pub struct|enum|trait|type NAME` declarations whose doc comment (the
/// `///` lines above it, attributes between) has no fenced example, as
/// `file:line NAME`.
fn without_example(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut missing = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        let declared = ["pub struct ", "pub enum ", "pub trait ", "pub type "]
            .iter()
            .find_map(|kind| line.trim_start().strip_prefix(kind));
        let Some(rest) = declared else { continue };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let mut above = at;
        let mut has_example = false;
        while above > 0 {
            let previous = lines[above - 1].trim_start();
            if previous.starts_with("#[") {
            } else if previous.starts_with("///") {
                has_example |= previous.contains("```");
            } else {
                break;
            }
            above -= 1;
        }
        if !has_example {
            missing.push(format!("{}:{} {name}", file.display(), at + 1));
        }
    }
    missing
}

#[test]
fn every_public_type_and_trait_has_an_example() {
    let files: Vec<PathBuf> = rust_files(Path::new("src"))
        .into_iter()
        .map(|file| root().join(file))
        .collect();
    let missing: Vec<String> = files
        .iter()
        .flat_map(|file| without_example(file))
        .collect();
    let declared: usize = files
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(file).unwrap();
            text.lines()
                .filter(|l| {
                    let l = l.trim_start();
                    ["pub struct ", "pub enum ", "pub trait ", "pub type "]
                        .iter()
                        .any(|kind| l.starts_with(kind))
                })
                .count()
        })
        .sum();
    assert!(
        declared > 50,
        "only {declared} public types found: the scan is broken"
    );
    assert!(
        missing.is_empty(),
        "{} public types and traits without an example:\n{}",
        missing.len(),
        missing.join("\n")
    );
}
