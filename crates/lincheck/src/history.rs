//! Operations and histories: what a client asked, what it was answered, and when (nanoseconds
//! since the workload started; an indeterminate operation returns "never").

use std::fmt::{self, Write as _};

/// What a client asked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    /// PUT with `If-None-Match: *` writing `value`.
    Create {
        /// The value written (unique per operation).
        value: String,
    },
    /// PUT with `If-Match: "<expected>"` writing `value`.
    Cas {
        /// The version the write is conditioned on.
        expected: u64,
        /// The value written (unique per operation).
        value: String,
    },
    /// DELETE with `If-Match: "<expected>"`.
    Delete {
        /// The version the delete is conditioned on.
        expected: u64,
    },
    /// `GET ?consistent=true`.
    Read,
    /// A default `GET` (not linearizable; checked by [`crate::check_monotonic`]).
    LocalRead,
}

/// What the client was answered.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// A create or compare-and-set was applied at this version.
    Written {
        /// The version answered (`ETag`).
        version: u64,
    },
    /// 409: the precondition did not hold; nothing changed.
    Conflict,
    /// The delete was applied.
    Deleted,
    /// 404: the key did not exist.
    NotFound,
    /// A read saw this value and version.
    Value {
        /// The value.
        value: String,
        /// Its version.
        version: u64,
    },
    /// Timeout, connection reset or 5xx: the operation may or may not have taken effect.
    Unknown,
}

/// One operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// The client that issued it.
    pub client: usize,
    /// The replica it was sent to (index).
    pub replica: usize,
    /// The key.
    pub key: String,
    /// What was asked.
    pub input: Input,
    /// What was answered.
    pub output: Output,
    /// When it was invoked (ns since start).
    pub call: u64,
    /// When it returned (ns since start; `u64::MAX` when indeterminate).
    pub ret: u64,
}

impl Op {
    /// Whether the answer is unknown.
    pub fn indeterminate(&self) -> bool {
        self.output == Output::Unknown
    }
}

/// A recorded history.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Every operation, in no particular order.
    pub ops: Vec<Op>,
}

fn ms(ns: u64) -> String {
    if ns == u64::MAX {
        "never".to_string()
    } else {
        format!("{:.3}", ns as f64 / 1e6)
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Create { value } => write!(f, "create({value:?})"),
            Input::Cas { expected, value } => write!(f, "cas(if version {expected}, {value:?})"),
            Input::Delete { expected } => write!(f, "delete(if version {expected})"),
            Input::Read => f.write_str("read(consistent)"),
            Input::LocalRead => f.write_str("read(default)"),
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Written { version } => write!(f, "written at version {version}"),
            Output::Conflict => f.write_str("409 conflict"),
            Output::Deleted => f.write_str("deleted"),
            Output::NotFound => f.write_str("404 not found"),
            Output::Value { value, version } => write!(f, "{value:?} at version {version}"),
            Output::Unknown => f.write_str("indeterminate (may or may not have taken effect)"),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:>10} .. {:>10} ms] client {} via replica {} on {}: {} -> {}",
            ms(self.call),
            ms(self.ret),
            self.client,
            self.replica + 1,
            self.key,
            self.input,
            self.output
        )
    }
}

impl History {
    /// Operations on `key`, by invocation time.
    pub fn of_key(&self, key: &str) -> Vec<Op> {
        let mut ops: Vec<Op> = self.ops.iter().filter(|o| o.key == key).cloned().collect();
        ops.sort_by_key(|o| (o.call, o.ret));
        ops
    }

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.ops.iter().map(|o| o.key.clone()).collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// How many operations are indeterminate.
    pub fn indeterminate(&self) -> usize {
        self.ops.iter().filter(|o| o.indeterminate()).count()
    }

    /// The history as text, one operation per line by invocation time, grouped by key.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for key in self.keys() {
            let _ = writeln!(out, "== key {key}");
            for op in self.of_key(&key) {
                let _ = writeln!(out, "{op}");
            }
        }
        out
    }
}

impl History {
    /// Writes `header` (the verdict) and the history as text to `path`.
    pub fn write_to(&self, path: &std::path::Path, header: &str) -> std::io::Result<()> {
        std::fs::write(path, format!("{header}\n\n{}", self.to_text()))
    }

    /// Writes the history with its verdict to `<temp dir>/mosaic-lincheck-<name>-<pid>.txt` (kept
    /// after the test) and answers the path.
    pub fn save(&self, name: &str, header: &str) -> std::io::Result<std::path::PathBuf> {
        let path =
            std::env::temp_dir().join(format!("mosaic-lincheck-{name}-{}.txt", std::process::id()));
        self.write_to(&path, header)?;
        Ok(path)
    }
}
