//! Output folders written without following symlinks (`compare`'s report, `run`'s timeline, the
//! man pages).
//!
//! A root run told to write into a folder someone else can reach must not be steered into
//! overwriting another file: the folder is opened once (`O_NOFOLLOW`, so it is not a symlink) and
//! checked on that descriptor (ours, and nobody else may write in it unless the sticky bit
//! stops them replacing our files). Every file is then written relative to that descriptor, into a
//! fresh temporary (`O_CREAT|O_EXCL|O_NOFOLLOW`: never an existing file or link) and renamed over
//! its name, which replaces a planted symlink itself, never its target. A reader (or a crash)
//! never sees half a file either.

use std::fs::{DirBuilder, File};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{Mode, SFlag, fstat, fstatat};
use nix::unistd::{UnlinkatFlags, geteuid, unlinkat};
use thiserror::Error;

/// Why an output folder cannot be used, and what to do about it.
#[derive(Debug, Error)]
pub enum OutDirError {
    #[error("it belongs to uid {owner}, not to you (uid {me}); pass an --out DIR you own")]
    ForeignOwner { owner: u32, me: u32 },
    #[error(
        "it is mode {mode:o}: other users can replace files in it; run `chmod go-w` on it or pass an --out DIR only you can write in"
    )]
    OpenToOthers { mode: u32 },
    #[error("it is a symbolic link; pass the directory itself as --out DIR")]
    Symlink,
    #[error("{0}; pass a writable --out DIR")]
    Io(io::Error),
}

/// A folder opened for writing, checked once on its descriptor.
#[derive(Debug)]
pub struct OutDir {
    path: PathBuf,
    fd: OwnedFd,
}

/// How often a temporary name that is taken is replaced by another before giving up.
const TEMPORARY_ATTEMPTS: usize = 64;

impl OutDir {
    /// Creates `path` (and its parents) if missing, opens it without following a symlink in its
    /// last component and refuses it unless it is ours and closed to other writers.
    pub fn open(path: &Path) -> Result<OutDir, OutDirError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(path)
            .map_err(OutDirError::Io)?;
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        // Without its trailing slashes: `link/` would follow the link despite O_NOFOLLOW.
        let last_not_followed: PathBuf = path.components().collect();
        let fd = openat(
            nix::fcntl::AT_FDCWD,
            &last_not_followed,
            flags,
            Mode::empty(),
        )
        .map_err(|e| open_error(&last_not_followed, e))?;
        check_closed_to_others(&fd)?;
        Ok(OutDir {
            path: path.to_path_buf(),
            fd,
        })
    }

    /// The folder, as it was given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file `name` in the folder with `bytes`, all at once.
    pub fn write(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.write_via(name, bytes, temporary_name)
    }

    /// [`OutDir::write`], taking temporary names from `next_temporary` (tests plant links there).
    fn write_via(
        &self,
        name: &str,
        bytes: &[u8],
        mut next_temporary: impl FnMut(&str) -> String,
    ) -> io::Result<()> {
        check_name(name)?;
        let (tmp, mut file) = self.create_temporary(name, &mut next_temporary)?;
        let written = file.write_all(bytes).and_then(|()| {
            renameat(&self.fd, tmp.as_str(), &self.fd, name).map_err(io::Error::from)
        });
        if written.is_err() {
            let _ = unlinkat(&self.fd, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        written
    }

    /// A new, empty file of ours under a name nobody else had (a planted file or link under
    /// the name makes `O_EXCL` fail, and another name is tried).
    fn create_temporary(
        &self,
        name: &str,
        next_temporary: &mut impl FnMut(&str) -> String,
    ) -> io::Result<(String, File)> {
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        for _ in 0..TEMPORARY_ATTEMPTS {
            let tmp = next_temporary(name);
            match openat(
                &self.fd,
                tmp.as_str(),
                flags,
                Mode::from_bits_truncate(0o644),
            ) {
                Ok(fd) => return Ok((tmp, File::from(fd))),
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("no free temporary name for {name} after {TEMPORARY_ATTEMPTS} tries"),
        ))
    }

    /// The file `name`'s text; a symlink there is an error, not followed.
    pub fn read_to_string(&self, name: &str) -> io::Result<String> {
        check_name(name)?;
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut text = String::new();
        File::from(openat(&self.fd, name, flags, Mode::empty())?).read_to_string(&mut text)?;
        Ok(text)
    }

    /// Whether `name` is a regular file here (a symlink is not).
    pub fn is_file(&self, name: &str) -> bool {
        check_name(name).is_ok()
            && fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok_and(|st| {
                SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
            })
    }

    /// The names of the regular files here, sorted.
    pub fn file_names(&self) -> io::Result<Vec<String>> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let mut dir = nix::dir::Dir::openat(&self.fd, ".", flags, Mode::empty())?;
        let mut names = Vec::new();
        for entry in dir.iter() {
            if let Ok(name) = entry?.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        names.retain(|n| self.is_file(n));
        names.sort();
        Ok(names)
    }
}

/// Why `path` did not open: a symlink (with `O_DIRECTORY` it fails as "not a directory", without
/// it as `ELOOP`) or what the kernel said.
fn open_error(path: &Path, e: Errno) -> OutDirError {
    let is_link = || std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    match e {
        Errno::ELOOP => OutDirError::Symlink,
        Errno::ENOTDIR if is_link() => OutDirError::Symlink,
        e => OutDirError::Io(e.into()),
    }
}

/// Refuses a folder someone else owns, or one others may write in without the sticky bit (they
/// could rename or delete our files there and put their own in place).
fn check_closed_to_others(fd: &OwnedFd) -> Result<(), OutDirError> {
    let st = fstat(fd).map_err(|e| OutDirError::Io(e.into()))?;
    let me = geteuid().as_raw();
    if st.st_uid != me {
        return Err(OutDirError::ForeignOwner {
            owner: st.st_uid,
            me,
        });
    }
    let mode = st.st_mode & 0o7777;
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky {
        return Err(OutDirError::OpenToOthers { mode });
    }
    Ok(())
}

/// A file name of this folder: one component, never a path.
fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a file name"),
        ));
    }
    Ok(())
}

