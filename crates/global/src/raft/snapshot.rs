//! Snapshot files: the on-disk format and the snapshot directory.
//!
//! A snapshot is one file, self-describing so a restarted replica can serve it again:
//! `MOSAIC-SNAPSHOT-1\n`, then records `tag (1 byte) | key length (u32 BE) | key | value length
//! (u32 BE) | value`: first `M` (the openraft `SnapshotMeta` as JSON, empty key), then `R`
//! (a resource: `ResourceKey` bytes, Universal JSON) and `I` (an internal record), and last `E`
//! (empty key, the number of `R` and `I` records as u64 BE). A file without its `E` record is
//! incomplete and refused.
//!
//! Files are written as `*.part`, fsynced, then renamed to `*.snap` (and the directory fsynced), so a
//! `*.snap` is always complete. Only the newest `*.snap` is kept.

use std::{
    fs::{self, File},
    io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use openraft::{BasicNode, SnapshotMeta};

const MAGIC: &[u8] = b"MOSAIC-SNAPSHOT-1\n";
const TAG_META: u8 = b'M';
const TAG_RESOURCE: u8 = b'R';
const TAG_INTERNAL: u8 = b'I';
const TAG_END: u8 = b'E';
/// Largest key or value accepted when reading, so a corrupt length cannot exhaust memory.
const MAX_FIELD: u32 = 256 * 1024 * 1024;

/// openraft's snapshot metadata for Mosaic's types.
pub type SnapMeta = SnapshotMeta<u64, BasicNode>;

/// A snapshot file: its path and an open handle (kept open so that a newer snapshot replacing it
/// on disk does not disturb a transfer in progress).
#[derive(Debug)]
pub struct SnapshotFile {
    path: PathBuf,
    file: File,
    /// A file being received: removed on drop unless it was promoted (renamed) meanwhile.
    incoming: bool,
}

/// What a snapshot holds.
#[derive(Debug, Default)]
pub struct SnapshotContents {
    /// Resources: `ResourceKey` bytes and Universal JSON.
    pub resources: Vec<(Vec<u8>, Vec<u8>)>,
    /// Internal records.
    pub internal: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Writes a snapshot file record by record.
pub struct SnapshotWriter {
    path: PathBuf,
    out: BufWriter<File>,
    records: u64,
}

/// The snapshot directory.
#[derive(Clone, Debug)]
pub struct SnapshotDir {
    dir: PathBuf,
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn write_record(out: &mut impl Write, tag: u8, key: &[u8], value: &[u8]) -> io::Result<()> {
    let klen = u32::try_from(key.len()).map_err(|_| invalid("snapshot key too long"))?;
    let vlen = u32::try_from(value.len()).map_err(|_| invalid("snapshot value too long"))?;
    out.write_all(&[tag])?;
    out.write_all(&klen.to_be_bytes())?;
    out.write_all(key)?;
    out.write_all(&vlen.to_be_bytes())?;
    out.write_all(value)
}

fn read_field(input: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len);
    if len > MAX_FIELD {
        return Err(invalid(format!(
            "snapshot field of {len} bytes is too large"
        )));
    }
    let mut buf = vec![0u8; len as usize];
    input.read_exact(&mut buf)?;
    Ok(buf)
}

/// Reads one record.
fn read_record(input: &mut impl Read) -> io::Result<(u8, Vec<u8>, Vec<u8>)> {
    let mut tag = [0u8; 1];
    input.read_exact(&mut tag)?;
    let key = read_field(input)?;
    let value = read_field(input)?;
    Ok((tag[0], key, value))
}

fn read_header(input: &mut impl Read) -> io::Result<SnapMeta> {
    let mut magic = vec![0u8; MAGIC.len()];
    input.read_exact(&mut magic)?;
    if magic != MAGIC {
        return Err(invalid("not a Mosaic snapshot file"));
    }
    let (tag, _, value) = read_record(input)?;
    if tag != TAG_META {
        return Err(invalid("snapshot file does not start with its metadata"));
    }
    serde_json::from_slice(&value).map_err(|e| invalid(format!("snapshot metadata: {e}")))
}

fn unique_name(prefix: &str, suffix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{nanos}-{n}{suffix}")
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

// === impl SnapshotFile ===

impl SnapshotFile {
    /// Opens an existing snapshot file.
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            file: File::open(path)?,
            incoming: false,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends received bytes (a snapshot being received).
    pub fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)
    }

    /// Fsyncs what was received.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_all()
    }

    /// A second handle on the same file, positioned at its start.
    pub fn reopen(&self) -> io::Result<File> {
        let mut f = self.file.try_clone()?;
        f.seek(SeekFrom::Start(0))?;
        Ok(f)
    }

    /// Reads the metadata and every record (checking the end record).
    pub fn read_all(&self) -> io::Result<(SnapMeta, SnapshotContents)> {
        let mut input = BufReader::new(self.reopen()?);
        let meta = read_header(&mut input)?;
        let mut contents = SnapshotContents::default();
        loop {
            let (tag, key, value) = read_record(&mut input)
                .map_err(|e| invalid(format!("snapshot file is incomplete or corrupt: {e}")))?;
            match tag {
                TAG_RESOURCE => contents.resources.push((key, value)),
                TAG_INTERNAL => contents.internal.push((key, value)),
                TAG_END => {
                    let count: [u8; 8] = value
                        .as_slice()
                        .try_into()
                        .map_err(|_| invalid("snapshot end record is malformed"))?;
                    let expected = u64::from_be_bytes(count);
                    let got = (contents.resources.len() + contents.internal.len()) as u64;
                    if expected != got {
                        return Err(invalid(format!(
                            "snapshot holds {got} records, its end record says {expected}"
                        )));
                    }
                    return Ok((meta, contents));
                }
                other => return Err(invalid(format!("unknown snapshot record tag {other}"))),
            }
        }
    }
}

