//! Build-time generation of typed wasmtime host bindings for WIT worlds.
//!
//! `torvyn-build` is to WIT what `prost-build` is to protobuf: call it from a
//! `build.rs`, it reads a WIT file or folder (with its `deps/`, as
//! wit-parser and `bindgen!` do), generates typed host
//! bindings for the worlds you ask for with wasmtime's own generator
//! (`wasmtime-internal-wit-bindgen`, the engine behind `wasmtime::component::bindgen!`),
//! writes them into `OUT_DIR` and tells cargo to re-run when any WIT file changes.
//!
//! Each world becomes a module named after it (`data-source` → `data_source`).
//! An interface imported by several worlds is generated once, in the first
//! world that imports it; later worlds refer to that module, so one host
//! implementation serves them all (unless a later world's exports use its
//! types and the first world's did not: those need borrowed variants,
//! `…Param<'a>`, that the first never made, so that world gets its own).
//!
//! What wasmtime's generator cannot bind is refused with an error naming
//! it: an exported function named as a Rust keyword, a function of more
//! than 17 parameters. `build-helper/corpus` holds worlds of every other
//! WIT type and shape, generated and compiled with the workspace.
//!
//! ```no_run
//! // in build.rs's `main`:
//! torvyn_build::Builder::new("wit")
//!     .world("acme:geo/enricher")
//!     .torvyn_host("torvyn_engine")
//!     .compile()
//!     .unwrap_or_else(|e| panic!("{e}"));
//! ```
//!
//! and in the crate, at the module path given by [`Builder::module_path`]
//! (default `crate::bindings`):
//!
//! ```ignore
//! pub mod bindings {
//!     torvyn_engine::include_bindings!("bindings");
//! }
//! ```
#![deny(missing_docs)]

pub use wit_parser;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use wasmtime_internal_wit_bindgen::{
    FunctionConfig, FunctionFilter, FunctionFlags, Opts, Ownership,
};
use wit_parser::{PackageName, Resolve, UnresolvedPackageGroup, WorldId, WorldItem, WorldKey};

/// Why bindings could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A WIT folder or file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A WIT file does not parse or does not resolve; the message names the file and line.
    #[error("invalid WIT: {0}")]
    Wit(String),
    /// A requested world is not defined in the WIT folder.
    #[error("world `{0}` is not defined in the WIT folder")]
    UnknownWorld(String),
    /// The code generator refused the input.
    #[error("generating bindings for world `{world}` failed: {message}")]
    Generate {
        /// The world being generated.
        world: String,
        /// The generator's message.
        message: String,
    },
    /// `OUT_DIR` is not set and no output directory was given.
    #[error("OUT_DIR is not set: call from a build script or set Builder::out_dir")]
    NoOutDir,
}

/// What a successful run produced.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The file the bindings were written to (`None` for [`Builder::generate`]).
    pub path: Option<PathBuf>,
    /// The generated Rust source.
    pub source: String,
    /// Every WIT file that was read; a change to any of them must regenerate.
    pub wit_files: Vec<PathBuf>,
    /// The fully qualified names of the worlds generated, in order.
    pub worlds: Vec<String>,
}

/// Configures and runs the generator. See the crate docs for an example.
#[derive(Debug, Clone)]
pub struct Builder {
    wit_dir: PathBuf,
    worlds: Vec<String>,
    with: BTreeMap<String, String>,
    module_path: String,
    out_dir: Option<PathBuf>,
    file_name: String,
    borrowing: bool,
    emit_rerun: bool,
    with_contract: bool,
    wasmtime_crate: Option<String>,
    /// The engine crate's name in the using crate, when its host serves
    /// the contract ([`Builder::torvyn_host`]).
    engine_crate: Option<String>,
}

/// The Torvyn contract's WIT files, for folders that `use` or import it.
pub const CONTRACT_WIT: [(&str, &str); 6] = [
    ("streaming.wit", include_str!("../wit/streaming.wit")),
    ("filtering.wit", include_str!("../wit/filtering.wit")),
    ("aggregation.wit", include_str!("../wit/aggregation.wit")),
    ("capabilities.wit", include_str!("../wit/capabilities.wit")),
    ("state.wit", include_str!("../wit/state.wit")),
    ("windowing.wit", include_str!("../wit/windowing.wit")),
];

