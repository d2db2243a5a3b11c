//! ARCHITECTURE.md kept true, by reading the source as text: every path it
//! names exists, no source file is over 500 lines, the layer rules it
//! states hold (no file imports from a layer above its own), and the
//! imports between files form no circle. A `use` is followed through the
//! re-exports of `mod.rs` files to the file that defines the name, so a
//! folder's `mod.rs` (docs and re-exports) ties no circle by itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[path = "common/source_files.rs"]
mod source_files;

use source_files::{root, rust_files};

fn architecture() -> String {
    std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md")
}

/// The paths ARCHITECTURE.md names in backticks that do not exist. A
/// path is from the repository's root, or (a bare file or folder name)
/// inside a folder named before it on the same line (`src/host/` ...
/// `types.rs`). Spans with spaces, `::` or `:` are not paths.
fn missing_paths(text: &str) -> (usize, Vec<String>) {
    let mut checked = 0;
    let mut missing = Vec::new();
    for line in text.lines() {
        let mut folders: Vec<PathBuf> = Vec::new();
        for span in line.split('`').skip(1).step_by(2) {
            let is_path = !span.contains(' ')
                && !span.contains(':')
                && (span.contains('/')
                    || [".rs", ".md", ".toml", ".sh", ".wit"]
                        .iter()
                        .any(|ext| span.ends_with(ext)));
            if !is_path {
                continue;
            }
            checked += 1;
            let found = std::iter::once(root().join(span))
                .chain(folders.iter().map(|folder| folder.join(span)))
                .find(|candidate| candidate.exists());
            match found {
                Some(path) if path.is_dir() => folders.push(path),
                Some(_) => {}
                None => missing.push(span.to_string()),
            }
        }
    }
    (checked, missing)
}

#[test]
fn every_path_architecture_md_names_exists() {
    let (checked, missing) = missing_paths(&architecture());
    assert!(checked > 30, "too few paths found: {checked}");
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names paths that do not exist: {missing:?}"
    );
}

#[test]
fn no_source_file_is_over_500_lines() {
    let mut long = Vec::new();
    for dir in ["src", "cli/src", "bench/src"] {
        for file in rust_files(Path::new(dir)) {
            let lines = std::fs::read_to_string(root().join(&file))
                .unwrap()
                .lines()
                .count();
            if lines > 500 {
                long.push(format!("{} ({lines} lines)", file.display()));
            }
        }
    }
    assert!(long.is_empty(), "files over 500 lines: {long:?}");
}

/// A crate's files as modules: module path (`["flow", "graph"]`) → file.
struct Crate {
    modules: BTreeMap<Vec<String>, PathBuf>,
}

impl Crate {
    fn read(src: &str) -> Crate {
        let mut modules = BTreeMap::new();
        for file in rust_files(Path::new(src)) {
            let inner = file.strip_prefix(src).unwrap();
            let mut path: Vec<String> = inner
                .iter()
                .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            if matches!(
                path.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                path.pop();
            }
            // Test modules and binaries are not layers.
            if path.last().is_some_and(|last| last == "tests") || inner.ends_with("main.rs") {
                continue;
            }
            modules.insert(path, file);
        }
        Crate { modules }
    }

    /// The file that defines what `path` (absolute, in this crate) names,
    /// following `pub use` re-exports; `None` outside the crate.
    fn resolve(&self, path: &[String], depth: usize) -> Option<PathBuf> {
        // The longest prefix that is a module with a file.
        let mut split = path.len();
        while split > 0 && !self.modules.contains_key(&path[..split]) {
            split -= 1;
        }
        let module = &path[..split];
        let file = self.modules.get(module)?;
        let Some(name) = path.get(split) else {
            return Some(file.clone());
        };
        if depth < 8 {
            for (exported, target) in uses(&std::fs::read_to_string(root().join(file)).unwrap())
                .into_iter()
                .filter(|(_, _, public)| *public)
                .map(|(target, alias, _)| (alias, target))
            {
                if &exported == name {
                    if let Some(target) = absolute(module, file, &target) {
                        return self.resolve(&target, depth + 1).or(Some(file.clone()));
                    }
                }
            }
        }
        Some(file.clone())
    }

