//! The files in `--out-dir`: `ca.pem` (trust bundle), `key.pem` (private key, mode 0600) and
//! `cert.pem` (leaf + chain).
//!
//! Every file is replaced atomically: the new content goes to a temp file in the same directory
//! (created with its final mode, so a key is never readable by others, not even briefly), is
//! fsynced, then renamed over the old file; the directory is fsynced after the renames. A file
//! whose content is already what it should be is left alone (no rename, no new inode).
//!
//! Order: `ca.pem` first (a bundle that gains a root is in place before any certificate from
//! that root), then `key.pem`, then `cert.pem`, so a reader that sees a new `cert.pem` always
//! finds its key already there. A reader that opens both files between the two renames may pair
//! the old certificate with the new key for that instant; readers should reload when the
//! `--exec-on-rotate` command runs, which happens after all three files are in place.

use std::{
    fs,
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use mosaic_core::Sensitive;

/// File holding the leaf certificate and its chain.
pub const CERT_FILE: &str = "cert.pem";
/// File holding the private key (mode 0600).
pub const KEY_FILE: &str = "key.pem";
/// File holding the mesh's trust bundle.
pub const CA_FILE: &str = "ca.pem";

/// Mode of `key.pem`.
pub const KEY_MODE: u32 = 0o600;
/// Mode of `cert.pem` and `ca.pem` (before the umask).
pub const PUBLIC_MODE: u32 = 0o644;
/// Mode of an output directory the agent creates.
pub const DIR_MODE: u32 = 0o700;

const TMP_SUFFIX: &str = ".tmp";

/// A file operation failed.
#[derive(Debug, thiserror::Error)]
#[error("{action} `{}`: {source}", path.display())]
pub struct FilesError {
    /// What was being done (`cannot write`, ...).
    pub action: &'static str,
    /// The file or directory.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: io::Error,
}

/// The three files' contents.
#[derive(Clone, Copy, Debug)]
pub struct Material<'a> {
    /// `cert.pem`.
    pub cert_chain: &'a str,
    /// `key.pem`.
    pub key: &'a Sensitive<String>,
    /// `ca.pem`.
    pub trust_bundle: &'a str,
}

/// Which files a [`OutDir::write`] replaced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// `ca.pem` changed.
    pub ca: bool,
    /// `key.pem` changed.
    pub key: bool,
    /// `cert.pem` changed.
    pub cert: bool,
}

/// The output directory.
#[derive(Clone, Debug)]
pub struct OutDir {
    dir: PathBuf,
}

// === impl Written ===

impl Written {
    /// Whether any file changed.
    pub fn any(&self) -> bool {
        self.ca || self.key || self.cert
    }

    /// The names of the files that changed, in write order.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.ca, CA_FILE),
            (self.key, KEY_FILE),
            (self.cert, CERT_FILE),
        ]
        .into_iter()
        .filter_map(|(changed, name)| changed.then_some(name))
        .collect()
    }
}

// === impl OutDir ===

