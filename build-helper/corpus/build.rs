//! Every world of `wit/` (none named: all of them), into `OUT_DIR/bindings.rs`.

fn main() {
    match torvyn_build::Builder::new("wit").compile() {
        Ok(generated) => {
            // The worlds generated, for tests/corpus.rs.
            println!(
                "cargo:rustc-env=CORPUS_WORLDS={}",
                generated.worlds.join(",")
            );
        }
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(1);
        }
    }
}
