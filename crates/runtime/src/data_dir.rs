//! Owner-only data directories: the stores, generated keys and tokens a server keeps under
//! `store.data_dir` are readable by the user it runs as and nobody else.
//!
//! [`restrict_new_files`] sets the process's umask to 077, so every file and directory the
//! process creates from then on (sled's `db`, `conf`, `blobs/`, snapshot files, certificates) is
//! 0600/0700 whatever library creates it; the server binaries call it first thing.
//! [`prepare`] creates the data directory 0700 and tightens what an earlier version left more
//! open (0644 files, 0755 directories) to owner-only.

use std::{
    io,
    path::{Path, PathBuf},
};

/// `store.data_dir` could not be created or made owner-only.
#[derive(Debug, thiserror::Error)]
#[error(
    "could not create store.data_dir {path:?} or make it owner-only: {source}; check the path and its permissions"
)]
pub struct DataDirError {
    /// The directory.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: io::Error,
}

/// Makes every file and directory the process creates from now on owner-only (umask 077).
pub fn restrict_new_files() {
    #[cfg(unix)]
    {
        use rustix::fs::Mode;
        rustix::process::umask(Mode::from_raw_mode(0o077));
    }
}

/// Creates `dir` (0700) if missing and removes group and other permissions from it and from
/// everything under it (symbolic links are not followed).
pub fn prepare(dir: &Path) -> Result<(), DataDirError> {
    create_owner_only(dir).map_err(|source| DataDirError {
        path: dir.to_path_buf(),
        source,
    })
}

fn create_owner_only(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        restrict_tree(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

#[cfg(unix)]
fn restrict_tree(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !0o077))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            restrict_tree(&entry?.path())?;
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_old_open_data_dir_becomes_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir_all(dir.join("raft/blobs")).unwrap();
        std::fs::write(dir.join("raft/db"), b"x").unwrap();
        std::fs::set_permissions(dir.join("raft/db"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        std::fs::set_permissions(dir.join("raft"), std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("raft")), 0o700);
        assert_eq!(mode(&dir.join("raft/blobs")), 0o700);
        assert_eq!(mode(&dir.join("raft/db")), 0o600);
    }

    #[test]
    fn a_new_data_dir_is_created_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }
}
