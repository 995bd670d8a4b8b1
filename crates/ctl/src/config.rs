//! Where mosaicctl finds the API and its token: flag > environment (`MOSAIC_API`,
//! `MOSAIC_TOKEN`, then `MOSAIC_ADMIN_TOKEN_FILE` naming a file that holds the token) > config
//! file (`$XDG_CONFIG_HOME/mosaic/ctl.toml`, else `~/.config/mosaic/ctl.toml`, with
//! `api = "..."` and `token = "..."`) > default. The CA an `https://` API is checked against
//! (kumactl's `--ca-cert-file`) likewise: `--ca-cert-file` > `MOSAIC_CA_CERT_FILE` >
//! `ca_cert_file = "..."` in the file > the system's roots.
//!
//! With no token from any of those, and an API on a loopback IP address (`127.0.0.0/8`, `::1`),
//! the token a global generated beside this directory, `./mosaic-data/global/admin-token` (the
//! default `store.data_dir`), is used when it exists. It is never sent to any other address.
//!
//! Resolution takes the environment as a function so tests never touch the process environment.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use mosaic_core::Sensitive;
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
    /// Found beside the working directory (the generated admin token).
    Found,
}

/// The generated admin token of a global run from the working directory with the defaults.
pub const FOUND_TOKEN_FILE: &str = "mosaic-data/global/admin-token";

/// Where the token came from, as `config-view` says it (never the token itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenOrigin {
    /// `--token`.
    Flag,
    /// `$MOSAIC_TOKEN`.
    Env,
    /// The file `$MOSAIC_ADMIN_TOKEN_FILE` names.
    EnvFile(PathBuf),
    /// `token` in this config file.
    File(PathBuf),
    /// This generated admin token, found beside the working directory (loopback APIs only).
    Found(PathBuf),
    /// No token; `withheld` is a found token file not sent because the API is not loopback.
    NotSet {
        /// The found file that was withheld.
        withheld: Option<PathBuf>,
    },
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
    /// Where `token` came from, in detail.
    pub token_origin: TokenOrigin,
    /// The PEM file of the CA(s) an `https://` API's certificate is checked against, and
    /// where that setting came from.
    pub ca_cert_file: Option<(PathBuf, Source)>,
}

// === impl TokenOrigin ===

impl std::fmt::Display for TokenOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenOrigin::Flag => f.write_str("set (from --token)"),
            TokenOrigin::Env => f.write_str("set (from $MOSAIC_TOKEN)"),
            TokenOrigin::EnvFile(p) => {
                write!(f, "set (from $MOSAIC_ADMIN_TOKEN_FILE: {})", p.display())
            }
            TokenOrigin::File(p) => write!(f, "set (from {})", p.display()),
            TokenOrigin::Found(p) => write!(
                f,
                "set (found {}, sent because the API is on a loopback address)",
                p.display()
            ),
            TokenOrigin::NotSet { withheld: None } => f.write_str("not set"),
            TokenOrigin::NotSet { withheld: Some(p) } => write!(
                f,
                "not set ({} exists but is only sent to an API on a loopback address)",
                p.display()
            ),
        }
    }
}

/// Whether the API's host is a loopback IP address (host names never count).
pub fn is_loopback_api(api: &url::Url) -> bool {
    match api.host() {
        Some(url::Host::Ipv4(ip)) => mosaic_core::api::is_loopback(ip.into()),
        Some(url::Host::Ipv6(ip)) => mosaic_core::api::is_loopback(ip.into()),
        Some(url::Host::Domain(_)) | None => false,
    }
}

/// The token in `path` (trimmed); `what` names where the path came from in errors.
fn read_token_file(path: &Path, what: &str) -> anyhow::Result<Sensitive<String>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "could not read {what} {}: point it at the server's admin-token file (or api.admin_token_file) or unset it",
            path.display()
        )
    })?;
    let token = text.trim();
    anyhow::ensure!(
        !token.is_empty(),
        "{what} {} is empty: point it at a file holding the admin token",
        path.display()
    );
    Ok(Sensitive::new(token.to_string()))
}

