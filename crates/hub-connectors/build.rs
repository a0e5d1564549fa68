//! Embeds every `providers/*.json` manifest, so adding a provider means adding
//! a file, not code. Generates `$OUT_DIR/providers.rs` with one
//! `(file name, include_str!(…))` pair per manifest, sorted by file name.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let providers = manifest_dir.join("providers");
    // A directory makes cargo rerun when any file inside is added, removed or changed.
    println!("cargo:rerun-if-changed={}", providers.display());

    let mut files: Vec<PathBuf> = std::fs::read_dir(&providers)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", providers.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();

    let mut out = String::from(
        "/// Every embedded manifest as `(file name, contents)`, sorted by file name.\n\
         pub(crate) static EMBEDDED: &[(&str, &str)] = &[\n",
    );
    for path in &files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_else(|| panic!("non-UTF-8 manifest file name: {}", path.display()));
        let abs = path
            .to_str()
            .unwrap_or_else(|| panic!("non-UTF-8 manifest path: {}", path.display()));
        writeln!(out, "    ({name:?}, include_str!({abs:?})),").expect("write to String");
    }
    out.push_str("];\n");

    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out_dir.join("providers.rs"), out).expect("write providers.rs");
}
