//! The experiments' private directory: 0700, in the temporary directory, removed on drop.
//!
//! Every experiment takes a fresh regular file of its own, so no lock, description or blocked
//! request of one experiment can leak into the next.

use std::fs::File;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::MatrixError;

#[derive(Debug)]
pub(super) struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub(super) fn create() -> Result<ScratchDir, MatrixError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("lockfair-matrix-{}-{nanos:09}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(super::file_err("create the private directory", &path))?;
        // Canonical, so it matches what /proc/self/mountinfo prints for a mount inside it.
        let path = path.canonicalize().unwrap_or(path);
        Ok(ScratchDir { path })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Creates `name` (it must not exist) and returns its path and a read-write descriptor.
    pub(super) fn fresh(&self, name: &str) -> Result<(PathBuf, File), MatrixError> {
        let path = self.path.join(name);
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(super::file_err("create", &path))?;
        Ok((path, file))
    }
}

/// Opens `path` read-write: a new, independent open file description.
pub(super) fn open(path: &Path) -> Result<File, MatrixError> {
    File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(super::file_err("open", path))
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The path as UTF-8, for the helper's `Open` request.
pub(super) fn utf8(path: &Path) -> Result<String, MatrixError> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| MatrixError::File {
            what: "name",
            path: path.display().to_string(),
            err: std::io::Error::new(std::io::ErrorKind::InvalidFilename, "not UTF-8"),
        })
}