impl Builder {
    /// A builder for the WIT at `wit_dir`: a file, a folder of one package
    /// with its `deps/`, or a folder of one package per file (see
    /// [`load_wit`]).
    pub fn new(wit_dir: impl Into<PathBuf>) -> Self {
        Builder {
            wit_dir: wit_dir.into(),
            worlds: Vec::new(),
            with: BTreeMap::new(),
            module_path: "crate::bindings".into(),
            out_dir: None,
            file_name: "bindings".into(),
            borrowing: true,
            emit_rerun: true,
            with_contract: false,
            engine_crate: None,
            wasmtime_crate: None,
        }
    }

    /// Adds a world to generate, as `namespace:package/world` (a version may
    /// be appended). Without any call, every world of the folder is generated.
    pub fn world(mut self, name: impl Into<String>) -> Self {
        self.worlds.push(name.into());
        self
    }

    /// Maps a WIT interface (`ns:pkg/iface@1.0.0`) or resource
    /// (`ns:pkg/iface.resource`) to an existing Rust path instead of generating it.
    pub fn with(mut self, wit_name: impl Into<String>, rust_path: impl Into<String>) -> Self {
        self.with.insert(wit_name.into(), rust_path.into());
        self
    }

    /// Makes the Torvyn contract ([`CONTRACT_WIT`]) available to the
    /// folder's WIT files, and uses `torvyn-engine`'s host implementation of
    /// its imports (`types` with its buffers and flow contexts, the buffer
    /// allocator, capability queries). `crate_name` is how the engine crate is
    /// named in the using crate, usually `torvyn_engine`.
    pub fn torvyn_host(mut self, crate_name: &str) -> Self {
        self.with_contract = true;
        self.engine_crate = Some(crate_name.to_string());
        self.wasmtime_crate = Some(format!("{crate_name}::wasmtime"));
        let root = format!("{crate_name}::bindings");
        self.with("torvyn:streaming/types@0.1.0", format!("{root}::types"))
            .with(
                "torvyn:streaming/buffer-allocator@0.1.0",
                format!("{root}::buffer_allocator"),
            )
            .with(
                "torvyn:capabilities/capability-query@0.1.0",
                format!("{root}::capability_query"),
            )
    }

    /// The Rust module path at which the generated file is included
    /// (default `crate::bindings`); needed to share imports between worlds.
    pub fn module_path(mut self, path: impl Into<String>) -> Self {
        self.module_path = path.into();
        self
    }

    /// The path of the `wasmtime` crate in generated code (default
    /// `wasmtime`; [`Builder::torvyn_host`] uses the engine's re-export, so
    /// the using crate needs no wasmtime dependency of its own).
    pub fn wasmtime_crate(mut self, path: impl Into<String>) -> Self {
        self.wasmtime_crate = Some(path.into());
        self
    }

    /// Writes into `dir` instead of `OUT_DIR`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Base name of the generated file (default `bindings` → `bindings.rs`).
    pub fn file_name(mut self, name: impl Into<String>) -> Self {
        self.file_name = name.into();
        self
    }

    /// Whether export parameters borrow (`&str`, `&[T]`) instead of owning
    /// (`String`, `Vec<T>`). Default `true`: calling an export then needs no
    /// host heap allocation for its arguments.
    pub fn borrowing_params(mut self, borrowing: bool) -> Self {
        self.borrowing = borrowing;
        self
    }

    /// Whether to print `cargo:rerun-if-changed` lines (default `true`).
    pub fn emit_rerun_if_changed(mut self, emit: bool) -> Self {
        self.emit_rerun = emit;
        self
    }