impl OutDir {
    /// Uses `dir`, creating it (and missing parents) with mode 0700 if needed, and removes temp
    /// files an interrupted run may have left.
    pub fn prepare(dir: &Path) -> Result<Self, FilesError> {
        let err = |action| {
            move |source| FilesError {
                action,
                path: dir.to_path_buf(),
                source,
            }
        };
        if !dir.exists() {
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
            builder
                .create(dir)
                .map_err(err("cannot create the output directory"))?;
        }
        if !dir.is_dir() {
            return Err(FilesError {
                action: "cannot use the output directory",
                path: dir.to_path_buf(),
                source: io::Error::other("it exists and is not a directory"),
            });
        }
        let out = Self {
            dir: dir.to_path_buf(),
        };
        for entry in fs::read_dir(dir)
            .map_err(err("cannot list the output directory"))?
            .flatten()
        {
            let name = entry.file_name();
            if is_temp_name(&name.to_string_lossy()) {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(out)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Path of one of the files.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes the files whose content differs from `material`, in the documented order. Returns
    /// which ones changed.
    pub fn write(&self, material: &Material<'_>) -> Result<Written, FilesError> {
        let written = Written {
            ca: self.write_file(CA_FILE, material.trust_bundle.as_bytes(), PUBLIC_MODE)?,
            key: self.write_file(KEY_FILE, material.key.expose().as_bytes(), KEY_MODE)?,
            cert: self.write_file(CERT_FILE, material.cert_chain.as_bytes(), PUBLIC_MODE)?,
        };
        if written.any() {
            self.sync_dir()?;
        }
        Ok(written)
    }

    /// Replaces `name` with `contents` unless it already holds them; returns whether it wrote.
    /// A key file that already has the right content but a looser mode is tightened in place.
    fn write_file(&self, name: &str, contents: &[u8], mode: u32) -> Result<bool, FilesError> {
        let path = self.file(name);
        if let Ok(existing) = fs::read(&path)
            && existing == contents
        {
            if mode == KEY_MODE {
                self.tighten(&path)?;
            }
            return Ok(false);
        }
        self.replace(&path, name, contents, mode)?;
        Ok(true)
    }

    /// Makes an existing key file 0600 if it is not.
    #[cfg(unix)]
    fn tighten(&self, path: &Path) -> Result<(), FilesError> {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = fs::metadata(path).map_err(|source| FilesError {
            action: "cannot inspect",
            path: path.to_path_buf(),
            source,
        })?;
        if meta.permissions().mode() & 0o777 != KEY_MODE {
            tracing::warn!(path = %path.display(), mode = format!("{:o}", meta.permissions().mode() & 0o777), "the key file was readable by others; setting mode 0600");
            fs::set_permissions(path, fs::Permissions::from_mode(KEY_MODE)).map_err(|source| {
                FilesError {
                    action: "cannot set mode 0600 on",
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        }
        Ok(())
    }

    #[cfg(not(unix))]
    fn tighten(&self, _path: &Path) -> Result<(), FilesError> {
        Ok(())
    }

    /// Temp file (created with `mode`), fsync, rename over `path`.
    fn replace(
        &self,
        path: &Path,
        name: &str,
        contents: &[u8],
        mode: u32,
    ) -> Result<(), FilesError> {
        let tmp = self.dir.join(temp_name(name));
        let io_err = |action| {
            let tmp = tmp.clone();
            move |source| FilesError {
                action,
                path: tmp,
                source,
            }
        };
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        #[cfg(not(unix))]
        let _ = mode;
        let result = (|| {
            let mut file = options.open(&tmp).map_err(io_err("cannot create"))?;
            file.write_all(contents).map_err(io_err("cannot write"))?;
            file.sync_all().map_err(io_err("cannot fsync"))?;
            drop(file);
            fs::rename(&tmp, path).map_err(|source| FilesError {
                action: "cannot rename a temp file onto",
                path: path.to_path_buf(),
                source,
            })
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Makes the renames durable.
    fn sync_dir(&self) -> Result<(), FilesError> {
        #[cfg(unix)]
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| FilesError {
                action: "cannot fsync the output directory",
                path: self.dir.clone(),
                source,
            })?;
        Ok(())
    }
}

/// `.<name>.<random>.tmp`: hidden, unique, recognisable by [`is_temp_name`].
fn temp_name(name: &str) -> String {
    let n: u64 = rand::random();
    format!(".{name}.{n:016x}{TMP_SUFFIX}")
}

fn is_temp_name(file: &str) -> bool {
    [CERT_FILE, KEY_FILE, CA_FILE]
        .iter()
        .any(|name| file.starts_with(&format!(".{name}.")) && file.ends_with(TMP_SUFFIX))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn inode(path: &Path) -> u64 {
        fs::metadata(path).unwrap().ino()
    }

    fn material<'a>(cert: &'a str, key: &'a Sensitive<String>, ca: &'a str) -> Material<'a> {
        Material {
            cert_chain: cert,
            key,
            trust_bundle: ca,
        }
    }

    #[test]
    fn creates_the_directory_0700_and_writes_every_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        let out = OutDir::prepare(&dir).unwrap();
        assert_eq!(mode(&dir), DIR_MODE);
        let key = Sensitive::new("KEY1".to_string());
        let w = out.write(&material("CERT1", &key, "CA1")).unwrap();
        assert_eq!(
            w,
            Written {
                ca: true,
                key: true,
                cert: true
            }
        );
        assert_eq!(w.names(), vec!["ca.pem", "key.pem", "cert.pem"]);
        assert_eq!(fs::read_to_string(dir.join(CERT_FILE)).unwrap(), "CERT1");
        assert_eq!(fs::read_to_string(dir.join(KEY_FILE)).unwrap(), "KEY1");
        assert_eq!(fs::read_to_string(dir.join(CA_FILE)).unwrap(), "CA1");
        assert_eq!(mode(&dir.join(KEY_FILE)), KEY_MODE);
        // No temp file is left behind.
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn key_is_0600_even_over_a_loose_old_file() {
        let tmp = tempfile::tempdir().unwrap();
        let out = OutDir::prepare(tmp.path()).unwrap();
        let key_path = tmp.path().join(KEY_FILE);
        fs::write(&key_path, "OLD").unwrap();
        fs::set_permissions(&key_path, fs::Permissions::from_mode(0o644)).unwrap();
        let key = Sensitive::new("NEW".to_string());
        out.write(&material("C", &key, "A")).unwrap();
        assert_eq!(mode(&key_path), KEY_MODE);
        // Same content but a loose mode: tightened without a rewrite.
        fs::set_permissions(&key_path, fs::Permissions::from_mode(0o644)).unwrap();
        let before = inode(&key_path);
        let w = out.write(&material("C", &key, "A")).unwrap();
        assert!(!w.any());
        assert_eq!(inode(&key_path), before);
        assert_eq!(mode(&key_path), KEY_MODE);
    }

    #[test]
    fn replaces_atomically_and_only_what_changed() {
        let tmp = tempfile::tempdir().unwrap();
        let out = OutDir::prepare(tmp.path()).unwrap();
        let key = Sensitive::new("K1".to_string());
        out.write(&material("C1", &key, "A1")).unwrap();
        let paths = [CA_FILE, KEY_FILE, CERT_FILE].map(|n| tmp.path().join(n));
        let inodes: Vec<u64> = paths.iter().map(|p| inode(p)).collect();

        // Unchanged: nothing rewritten, same inodes.
        let w = out.write(&material("C1", &key, "A1")).unwrap();
        assert_eq!(w, Written::default());
        assert_eq!(paths.iter().map(|p| inode(p)).collect::<Vec<_>>(), inodes);

        // A reader holding the old file keeps reading the old content (rename, not truncate).
        let mut old_cert = fs::File::open(&paths[2]).unwrap();
        let key2 = Sensitive::new("K2".to_string());
        let w = out.write(&material("C2", &key2, "A1")).unwrap();
        assert_eq!(
            w,
            Written {
                ca: false,
                key: true,
                cert: true
            }
        );
        let mut s = String::new();
        io::Read::read_to_string(&mut old_cert, &mut s).unwrap();
        assert_eq!(s, "C1");
        assert_eq!(fs::read_to_string(&paths[2]).unwrap(), "C2");
        assert_eq!(inode(&paths[0]), inodes[0]);
        assert_ne!(inode(&paths[1]), inodes[1]);
        assert_ne!(inode(&paths[2]), inodes[2]);
    }

    #[test]
    fn stale_temp_files_are_removed_and_others_kept() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(".key.pem.0123456789abcdef.tmp"), "x").unwrap();
        fs::write(tmp.path().join("keep.tmp"), "x").unwrap();
        OutDir::prepare(tmp.path()).unwrap();
        assert!(!tmp.path().join(".key.pem.0123456789abcdef.tmp").exists());
        assert!(tmp.path().join("keep.tmp").exists());
        assert!(is_temp_name(&temp_name(CERT_FILE)));
    }

    #[test]
    fn a_file_in_place_of_the_directory_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, "x").unwrap();
        let err = OutDir::prepare(&file).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
    }
}