/// `.<name>.<pid>-<counter>-<clock>.tmp`: hidden, unique in this process by the counter, across
/// processes by the pid, and not guessable in advance by the clock.
fn temporary_name(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        ".{name}.{}-{}-{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        crate::sys::clock::monotonic_ns()
    )
}

/// A fresh folder under the temporary directory, removed with its contents on drop (tests).
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct Scratch(pub PathBuf);

#[cfg(test)]
impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "lockfair-{tag}-{}-{}",
            std::process::id(),
            crate::sys::clock::monotonic_ns()
        ));
        DirBuilder::new().mode(0o700).create(&dir).unwrap();
        Scratch(dir)
    }
}

#[cfg(test)]
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    const VICTIM: &[u8] = b"the victim's own bytes\n";

    /// A file outside the output folder that a planted link points to.
    fn victim(scratch: &Scratch) -> PathBuf {
        let victim = scratch.0.join("victim");
        std::fs::write(&victim, VICTIM).unwrap();
        victim
    }

    /// The names in `dir` that look like our temporaries.
    fn temporaries(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn a_link_planted_at_the_name_is_replaced_and_its_target_untouched() {
        let scratch = Scratch::new("outdir-final");
        let victim = victim(&scratch);
        let out = scratch.0.join("out");
        std::fs::create_dir(&out).unwrap();
        symlink(&victim, out.join("summary.md")).unwrap();
        let dir = OutDir::open(&out).unwrap();
        dir.write("summary.md", b"report").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), VICTIM);
        let meta = std::fs::symlink_metadata(out.join("summary.md")).unwrap();
        assert!(meta.file_type().is_file(), "the link became a regular file");
        assert_eq!(meta.mode() & 0o7777 & !0o644, 0, "at most rw-r--r--");
        assert_eq!(dir.read_to_string("summary.md").unwrap(), "report");
        assert!(temporaries(&out).is_empty());
    }

    #[test]
    fn a_link_planted_at_a_temporary_name_is_never_written_through() {
        let scratch = Scratch::new("outdir-tmp");
        let victim = victim(&scratch);
        let out = scratch.0.join("out");
        std::fs::create_dir(&out).unwrap();
        // The name the atomic write used to take, and the very name the next try will take.
        symlink(&victim, out.join("summary.md.tmp")).unwrap();
        symlink(&victim, out.join(".summary.md.planted.tmp")).unwrap();
        let dir = OutDir::open(&out).unwrap();
        let mut tries = 0;
        dir.write_via("summary.md", b"report", |name| {
            tries += 1;
            if tries == 1 {
                ".summary.md.planted.tmp".to_string()
            } else {
                temporary_name(name)
            }
        })
        .unwrap();
        assert_eq!(tries, 2, "the taken name was given up for another");
        assert_eq!(std::fs::read(&victim).unwrap(), VICTIM);
        assert_eq!(
            std::fs::read_to_string(out.join("summary.md")).unwrap(),
            "report"
        );
        let mut left = temporaries(&out);
        left.sort();
        assert_eq!(
            left,
            [".summary.md.planted.tmp", "summary.md.tmp"],
            "only the planted links"
        );
        for planted in left {
            let meta = std::fs::symlink_metadata(out.join(planted)).unwrap();
            assert!(meta.file_type().is_symlink());
        }
    }

    #[test]
    fn a_failed_rename_leaves_no_temporary_behind() {
        let scratch = Scratch::new("outdir-fail");
        let out = scratch.0.join("out");
        // A non-empty directory under the name: nothing can be renamed over it.
        std::fs::create_dir_all(out.join("summary.md/inside")).unwrap();
        let dir = OutDir::open(&out).unwrap();
        assert!(dir.write("summary.md", b"report").is_err());
        assert!(temporaries(&out).is_empty());
        assert!(out.join("summary.md/inside").is_dir());
    }

    #[test]
    fn missing_folders_are_created_and_names_with_a_slash_refused() {
        let scratch = Scratch::new("outdir-new");
        let out = scratch.0.join("a/b/c");
        let dir = OutDir::open(&out).unwrap();
        dir.write("x.svg", b"<svg/>").unwrap();
        assert!(dir.is_file("x.svg"));
        assert_eq!(dir.file_names().unwrap(), ["x.svg"]);
        let mode = std::fs::metadata(&out).unwrap().mode() & 0o7777;
        assert_eq!(mode & 0o022, 0, "made closed to other writers: {mode:o}");
        let e = dir.write("../escape", b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(!scratch.0.join("a/b/escape").exists());
    }

    #[test]
    fn a_folder_of_another_uid_is_refused() {
        if !geteuid().is_root() {
            println!("skipped: only root can give a folder to another uid");
            return;
        }
        let scratch = Scratch::new("outdir-foreign");
        let out = scratch.0.join("theirs");
        std::fs::create_dir(&out).unwrap();
        std::os::unix::fs::chown(&out, Some(65534), Some(65534)).unwrap();
        let e = OutDir::open(&out).unwrap_err();
        assert!(
            matches!(
                e,
                OutDirError::ForeignOwner {
                    owner: 65534,
                    me: 0
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "it belongs to uid 65534, not to you (uid 0); pass an --out DIR you own"
        );
    }

    #[test]
    fn a_folder_others_can_write_in_needs_the_sticky_bit() {
        let scratch = Scratch::new("outdir-open");
        let out = scratch.0.join("open");
        std::fs::create_dir(&out).unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = OutDir::open(&out).unwrap_err();
        assert!(
            matches!(e, OutDirError::OpenToOthers { mode: 0o777 }),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("it is mode 777: other users can replace files in it")
        );
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let dir = OutDir::open(&out).unwrap();
        dir.write("summary.json", b"{}").unwrap();
        assert_eq!(dir.read_to_string("summary.json").unwrap(), "{}");
    }

    #[test]
    fn a_folder_that_is_a_symlink_is_refused() {
        let scratch = Scratch::new("outdir-link");
        let real = scratch.0.join("real");
        std::fs::create_dir(&real).unwrap();
        let link = scratch.0.join("link");
        symlink(&real, &link).unwrap();
        for given in [
            link.clone(),
            scratch.0.join("link/"),
            scratch.0.join("link/."),
        ] {
            let e = OutDir::open(&given).unwrap_err();
            assert!(
                matches!(e, OutDirError::Symlink),
                "{}: {e:?}",
                given.display()
            );
        }
        assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0);
    }
}