    /// Generates the bindings and returns them without writing a file.
    pub fn generate(&self) -> Result<Generated, Error> {
        if self.emit_rerun {
            // The path itself first: a file added to a folder reruns too.
            println!("cargo:rerun-if-changed={}", self.wit_dir.display());
        }
        let mut resolve = Resolve::default();
        if self.with_contract {
            load_packages(&mut resolve, &[], &CONTRACT_WIT)?;
        }
        let wit_files = load_wit(&mut resolve, &self.wit_dir)?;
        if self.emit_rerun {
            for file in &wit_files {
                println!("cargo:rerun-if-changed={}", file.display());
            }
        }
        let worlds = self.selected_worlds(&resolve)?;

        let mut source = String::from("// @generated by torvyn-build. Do not edit.\n");
        if let Some(engine) = &self.engine_crate {
            // Code generated for one engine's host types and compiled
            // against another fails in one line that says so, not in pages
            // of trait errors.
            source.push_str(&format!(
                "{engine}::__check_build_version!(\"{}\");\n",
                env!("CARGO_PKG_VERSION")
            ));
        }
        let mut world_names = Vec::new();
        // Imports already generated: WIT interface name -> (Rust module
        // path, whether exports of the world it was generated in use its
        // types).
        let mut shared: BTreeMap<String, (String, bool)> = BTreeMap::new();
        for &world in &worlds {
            refuse_keyword_exports(&resolve, world)?;
            refuse_long_parameter_lists(&resolve, world)?;
        }
        for world in worlds {
            let world_name = qualified_world_name(&resolve, world);
            let module = rust_ident(&resolve.worlds[world].name);
            let mut opts = Opts {
                ownership: if self.borrowing {
                    Ownership::Borrowing {
                        duplicate_if_necessary: true,
                    }
                } else {
                    Ownership::Owning
                },
                imports: trappable_imports(),
                wasmtime_crate: self.wasmtime_crate.clone(),
                ..Opts::default()
            };
            let mut newly_generated = Vec::new();
            let under_exports = interfaces_under_exports(&resolve, world);
            for (key, item) in &resolve.worlds[world].imports {
                let WorldItem::Interface { id, .. } = item else {
                    continue;
                };
                let Some(name) = resolve.id_of(*id) else {
                    continue;
                };
                if let Some(path) = self.with.get(&name) {
                    opts.with.insert(name, path.clone());
                    continue;
                }
                // Shared with an earlier world, unless this world's exports
                // use its types and that world's did not: the generator
                // then needs borrowed variants of them (`…Param<'a>`) that
                // the earlier module never made.
                if let Some((path, exported_over)) = shared.get(&name) {
                    if *exported_over || !under_exports.contains(id) {
                        opts.with.insert(name, path.clone());
                        continue;
                    }
                }
                for (resource, _) in resolve.interfaces[*id].types.iter() {
                    let resource_key = format!("{name}.{resource}");
                    if let Some(path) = self.with.get(&resource_key) {
                        opts.with.insert(resource_key, path.clone());
                    }
                }
                newly_generated.push((
                    name,
                    interface_module_path(&resolve, key),
                    under_exports.contains(id),
                ));
            }
            let generated = opts
                .generate(&mut resolve, world)
                .map_err(|e| Error::Generate {
                    world: world_name.clone(),
                    message: format!("{e:#}"),
                })?;
            for (name, relative, exported_over) in newly_generated {
                let path = format!("{}::{module}::{relative}", self.module_path);
                shared.entry(name).or_insert((path, exported_over));
            }
            source.push_str(&format!(
                "/// Bindings for the WIT world `{world_name}`.\n\
                 // wasmtime's generator leaves the parameters of an interface's\n\
                 // `add_to_linker` unused when it has types and no functions.\n\
                 #[allow(unused_variables)]\n\
                 pub mod {module} {{\n{generated}\n}}\n"
            ));
            world_names.push(world_name);
        }
        Ok(Generated {
            path: None,
            source,
            wit_files,
            worlds: world_names,
        })
    }

    /// Generates the bindings and writes them to `OUT_DIR/<file_name>.rs`.
    pub fn compile(&self) -> Result<Generated, Error> {
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(Error::NoOutDir)?,
        };
        let mut generated = self.generate()?;
        let path = out_dir.join(format!("{}.rs", self.file_name));
        // Rewriting identical content would needlessly rebuild dependents.
        if std::fs::read_to_string(&path).ok().as_deref() != Some(generated.source.as_str()) {
            std::fs::write(&path, &generated.source).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        }
        generated.path = Some(path);
        Ok(generated)
    }

    fn selected_worlds(&self, resolve: &Resolve) -> Result<Vec<WorldId>, Error> {
        if self.worlds.is_empty() {
            return Ok(resolve.worlds.iter().map(|(id, _)| id).collect());
        }
        let packages: Vec<_> = resolve.packages.iter().map(|(id, _)| id).collect();
        self.worlds
            .iter()
            .map(|name| {
                resolve
                    .select_world(&packages, Some(name))
                    .map_err(|_| Error::UnknownWorld(name.clone()))
            })
            .collect()
    }
}

/// Host imports return `wasmtime::Result`, so a host implementation can trap
/// the guest (for example on a stale handle) instead of having to panic.
fn trappable_imports() -> FunctionConfig {
    let mut config = FunctionConfig::new();
    config.push(FunctionFilter::Default, FunctionFlags::TRAPPABLE);
    config
}

/// The `*.wit` files directly inside `dir`, sorted for a stable output.
fn wit_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|ext| ext == "wit") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads the Torvyn contract ([`CONTRACT_WIT`]) into `resolve`, for tools
/// that build or inspect components against it without a copy of `wit/`.
pub fn load_contract(resolve: &mut Resolve) -> Result<(), Error> {
    load_packages(resolve, &[], &CONTRACT_WIT)
}

