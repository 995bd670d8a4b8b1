//! Where mosaicctl finds the API and its token: flag > environment (`MOSAIC_API`,
//! `MOSAIC_TOKEN`) > config file (`$XDG_CONFIG_HOME/mosaic/ctl.toml`, else
//! `~/.config/mosaic/ctl.toml`, with `api = "..."` and `token = "..."`) > default.
//!
//! Resolution takes the environment as a function so tests never touch the process environment.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use mosaic_common::Sensitive;
use serde::Deserialize;

use crate::DEFAULT_API;

/// Where a setting came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// An environment variable.
    Env,
    /// The config file.
    File,
    /// The built-in default.
    Default,
}

/// The resolved connection settings.
#[derive(Clone, Debug)]
pub struct CtlConfig {
    /// API base URL.
    pub api: url::Url,
    /// Where `api` came from.
    pub api_source: Source,
    /// Bearer token, if any.
    pub token: Option<Sensitive<String>>,
    /// Where `token` came from (`Default` when unset).
    pub token_source: Source,
}

/// The config file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    api: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

/// The config file path: `$XDG_CONFIG_HOME/mosaic/ctl.toml` (if set and absolute), else
/// `$HOME/.config/mosaic/ctl.toml`; `None` without either.
pub fn config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let non_empty = |k: &str| env(k).filter(|v| !v.is_empty());
    let base = non_empty("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| non_empty("HOME").map(|h| Path::new(&h).join(".config")))?;
    Some(base.join("mosaic").join("ctl.toml"))
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    use figment::providers::Format as _;
    figment::Figment::from(figment::providers::Toml::string(&text))
        .extract::<FileConfig>()
        .map_err(|e| {
            anyhow::anyhow!(
                "{} is not a valid mosaicctl config ({}): write `api = \"URL\"` and `token = \"TOKEN\"`",
                path.display(),
                e.kind
            )
        })
}

/// Resolves the settings: `flag_*` from the command line, `env` for variables, `file` the config
/// file to read (absent file = no settings).
pub fn resolve(
    flag_api: Option<url::Url>,
    flag_token: Option<Sensitive<String>>,
    env: &dyn Fn(&str) -> Option<String>,
    file: Option<&Path>,
) -> anyhow::Result<CtlConfig> {
    let env_var = |k: &str| env(k).filter(|v| !v.is_empty());
    // The file is read only when something is still missing.
    let need_file = (flag_api.is_none() && env_var("MOSAIC_API").is_none())
        || (flag_token.is_none() && env_var("MOSAIC_TOKEN").is_none());
    let from_file = match (need_file, file) {
        (true, Some(path)) => read_file(path)?,
        _ => FileConfig::default(),
    };

    let (api, api_source) = if let Some(url) = flag_api {
        (url, Source::Flag)
    } else if let Some(text) = env_var("MOSAIC_API") {
        let url = crate::parse_api_url(&text).map_err(|e| anyhow::anyhow!("MOSAIC_API: {e}"))?;
        (url, Source::Env)
    } else if let Some(text) = from_file.api.filter(|s| !s.is_empty()) {
        let where_ = file.map(|p| p.display().to_string()).unwrap_or_default();
        let url = crate::parse_api_url(&text).map_err(|e| anyhow::anyhow!("{where_}: api: {e}"))?;
        (url, Source::File)
    } else {
        let url = crate::parse_api_url(DEFAULT_API).map_err(anyhow::Error::msg)?;
        (url, Source::Default)
    };

    let (token, token_source) = if let Some(t) = flag_token.filter(|t| !t.expose().is_empty()) {
        (Some(t), Source::Flag)
    } else if let Some(t) = env_var("MOSAIC_TOKEN") {
        (Some(Sensitive::new(t)), Source::Env)
    } else if let Some(t) = from_file.token.filter(|t| !t.is_empty()) {
        (Some(Sensitive::new(t)), Source::File)
    } else {
        (None, Source::Default)
    };

    Ok(CtlConfig {
        api,
        api_source,
        token,
        token_source,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ctl.toml");
        std::fs::write(
            &file,
            "api = \"http://file:5681\"\ntoken = \"file-token\"\n",
        )
        .unwrap();
        let env = env_of(&[
            ("MOSAIC_API", "http://env:5681"),
            ("MOSAIC_TOKEN", "env-token"),
        ]);
        let none = env_of(&[]);

        let c = resolve(
            Some(url("http://flag:5681")),
            Some(Sensitive::new("flag-token".into())),
            &env,
            Some(&file),
        )
        .unwrap();
        assert_eq!(
            (c.api.as_str(), c.api_source, c.token_source),
            ("http://flag:5681/", Source::Flag, Source::Flag)
        );
        assert_eq!(c.token.unwrap().expose(), "flag-token");

        let c = resolve(None, None, &env, Some(&file)).unwrap();
        assert_eq!((c.api.host_str(), c.api_source), (Some("env"), Source::Env));
        assert_eq!(c.token.unwrap().expose(), "env-token");

        let c = resolve(None, None, &none, Some(&file)).unwrap();
        assert_eq!(
            (c.api.host_str(), c.api_source, c.token_source),
            (Some("file"), Source::File, Source::File)
        );
        assert_eq!(c.token.unwrap().expose(), "file-token");

        let c = resolve(None, None, &none, Some(&dir.path().join("missing.toml"))).unwrap();
        assert_eq!(
            (c.api.as_str(), c.api_source),
            ("http://127.0.0.1:5681/", Source::Default)
        );
        assert!(c.token.is_none());

        // Mixed: api from the environment, token from the file; empty values count as unset.
        let env = env_of(&[("MOSAIC_API", "http://env:5681"), ("MOSAIC_TOKEN", "")]);
        let c = resolve(None, None, &env, Some(&file)).unwrap();
        assert_eq!((c.api_source, c.token_source), (Source::Env, Source::File));
    }

    #[test]
    fn bad_values_name_their_source() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ctl.toml");
        std::fs::write(&file, "api = \"ftp://x\"\n").unwrap();
        let err = resolve(None, None, &env_of(&[]), Some(&file)).unwrap_err();
        assert!(err.to_string().contains("ctl.toml: api:"), "{err}");
        let err = resolve(None, None, &env_of(&[("MOSAIC_API", "nope")]), None).unwrap_err();
        assert!(err.to_string().starts_with("MOSAIC_API:"), "{err}");
        std::fs::write(&file, "tokn = \"s3cret\"\n").unwrap();
        let err = resolve(None, None, &env_of(&[]), Some(&file)).unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert!(err.to_string().contains("tokn"), "{err}");
    }

    #[test]
    fn config_path_respects_xdg() {
        let p = config_path(&env_of(&[("XDG_CONFIG_HOME", "/xdg"), ("HOME", "/home/u")]));
        assert_eq!(p, Some(PathBuf::from("/xdg/mosaic/ctl.toml")));
        let p = config_path(&env_of(&[
            ("XDG_CONFIG_HOME", "relative"),
            ("HOME", "/home/u"),
        ]));
        assert_eq!(p, Some(PathBuf::from("/home/u/.config/mosaic/ctl.toml")));
        let p = config_path(&env_of(&[("HOME", "/home/u")]));
        assert_eq!(p, Some(PathBuf::from("/home/u/.config/mosaic/ctl.toml")));
        assert_eq!(config_path(&env_of(&[])), None);
    }
}
