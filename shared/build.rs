//! Stamps the library with a hash of its sources (`LOCKFAIR_BUILD_ID`). `lockfair-server
//! --build-id` prints it, and `compare` and `bench` refuse a server binary built from other
//! sources than themselves (a stale binary left beside a fresh client, or a wrong `--server-bin`):
//! the two would not speak the same shared-memory protocol. The tests need no such check: the
//! client package builds both binaries for them.

use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::path::Path;

fn hash_dir(dir: &Path, h: &mut DefaultHasher) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            hash_dir(&path, h);
        } else if let Ok(bytes) = std::fs::read(&path) {
            h.write(path.to_string_lossy().as_bytes());
            h.write(&bytes);
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=build.rs");
    let mut h = DefaultHasher::new();
    hash_dir(Path::new("src"), &mut h);
    println!("cargo:rustc-env=LOCKFAIR_BUILD_ID={:016x}", h.finish());
}