/// Loads every `*.wit` file directly inside `dir` into `resolve` (one
/// package per file, `use` between files resolved in any order) and returns
/// the files read. [`load_wit`] reads every other layout too.
pub fn load_wit_dir(resolve: &mut Resolve, dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let files = wit_files(dir)?;
    load_packages(resolve, &files, &[])?;
    Ok(files)
}

/// Loads the WIT at `path` into `resolve` as wit-parser reads it — a file
/// (one package, or several with nested `package ... { }` blocks), or a
/// folder holding one package (over any number of files) with its
/// dependencies in `deps/` (folders and single files, versions side by
/// side) — and returns every file read. A folder without `deps/` whose
/// files declare different packages is read one package per file, `use`
/// between them resolved in any order (the contract's own layout).
pub fn load_wit(resolve: &mut Resolve, path: &Path) -> Result<Vec<PathBuf>, Error> {
    if path.is_dir() && !path.join("deps").exists() {
        let files = wit_files(path)?;
        if declared_packages(&files).len() > 1 {
            load_packages(resolve, &files, &[])?;
            return Ok(files);
        }
    }
    if !path.exists() {
        return Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    let (_, sources) = resolve
        .push_path(path)
        .map_err(|e| Error::Wit(resolve.render_error(&e)))?;
    Ok(sources.paths().map(Path::to_path_buf).collect())
}

/// The packages `files` declare, each file parsed alone (a file that does
/// not parse alone, e.g. one of a package split over files, declares none
/// here).
fn declared_packages(files: &[PathBuf]) -> std::collections::BTreeSet<String> {
    files
        .iter()
        .filter_map(|path| {
            let contents = std::fs::read_to_string(path).ok()?;
            let group = UnresolvedPackageGroup::parse(path, &contents).ok()?;
            Some(group.main.name.to_string())
        })
        .collect()
}

/// Parses each file as its own package group and resolves them together, so
/// files may `use` each other in any order.
fn load_packages(
    resolve: &mut Resolve,
    files: &[PathBuf],
    embedded: &[(&str, &str)],
) -> Result<(), Error> {
    let mut groups = Vec::new();
    for (name, contents) in embedded {
        let path = Path::new("torvyn-contract").join(name);
        let group = UnresolvedPackageGroup::parse(&path, contents)
            .map_err(|(map, e)| Error::Wit(e.render(&map)))?;
        groups.push(group);
    }
    for path in files {
        let contents = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let group = UnresolvedPackageGroup::parse(path, &contents)
            .map_err(|(map, e)| Error::Wit(e.render(&map)))?;
        groups.push(group);
    }
    if groups.is_empty() {
        return Ok(());
    }
    // wit-parser panics on a package added twice (a folder that carries a
    // copy of the contract `torvyn_host` already adds): an error instead.
    for group in &groups {
        for package in std::iter::once(&group.main).chain(&group.nested) {
            if resolve.package_names.contains_key(&package.name) {
                return Err(Error::Wit(format!(
                    "package `{}` is defined twice (is a copy of the Torvyn contract in the WIT \
                     folder? `torvyn_host` adds it)",
                    package.name
                )));
            }
        }
    }
    let main = groups.pop().expect("not empty");
    resolve
        .push_groups(main, groups)
        .map_err(|e| Error::Wit(resolve.render_error(&anyhow::Error::from(e))))?;
    Ok(())
}

/// The interfaces whose types `world`'s exports use: each exported
/// interface's dependencies, followed through theirs, and the owners of the
/// types an exported function takes or returns.
fn interfaces_under_exports(
    resolve: &Resolve,
    world: WorldId,
) -> std::collections::BTreeSet<wit_parser::InterfaceId> {
    let mut found = std::collections::BTreeSet::new();
    let mut to_visit = Vec::new();
    for item in resolve.worlds[world].exports.values() {
        match item {
            WorldItem::Interface { id, .. } => to_visit.extend(resolve.interface_direct_deps(*id)),
            WorldItem::Function(function) => {
                let types = function
                    .params
                    .iter()
                    .map(|param| &param.ty)
                    .chain(function.result.as_ref());
                for ty in types {
                    if let wit_parser::Type::Id(id) = ty {
                        if let wit_parser::TypeOwner::Interface(owner) = resolve.types[*id].owner {
                            to_visit.push(owner);
                        }
                    }
                }
            }
            WorldItem::Type { .. } => {}
        }
    }
    while let Some(id) = to_visit.pop() {
        if found.insert(id) {
            to_visit.extend(resolve.interface_direct_deps(id));
        }
    }
    found
}

/// Rust's keywords, strict and reserved (what wasmtime's generator escapes
/// elsewhere, `as` → `as_`).
const RUST_KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// wasmtime's generator (48) names an exported function's field and
/// accessor after it without escaping Rust keywords, so an export called
/// `as` or `type` generates code that does not compile: refused here, in
/// one line naming it, instead of pages of rustc errors in generated code.
fn refuse_keyword_exports(resolve: &Resolve, world: WorldId) -> Result<(), Error> {
    let keyword = |name: &str| RUST_KEYWORDS.contains(&name.replace('-', "_").as_str());
    for (key, item) in &resolve.worlds[world].exports {
        let functions: Vec<(String, &str)> = match item {
            WorldItem::Function(function) => vec![(resolve.name_world_key(key), &function.name)],
            WorldItem::Interface { id, .. } => resolve.interfaces[*id]
                .functions
                .values()
                .filter(|function| {
                    matches!(
                        function.kind,
                        wit_parser::FunctionKind::Freestanding
                            | wit_parser::FunctionKind::AsyncFreestanding
                    )
                })
                .map(|function| (resolve.name_world_key(key), function.name.as_str()))
                .collect(),
            WorldItem::Type { .. } => Vec::new(),
        };
        if let Some((owner, name)) = functions.into_iter().find(|(_, name)| keyword(name)) {
            return Err(Error::Generate {
                world: qualified_world_name(resolve, world),
                message: format!(
                    "the exported function `{name}` of `{owner}` is named as a Rust keyword, \
                     which wasmtime's generator (48) does not escape in export names: rename it \
                     (as an import it works)"
                ),
            });
        }
    }
    Ok(())
}

/// The most parameters a typed wasmtime function takes (its tuples of
/// parameters are implemented up to 17 elements).
const MAX_PARAMETERS: usize = 17;

/// A function of more than [`MAX_PARAMETERS`] parameters (a method counts
/// its `self`) generates typed calls wasmtime cannot make: refused here,
/// naming it, instead of rustc's errors on a 18-tuple in generated code.
fn refuse_long_parameter_lists(resolve: &Resolve, world: WorldId) -> Result<(), Error> {
    let world_data = &resolve.worlds[world];
    for (key, item) in world_data.imports.iter().chain(&world_data.exports) {
        let functions: Vec<&wit_parser::Function> = match item {
            WorldItem::Function(function) => vec![function],
            WorldItem::Interface { id, .. } => resolve.interfaces[*id].functions.values().collect(),
            WorldItem::Type { .. } => Vec::new(),
        };
        if let Some(function) = functions
            .into_iter()
            .find(|function| function.params.len() > MAX_PARAMETERS)
        {
            return Err(Error::Generate {
                world: qualified_world_name(resolve, world),
                message: format!(
                    "`{}` of `{}` takes {} parameters; wasmtime's typed functions take at most \
                     {MAX_PARAMETERS}: pass some of them in a record",
                    function.name,
                    resolve.name_world_key(key),
                    function.params.len()
                ),
            });
        }
    }
    Ok(())
}

fn qualified_world_name(resolve: &Resolve, world: WorldId) -> String {
    let world = &resolve.worlds[world];
    match world.package {
        Some(pkg) => {
            let PackageName {
                namespace,
                name,
                version,
            } = &resolve.packages[pkg].name;
            let version = version
                .as_ref()
                .map(|v| format!("@{v}"))
                .unwrap_or_default();
            format!("{namespace}:{name}/{}{version}", world.name)
        }
        None => world.name.clone(),
    }
}

/// Where the generator puts an imported interface, relative to the world module.
fn interface_module_path(resolve: &Resolve, key: &WorldKey) -> String {
    match key {
        WorldKey::Name(name) => rust_ident(name),
        WorldKey::Interface(id) => {
            let iface = &resolve.interfaces[*id];
            let name = iface.name.as_deref().unwrap_or_default();
            match iface.package {
                Some(pkg) => {
                    let pkg = &resolve.packages[pkg].name;
                    format!(
                        "{}::{}::{}",
                        rust_ident(&pkg.namespace),
                        rust_ident(&pkg.name),
                        rust_ident(name)
                    )
                }
                None => rust_ident(name),
            }
        }
    }
}

/// The generator's kebab-case to snake_case module naming.
fn rust_ident(name: &str) -> String {
    name.replace('-', "_")
}
