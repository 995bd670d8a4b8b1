//! Helpers for the configurations' unit tests (feature `test-support`, and this crate's own
//! tests): environments and TOML files to load from, and table-driven checks every server's
//! configuration runs the same way. They panic on failure, as test code does.

use std::{fmt::Debug, io::Write, net::SocketAddr};

use super::LoadConfig;

/// Where a test loads a configuration from: the TOML file's text (if any) and the environment.
pub type Input<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)]);

/// An environment of `(name, value)` pairs for [`LoadConfig::load_from`].
pub fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A temporary `.toml` file holding `text` (removed when dropped).
///
/// # Panics
/// If the file cannot be created or written.
pub fn toml_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .unwrap_or_else(|e| panic!("creating a temporary TOML file: {e}"));
    f.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("writing a temporary TOML file: {e}"));
    f
}

/// `s` as a socket address.
///
/// # Panics
/// If `s` is not one.
pub fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|e| panic!("{s:?} is not a socket address: {e}"))
}

/// Loads `C` from the TOML `file` (if any, written to a temporary file) and `vars`.
///
/// # Panics
/// If the file cannot be written.
pub fn load<C: LoadConfig>(
    file: Option<&str>,
    vars: &[(&str, &str)],
) -> Result<C, super::ConfigError> {
    let f = file.map(toml_file);
    C::load_from(f.as_ref().map(|f| f.path()), env(vars))
}

/// Asserts that `C` loads with nothing set as its `Default`, and returns it.
///
/// # Panics
/// If it does not load, or loads as something else.
pub fn assert_defaults<C: LoadConfig + PartialEq + Debug>() -> C {
    let c = load::<C>(None, &[]).unwrap_or_else(|e| panic!("defaults do not load: {e}"));
    assert_eq!(c, C::default());
    c
}

/// For each `((file, vars), expected)`, asserts that `C` loads from them and `read` of it is
/// `expected`.
///
/// # Panics
/// If a case does not load or reads otherwise.
pub fn assert_loads<C: LoadConfig, T: PartialEq + Debug>(
    read: impl Fn(&C) -> T,
    cases: &[(Input<'_>, T)],
) {
    for ((file, vars), expected) in cases {
        let c = load::<C>(*file, vars).unwrap_or_else(|e| panic!("{file:?} {vars:?}: {e}"));
        assert_eq!(&read(&c), expected, "{file:?} {vars:?}");
    }
}

/// For each `((file, vars), key, says)`, asserts that `C` refuses to load from them with an error
/// naming `key` whose message contains every one of `says`.
///
/// # Panics
/// If a case loads, or fails otherwise.
pub fn assert_rejects<C: LoadConfig + Debug>(cases: &[(Input<'_>, &str, &[&str])]) {
    for ((file, vars), key, says) in cases {
        let err = match load::<C>(*file, vars) {
            Ok(c) => panic!("{file:?} {vars:?} loaded: {c:?}"),
            Err(err) => err,
        };
        assert_eq!(err.key(), Some(*key), "{err}");
        for s in *says {
            assert!(err.to_string().contains(s), "{s:?} not in: {err}");
        }
    }
}

/// Asserts that each of `configs`, written as TOML, loads back the same.
///
/// # Panics
/// If one does not serialize, load, or loads as something else.
pub fn assert_round_trips<C: LoadConfig + PartialEq + Debug>(configs: impl IntoIterator<Item = C>) {
    for config in configs {
        let text = toml::to_string(&config).unwrap_or_else(|e| panic!("{config:?}: {e}"));
        let loaded = load::<C>(Some(&text), &[]).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(loaded, config);
    }
}