/// The config file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    api: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    ca_cert_file: Option<PathBuf>,
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
                "{} is not a valid mosaicctl config ({}): write `api = \"URL\"`, `token = \"TOKEN\"` and `ca_cert_file = \"PATH\"`",
                path.display(),
                e.kind
            )
        })
}

/// The command line's settings.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    /// `--api`.
    pub api: Option<url::Url>,
    /// `--token`.
    pub token: Option<Sensitive<String>>,
    /// `--ca-cert-file`.
    pub ca_cert_file: Option<PathBuf>,
}

/// [`resolve_flags`] with `--api` and `--token` only.
#[cfg(test)]
pub fn resolve(
    flag_api: Option<url::Url>,
    flag_token: Option<Sensitive<String>>,
    env: &dyn Fn(&str) -> Option<String>,
    file: Option<&Path>,
    workdir: &Path,
) -> anyhow::Result<CtlConfig> {
    let flags = Flags {
        api: flag_api,
        token: flag_token,
        ca_cert_file: None,
    };
    resolve_flags(flags, env, file, workdir)
}

/// Resolves the settings: `flags` from the command line, `env` for variables, `file` the config
/// file to read (absent file = no settings), `workdir` where [`FOUND_TOKEN_FILE`] is looked for.
pub fn resolve_flags(
    flags: Flags,
    env: &dyn Fn(&str) -> Option<String>,
    file: Option<&Path>,
    workdir: &Path,
) -> anyhow::Result<CtlConfig> {
    let Flags {
        api: flag_api,
        token: flag_token,
        ca_cert_file: flag_ca,
    } = flags;
    let env_var = |k: &str| env(k).filter(|v| !v.is_empty());
    let flag_token = flag_token.filter(|t| !t.expose().is_empty());
    let flag_ca = flag_ca.filter(|p| !p.as_os_str().is_empty());
    // The file is read only when something is still missing (the CA only for an https API).
    let need_file = (flag_api.is_none() && env_var("MOSAIC_API").is_none())
        || (flag_token.is_none()
            && env_var("MOSAIC_TOKEN").is_none()
            && env_var("MOSAIC_ADMIN_TOKEN_FILE").is_none())
        || (flag_ca.is_none()
            && env_var("MOSAIC_CA_CERT_FILE").is_none()
            && flag_api
                .as_ref()
                .map(|u| u.scheme().to_string())
                .or_else(|| env_var("MOSAIC_API"))
                .is_some_and(|a| a.starts_with("https")));
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

    let ca_cert_file = if let Some(p) = flag_ca {
        Some((p, Source::Flag))
    } else if let Some(p) = env_var("MOSAIC_CA_CERT_FILE") {
        Some((PathBuf::from(p), Source::Env))
    } else {
        from_file
            .ca_cert_file
            .clone()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| (p, Source::File))
    };

    let (token, token_source, token_origin) = if let Some(t) = flag_token {
        (Some(t), Source::Flag, TokenOrigin::Flag)
    } else if let Some(t) = env_var("MOSAIC_TOKEN") {
        (Some(Sensitive::new(t)), Source::Env, TokenOrigin::Env)
    } else if let Some(path) = env_var("MOSAIC_ADMIN_TOKEN_FILE").map(PathBuf::from) {
        let t = read_token_file(&path, "MOSAIC_ADMIN_TOKEN_FILE")?;
        (Some(t), Source::Env, TokenOrigin::EnvFile(path))
    } else if let Some(t) = from_file.token.filter(|t| !t.is_empty()) {
        let path = file.map(Path::to_path_buf).unwrap_or_default();
        (
            Some(Sensitive::new(t)),
            Source::File,
            TokenOrigin::File(path),
        )
    } else {
        let found = workdir.join(FOUND_TOKEN_FILE);
        match (found.is_file(), is_loopback_api(&api)) {
            (true, true) => match read_token_file(&found, "the generated admin token file") {
                Ok(t) => (Some(t), Source::Found, TokenOrigin::Found(found)),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "continuing without a token");
                    (
                        None,
                        Source::Default,
                        TokenOrigin::NotSet { withheld: None },
                    )
                }
            },
            (true, false) => (
                None,
                Source::Default,
                TokenOrigin::NotSet {
                    withheld: Some(found),
                },
            ),
            (false, _) => (
                None,
                Source::Default,
                TokenOrigin::NotSet { withheld: None },
            ),
        }
    };

    Ok(CtlConfig {
        api,
        api_source,
        token,
        token_source,
        token_origin,
        ca_cert_file,
    })
}