impl Drop for SnapshotFile {
    fn drop(&mut self) {
        // A received snapshot openraft did not install (stale vote, older than local state):
        // nothing else will clean it up until the next start.
        if self.incoming
            && let Err(e) = fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove received snapshot");
        }
    }
}

// === impl SnapshotWriter ===

impl SnapshotWriter {
    /// Adds a resource record.
    pub fn resource(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.records += 1;
        write_record(&mut self.out, TAG_RESOURCE, key, value)
    }

    /// Adds an internal record.
    pub fn internal(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.records += 1;
        write_record(&mut self.out, TAG_INTERNAL, key, value)
    }

    /// Writes the end record and fsyncs; the file is still a `*.part`.
    pub fn finish(mut self) -> io::Result<PathBuf> {
        write_record(&mut self.out, TAG_END, &[], &self.records.to_be_bytes())?;
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(self.path)
    }
}

// === impl SnapshotDir ===

impl SnapshotDir {
    /// Opens (creating) the directory and removes unfinished files left by a crash.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "part") {
                fs::remove_file(&path)?;
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The newest complete snapshot, if any (older ones are removed).
    pub fn current(&self) -> io::Result<Option<(SnapMeta, PathBuf)>> {
        let mut best: Option<(SnapMeta, PathBuf)> = None;
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "snap") {
                continue;
            }
            let meta = match File::open(&path).and_then(|f| read_header(&mut BufReader::new(f))) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable snapshot file");
                    continue;
                }
            };
            if best
                .as_ref()
                .is_none_or(|(b, _)| meta.last_log_id > b.last_log_id)
            {
                best = Some((meta, path));
            }
        }
        if let Some((_, keep)) = &best {
            self.remove_others(keep)?;
        }
        Ok(best)
    }

    /// Starts writing a snapshot described by `meta`.
    pub fn writer(&self, meta: &SnapMeta) -> io::Result<SnapshotWriter> {
        let path = self.dir.join(unique_name("build", ".part"));
        let mut out = BufWriter::new(File::create(&path)?);
        out.write_all(MAGIC)?;
        let json = serde_json::to_vec(meta).map_err(|e| invalid(e.to_string()))?;
        write_record(&mut out, TAG_META, &[], &json)?;
        Ok(SnapshotWriter {
            path,
            out,
            records: 0,
        })
    }

    /// A new empty file to receive a snapshot into.
    pub fn incoming(&self) -> io::Result<SnapshotFile> {
        let path = self.dir.join(unique_name("incoming", ".part"));
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(SnapshotFile {
            path,
            file,
            incoming: true,
        })
    }

    /// Makes a complete, fsynced `*.part` file the current snapshot and removes the others.
    pub fn promote(&self, part: &Path, meta: &SnapMeta) -> io::Result<PathBuf> {
        let name = format!(
            "snapshot-{:020}-{}.snap",
            meta.last_log_id.map(|l| l.index).unwrap_or_default(),
            unique_name("", "").trim_start_matches('-')
        );
        let path = self.dir.join(name);
        fs::rename(part, &path)?;
        sync_dir(&self.dir)?;
        self.remove_others(&path)?;
        Ok(path)
    }

    /// Removes a file (a received snapshot that was not installed).
    pub fn discard(&self, path: &Path) {
        if let Err(e) = fs::remove_file(path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove snapshot file");
        }
    }

    fn remove_others(&self, keep: &Path) -> io::Result<()> {
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path != keep && path.extension().is_some_and(|e| e == "snap") {
                fs::remove_file(&path)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use openraft::{LogId, StoredMembership};

    use super::*;

    #[test]
    fn write_read_and_truncation() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::open(tmp.path()).unwrap();
        let meta = SnapMeta {
            last_log_id: Some(LogId::new(openraft::CommittedLeaderId::new(2, 1), 7)),
            last_membership: StoredMembership::default(),
            snapshot_id: "s".into(),
        };
        let mut w = dir.writer(&meta).unwrap();
        w.resource(b"Mesh/-/a", b"{}").unwrap();
        w.internal(b"k", b"v").unwrap();
        let part = w.finish().unwrap();
        let path = dir.promote(&part, &meta).unwrap();
        let (m, c) = SnapshotFile::open(&path).unwrap().read_all().unwrap();
        assert_eq!(m.last_log_id, meta.last_log_id);
        assert_eq!(c.resources, vec![(b"Mesh/-/a".to_vec(), b"{}".to_vec())]);
        assert_eq!(c.internal, vec![(b"k".to_vec(), b"v".to_vec())]);
        assert_eq!(dir.current().unwrap().unwrap().1, path);

        // A truncated copy is refused.
        let bytes = fs::read(&path).unwrap();
        let cut = tmp.path().join("cut.snap");
        fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
        assert!(SnapshotFile::open(&cut).unwrap().read_all().is_err());
    }
}
