//! A hostile cache folder: forged, moved or swapped files, a shared key,
//! links and FIFOs, and many writers at once.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use torvyn_engine::{
    ComponentInvoker, Element, EngineConfig, Error, ProcessOutcome, WasmEngine, WasmtimeEngine,
};

fn cached_engine(dir: &Path) -> torvyn_engine::Result<WasmtimeEngine> {
    WasmtimeEngine::new(EngineConfig::builder().cache_dir(dir).build()?)
}

fn artifact(dir: &Path, engine: &WasmtimeEngine, bytes: &[u8]) -> std::path::PathBuf {
    let digest = engine.compile("probe", bytes).unwrap().digest();
    dir.join(format!("{digest}.cwasm"))
}

fn run_upper(engine: &WasmtimeEngine) -> ProcessOutcome {
    let upper = engine
        .compile("upper", &torvyn_fixtures::uppercase_processor())
        .unwrap();
    let mut upper = engine.instantiate(&upper).unwrap();
    upper
        .process(&Element::new(0, "text/plain", "abc"))
        .unwrap()
}

#[test]
fn an_artifact_moved_under_another_digest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = cached_engine(dir.path()).unwrap();
    let upper = artifact(dir.path(), &engine, &torvyn_fixtures::uppercase_processor());
    let dropper = artifact(dir.path(), &engine, &torvyn_fixtures::drop_processor());
    // A valid artifact of the drop processor, planted as the uppercase one.
    std::fs::copy(&dropper, &upper).unwrap();
    let fresh = cached_engine(dir.path()).unwrap();
    assert_eq!(
        run_upper(&fresh),
        ProcessOutcome::Emit(Element::new(0, "text/plain", "ABC")),
        "the right component runs"
    );
    let stats = fresh.cache_stats();
    assert_eq!(stats.disk_hits, 0);
    assert_eq!(stats.compiled, 1);
    assert!(
        stats.refused[0].contains("integrity check"),
        "{:?}",
        stats.refused
    );
}

#[test]
fn the_key_must_be_a_private_regular_file_of_this_user() {
    let dir = tempfile::tempdir().unwrap();
    drop(cached_engine(dir.path()).unwrap());
    let key = dir.path().join("cache-key");
    let cache_error = |why: &str| match cached_engine(dir.path()) {
        Err(Error::Cache { path, detail, .. }) => {
            assert_eq!(path, key);
            assert!(detail.contains(why), "{detail}");
        }
        other => panic!("expected a cache error ({why}), got {other:?}"),
    };

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    cache_error("mode 644");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    cached_engine(dir.path()).unwrap();

    let elsewhere = dir.path().join("elsewhere");
    std::fs::rename(&key, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &key).unwrap();
    cache_error("symbolic link");
    std::fs::remove_file(&key).unwrap();
    std::fs::rename(&elsewhere, &key).unwrap();

    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(&key, Some(1), None).unwrap();
        cache_error("owned by user 1");
    }
}

#[test]
fn links_and_fifos_in_place_of_artifacts_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = cached_engine(dir.path()).unwrap();
    let path = artifact(dir.path(), &engine, &torvyn_fixtures::uppercase_processor());
    // Replaces the artifact with what `plant` makes; a fresh engine must
    // refuse it at once (`why`) and compile the right component instead.
    let refused_at_once = |plant: &dyn Fn(&Path), why: &str| {
        std::fs::remove_file(&path).unwrap();
        plant(&path);
        let started = Instant::now();
        let fresh = cached_engine(dir.path()).unwrap();
        assert_eq!(
            run_upper(&fresh),
            ProcessOutcome::Emit(Element::new(0, "text/plain", "ABC"))
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{why}: {:?}",
            started.elapsed()
        );
        let stats = fresh.cache_stats();
        assert!(stats.refused[0].contains(why), "{stats:?}");
    };
    refused_at_once(
        &|path| std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
        "symbolic link",
    );
    refused_at_once(
        &|path| {
            let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        },
        "not a regular file",
    );
}

#[test]
fn eight_threads_share_one_folder_for_fifty_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = torvyn_fixtures::uppercase_processor();
    for round in 0..50 {
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        let engine = cached_engine(dir.path()).unwrap();
                        let upper = engine.compile("upper", &bytes).unwrap();
                        let mut upper = engine.instantiate(&upper).unwrap();
                        let out = upper.process(&Element::new(1, "", "x")).unwrap();
                        assert_eq!(out, ProcessOutcome::Emit(Element::new(1, "", "X")));
                        engine.cache_stats()
                    })
                })
                .collect();
            for worker in workers {
                let stats = worker.join().unwrap();
                assert!(
                    stats.refused.is_empty(),
                    "round {round}: {:?}",
                    stats.refused
                );
            }
        });
    }
    // Only the key and one artifact remain: no temporary file is left over.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}