/// The CA certificates in `path` (PEM), for [`crate::client::Client::new`].
pub fn read_ca_cert_file(path: &Path, source: Source) -> anyhow::Result<Vec<u8>> {
    let what = match source {
        Source::Flag => "--ca-cert-file",
        Source::Env => "MOSAIC_CA_CERT_FILE",
        _ => "ca_cert_file",
    };
    let pem = std::fs::read(path).with_context(|| {
        format!(
            "could not read {what} {}: point it at the CA the control plane's HTTPS API presents (e.g. <data_dir>/api-server-ca.pem)",
            path.display()
        )
    })?;
    Ok(pem)
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

    /// A working directory without a generated token beside it.
    fn nowhere() -> &'static Path {
        Path::new("/nonexistent/mosaic-ctl-test")
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
            nowhere(),
        )
        .unwrap();
        assert_eq!(
            (c.api.as_str(), c.api_source, c.token_source),
            ("http://flag:5681/", Source::Flag, Source::Flag)
        );
        assert_eq!(c.token.unwrap().expose(), "flag-token");

        let c = resolve(None, None, &env, Some(&file), nowhere()).unwrap();
        assert_eq!((c.api.host_str(), c.api_source), (Some("env"), Source::Env));
        assert_eq!(c.token.unwrap().expose(), "env-token");

        let c = resolve(None, None, &none, Some(&file), nowhere()).unwrap();
        assert_eq!(
            (c.api.host_str(), c.api_source, c.token_source),
            (Some("file"), Source::File, Source::File)
        );
        assert_eq!(c.token.unwrap().expose(), "file-token");

        let c = resolve(
            None,
            None,
            &none,
            Some(&dir.path().join("missing.toml")),
            nowhere(),
        )
        .unwrap();
        assert_eq!(
            (c.api.as_str(), c.api_source),
            ("http://127.0.0.1:5681/", Source::Default)
        );
        assert!(c.token.is_none());

        // Mixed: api from the environment, token from the file; empty values count as unset.
        let env = env_of(&[("MOSAIC_API", "http://env:5681"), ("MOSAIC_TOKEN", "")]);
        let c = resolve(None, None, &env, Some(&file), nowhere()).unwrap();
        assert_eq!((c.api_source, c.token_source), (Source::Env, Source::File));
    }

    #[test]
    fn bad_values_name_their_source() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ctl.toml");
        std::fs::write(&file, "api = \"ftp://x\"\n").unwrap();
        let err = resolve(None, None, &env_of(&[]), Some(&file), nowhere()).unwrap_err();
        assert!(err.to_string().contains("ctl.toml: api:"), "{err}");
        let err = resolve(
            None,
            None,
            &env_of(&[("MOSAIC_API", "nope")]),
            None,
            nowhere(),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("MOSAIC_API:"), "{err}");
        std::fs::write(&file, "tokn = \"s3cret\"\n").unwrap();
        let err = resolve(None, None, &env_of(&[]), Some(&file), nowhere()).unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert!(err.to_string().contains("tokn"), "{err}");
    }

    #[test]
    fn generated_token_is_found_only_for_loopback_apis() {
        let work = tempfile::tempdir().unwrap();
        let found = work.path().join(FOUND_TOKEN_FILE);
        std::fs::create_dir_all(found.parent().unwrap()).unwrap();
        std::fs::write(&found, "generated-token\n").unwrap();
        let none = env_of(&[]);
        for api in [
            "http://127.0.0.1:5681",
            "http://127.3.2.1:5681",
            "http://[::1]:5681",
        ] {
            let c = resolve(Some(url(api)), None, &none, None, work.path()).unwrap();
            assert_eq!(c.token.unwrap().expose(), "generated-token", "{api}");
            assert_eq!(c.token_origin, TokenOrigin::Found(found.clone()));
            assert!(!c.token_origin.to_string().contains("generated-token"));
        }
        // Not loopback, or a host name: never sent.
        for api in [
            "http://10.0.0.1:5681",
            "http://localhost:5681",
            "https://global.example",
            "http://[::ffff:10.0.0.1]:5681",
        ] {
            let c = resolve(Some(url(api)), None, &none, None, work.path()).unwrap();
            assert!(c.token.is_none(), "{api}");
            assert_eq!(
                c.token_origin,
                TokenOrigin::NotSet {
                    withheld: Some(found.clone())
                }
            );
            assert!(c.token_origin.to_string().starts_with("not set ("), "{api}");
        }
        // An explicit token wins over the found one.
        let env = env_of(&[("MOSAIC_TOKEN", "env-token")]);
        let c = resolve(None, None, &env, None, work.path()).unwrap();
        assert_eq!(c.token.unwrap().expose(), "env-token");
        // MOSAIC_ADMIN_TOKEN_FILE: explicit, so sent wherever --api points; after MOSAIC_TOKEN.
        let file = work.path().join("t");
        std::fs::write(&file, "  file-token\n").unwrap();
        let path = file.display().to_string();
        let vars = [("MOSAIC_ADMIN_TOKEN_FILE", path.as_str())];
        let env = env_of(&vars);
        let c = resolve(
            Some(url("http://10.0.0.1:5681")),
            None,
            &env,
            None,
            nowhere(),
        )
        .unwrap();
        assert_eq!(c.token.unwrap().expose(), "file-token");
        assert_eq!(c.token_origin, TokenOrigin::EnvFile(file.clone()));
        let both = [
            ("MOSAIC_ADMIN_TOKEN_FILE", path.as_str()),
            ("MOSAIC_TOKEN", "env-token"),
        ];
        let env = env_of(&both);
        let c = resolve(None, None, &env, None, nowhere()).unwrap();
        assert_eq!(c.token_origin, TokenOrigin::Env);
        let env = env_of(&[("MOSAIC_ADMIN_TOKEN_FILE", "/nonexistent/token")]);
        let err = resolve(None, None, &env, None, nowhere()).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("MOSAIC_ADMIN_TOKEN_FILE") && msg.contains("/nonexistent/token"),
            "{msg}"
        );
        std::fs::write(&file, "\n").unwrap();
        let env = env_of(&vars);
        let err = resolve(None, None, &env, None, nowhere()).unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
    }

    #[test]
    fn ca_cert_file_flag_env_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ctl.toml");
        std::fs::write(
            &file,
            "api = \"https://file:5682\"\nca_cert_file = \"/file/ca.pem\"\n",
        )
        .unwrap();
        let none = env_of(&[]);
        let c = resolve(None, None, &none, Some(&file), nowhere()).unwrap();
        assert_eq!(
            c.ca_cert_file,
            Some((PathBuf::from("/file/ca.pem"), Source::File))
        );
        let env = env_of(&[("MOSAIC_CA_CERT_FILE", "/env/ca.pem")]);
        let c = resolve(None, None, &env, Some(&file), nowhere()).unwrap();
        assert_eq!(
            c.ca_cert_file,
            Some((PathBuf::from("/env/ca.pem"), Source::Env))
        );
        let flags = Flags {
            api: Some(url("https://flag:5682")),
            token: Some(Sensitive::new("t".into())),
            ca_cert_file: Some("/flag/ca.pem".into()),
        };
        let c = resolve_flags(flags, &env, Some(&file), nowhere()).unwrap();
        assert_eq!(
            c.ca_cert_file,
            Some((PathBuf::from("/flag/ca.pem"), Source::Flag))
        );
        // An https --api with a token but no CA still reads the file's CA.
        let flags = Flags {
            api: Some(url("https://flag:5682")),
            token: Some(Sensitive::new("t".into())),
            ca_cert_file: None,
        };
        let c = resolve_flags(flags, &none, Some(&file), nowhere()).unwrap();
        assert_eq!(c.ca_cert_file.map(|(_, s)| s), Some(Source::File));
        let err = read_ca_cert_file(Path::new("/nonexistent/ca.pem"), Source::Flag).unwrap_err();
        assert!(err.to_string().contains("--ca-cert-file"), "{err}");
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