    /// File → the files it imports from (self-imports left out).
    fn imports(&self) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
        let mut edges = BTreeMap::new();
        for (module, file) in &self.modules {
            let text = std::fs::read_to_string(root().join(file)).unwrap();
            let mut targets = BTreeSet::new();
            for (target, _, public) in uses(&text) {
                let Some(target) = absolute(module, file, &target) else {
                    continue;
                };
                // A module's own re-export of its child is its docs' table
                // of contents, not a dependency.
                if public && target.starts_with(module) && target.len() > module.len() {
                    continue;
                }
                if let Some(to) = self.resolve(&target, 0) {
                    if &to != file {
                        targets.insert(to);
                    }
                }
            }
            edges.insert(file.clone(), targets);
        }
        edges
    }
}

/// `target` of a `use` in `file` (module `module`) as an absolute module
/// path of its crate; `None` for other crates.
fn absolute(module: &[String], file: &Path, target: &[String]) -> Option<Vec<String>> {
    let folder_module = file.ends_with("mod.rs") || file.ends_with("lib.rs");
    let mut base: Vec<String> = module.to_vec();
    let mut rest = target;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("super") => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        Some("self") => rest = &rest[1..],
        // A child module of a folder's mod.rs, named without `self::`.
        Some(first) if folder_module || module.is_empty() => {
            let _ = first;
        }
        _ => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// Every `use` of `text`: (path, the name it binds, whether it is public),
/// braces expanded, `self` folded into its prefix.
fn uses(text: &str) -> Vec<(Vec<String>, String, bool)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = find_use(rest) {
        let statement_start = at;
        let end = rest[statement_start..]
            .find(';')
            .map(|e| statement_start + e);
        let Some(end) = end else { break };
        let statement = &rest[statement_start..end];
        let public = statement.starts_with("pub");
        let tree = statement[statement.find("use ").unwrap() + 4..].trim();
        expand(&[], tree, public, &mut found);
        rest = &rest[end + 1..];
    }
    found
}

/// The start of the next `use` statement at the start of a line.
fn find_use(text: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let is_use = trimmed.starts_with("use ")
            || (trimmed.starts_with("pub") && trimmed.contains(" use ") && {
                let head = &trimmed[..trimmed.find(" use ").unwrap()];
                head == "pub" || head.starts_with("pub(")
            });
        if is_use && !trimmed.starts_with("//") {
            return Some(offset + (line.len() - trimmed.len()));
        }
        offset += line.len();
    }
    None
}

fn expand(prefix: &[String], tree: &str, public: bool, out: &mut Vec<(Vec<String>, String, bool)>) {
    let tree = tree.trim().trim_end_matches(',');
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open]
            .split("::")
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().to_string())
            .collect();
        let mut full = prefix.to_vec();
        full.extend(head);
        let inner = &tree[open + 1..tree.rfind('}').unwrap()];
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&full, &inner[start..i], public, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&full, &inner[start..], public, out);
        return;
    }
    if tree.is_empty() {
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((path, alias)) => (path.trim(), Some(alias.trim())),
        None => (tree, None),
    };
    let mut full = prefix.to_vec();
    full.extend(path.split("::").map(|s| s.trim().to_string()));
    if full
        .last()
        .is_some_and(|last| last == "self" || last == "*")
    {
        full.pop();
    }
    let name = alias.map_or_else(|| full.last().cloned().unwrap_or_default(), str::to_string);
    out.push((full, name, public));
}

