//! Editing the example's WIT regenerates its bindings on the next build, and
//! a WIT mistake is reported with file and line. Runs `cargo check` on a
//! copy of the crate (offline, its own target folder under `target/`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn copy_crate() -> (tempfile::TempDir, PathBuf) {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = here.join("../..").canonicalize().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("geo-enricher");
    for sub in ["src", "wit"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
        for entry in std::fs::read_dir(here.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, root.join(sub).join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(here.join("build.rs"), root.join("build.rs")).unwrap();
    // Path dependencies become absolute; the copy is a workspace of its own
    // with the workspace's lock file, so no version changes.
    let manifest = std::fs::read_to_string(here.join("Cargo.toml"))
        .unwrap()
        .replace("path = \"../..\"", &format!("path = {:?}", workspace))
        .replace(
            "path = \"../../",
            &format!("path = \"{}/", workspace.display()),
        )
        + "\n[workspace]\n";
    std::fs::write(root.join("Cargo.toml"), manifest).unwrap();
    std::fs::copy(workspace.join("Cargo.lock"), root.join("Cargo.lock")).unwrap();
    (dir, root)
}

/// `cargo check` in `root`: (success, stderr).
fn check(root: &Path) -> (bool, String) {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/rebuild-test");
    let output = Command::new(env!("CARGO"))
        .args(["check", "--offline", "--quiet", "--lib"])
        .current_dir(root)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_wit_edit_is_picked_up_and_a_wit_error_names_file_and_line() {
    let (_dir, root) = copy_crate();
    let (ok, stderr) = check(&root);
    assert!(ok, "the copy builds as it is:\n{stderr}");

    // A new function in the host interface: the regenerated `Host` trait now
    // requires it, so the unchanged implementation no longer compiles.
    let wit = root.join("wit/geo.wit");
    let original = std::fs::read_to_string(&wit).unwrap();
    std::fs::write(
        &wit,
        original.replace(
            "    country-of: func(ip: string) -> string;",
            "    country-of: func(ip: string) -> string;\n    city-of: func(ip: string) -> string;",
        ),
    )
    .unwrap();
    let (ok, stderr) = check(&root);
    assert!(!ok, "the regenerated trait must demand `city_of`");
    assert!(stderr.contains("city_of"), "{stderr}");

    // A syntax error: reported by the build script with file and line.
    std::fs::write(
        &wit,
        original.replace("country-of: func(", "country-of: fnuc("),
    )
    .unwrap();
    let (ok, stderr) = check(&root);
    assert!(!ok);
    assert!(stderr.contains("geo.wit:7:"), "{stderr}");

    // And back to a good state: it builds again.
    std::fs::write(&wit, original).unwrap();
    let (ok, stderr) = check(&root);
    assert!(ok, "{stderr}");
}