/// A circle in `edges`, if there is one (as the files along it).
fn circle(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Option<Vec<PathBuf>> {
    // Depth-first, colouring: 0 unseen, 1 on the path, 2 done.
    fn visit(
        at: &PathBuf,
        edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        colour: &mut BTreeMap<PathBuf, u8>,
        path: &mut Vec<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        colour.insert(at.clone(), 1);
        path.push(at.clone());
        for next in edges.get(at).into_iter().flatten() {
            match colour.get(next).copied().unwrap_or(0) {
                1 => {
                    let from = path.iter().position(|p| p == next).unwrap();
                    return Some(path[from..].to_vec());
                }
                0 => {
                    if let Some(found) = visit(next, edges, colour, path) {
                        return Some(found);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        colour.insert(at.clone(), 2);
        None
    }
    let mut colour = BTreeMap::new();
    for start in edges.keys() {
        if colour.get(start).copied().unwrap_or(0) == 0 {
            if let Some(found) = visit(start, edges, &mut colour, &mut Vec::new()) {
                return Some(found);
            }
        }
    }
    None
}

#[test]
fn imports_between_files_form_no_circle() {
    for src in ["src", "cli/src", "bench/src"] {
        let krate = Crate::read(src);
        let edges = krate.imports();
        assert!(edges.len() > 10, "{src}: too few files read");
        if let Some(found) = circle(&edges) {
            panic!(
                "{src}: these files import from each other in a circle: {:?}",
                found
            );
        }
    }
}

/// The layers ARCHITECTURE.md states, lowest first, as (layer, the folders
/// and files in it); a file may import from its own layer and those below.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundations",
        &[
            "src/error.rs",
            "src/slab.rs",
            "src/stacks.rs",
            "src/interfaces.rs",
            "src/bindings.rs",
            "src/gate.rs",
            "src/contract.rs",
            "src/window/",
        ],
    ),
    (
        "host",
        &["src/host/", "src/config/", "src/cache.rs", "src/imports.rs"],
    ),
    (
        "engine",
        &[
            "src/store.rs",
            "src/invoker.rs",
            "src/calls.rs",
            "src/dynamic/",
            "src/exports.rs",
            "src/component.rs",
            "src/instance/",
            "src/invoke.rs",
            "src/engine/",
            "src/mock.rs",
        ],
    ),
    ("connectors", &["src/connect/"]),
    ("flows", &["src/flow/"]),
];

fn layer_of(file: &Path) -> Option<(usize, &'static str)> {
    let file = file.to_string_lossy();
    LAYERS
        .iter()
        .enumerate()
        .find_map(|(index, (name, members))| {
            members
                .iter()
                .any(|member| {
                    file == *member || (member.ends_with('/') && file.starts_with(member))
                })
                .then_some((index, *name))
        })
}

#[test]
fn imports_point_down_the_layers() {
    let text = architecture();
    for (name, _) in LAYERS {
        assert!(
            text.contains(&format!("**{name}**")),
            "ARCHITECTURE.md does not describe the layer `{name}`"
        );
    }
    let krate = Crate::read("src");
    let mut unplaced = Vec::new();
    let mut upward = Vec::new();
    for (file, targets) in krate.imports() {
        if file.ends_with("lib.rs") {
            continue;
        }
        let Some((from, from_name)) = layer_of(&file) else {
            unplaced.push(file);
            continue;
        };
        for target in targets {
            if target.ends_with("lib.rs") {
                continue;
            }
            if let Some((to, to_name)) = layer_of(&target) {
                if to > from {
                    upward.push(format!(
                        "{} ({from_name}) imports {} ({to_name})",
                        file.display(),
                        target.display()
                    ));
                }
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "files in no layer (add them to ARCHITECTURE.md and LAYERS): {unplaced:?}"
    );
    assert!(upward.is_empty(), "imports up the layers: {upward:#?}");
    // The host sees the store only through its view.
    for file in rust_files(Path::new("src/host")) {
        let text = std::fs::read_to_string(root().join(&file)).unwrap();
        assert!(
            !text.contains("StoreState") && !text.contains("crate::store"),
            "{} reaches into the store: the host knows it only as `HostView`",
            file.display()
        );
    }
}
