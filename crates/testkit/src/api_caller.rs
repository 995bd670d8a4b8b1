//! Calling a control plane's HTTP API as a chosen caller, for the tests of who may use it (the
//! global's and the zone's API share `mosaic_runtime::api_auth`): a client bound to a source
//! address, the environment that exposes an API beyond loopback, and the checks on what a
//! refused caller or a refused start gets.

use std::{
    net::{IpAddr, SocketAddr},
    path::Path,
    time::Duration,
};

use anyhow::Context as _;
use reqwest::Method;

use crate::ports::non_loopback_local_ip;

/// A real remote caller for this machine: one of its non-loopback addresses, talking to an API
/// on the wildcard address; `None` on a machine with loopback only, where the tests make the
/// loopback caller non-admin instead (`localhost_is_admin = false`), which takes the same path.
/// Says which on stderr.
pub fn remote_caller() -> Option<IpAddr> {
    let remote = non_loopback_local_ip();
    match remote {
        Some(ip) => eprintln!("remote caller: {ip}"),
        None => eprintln!(
            "this machine has no non-loopback address: the remote path runs with localhost_is_admin = false"
        ),
    }
    remote
}

/// The `MOSAIC_API__*` variables that put an API on `port` of the wildcard address (of
/// `remote`'s family) with the admin token in `admin_token_file`, loopback callers admins only
/// when there is a real remote caller.
pub fn exposed_api_env(
    remote: Option<IpAddr>,
    port: u16,
    admin_token_file: &Path,
) -> [(&'static str, String); 3] {
    let listen = match remote {
        Some(IpAddr::V6(_)) => format!("[::]:{port}"),
        _ => format!("0.0.0.0:{port}"),
    };
    let localhost_is_admin = if remote.is_some() { "true" } else { "false" };
    [
        ("MOSAIC_API__LISTEN", listen),
        (
            "MOSAIC_API__ADMIN_TOKEN_FILE",
            admin_token_file.display().to_string(),
        ),
        (
            "MOSAIC_API__LOCALHOST_IS_ADMIN",
            localhost_is_admin.to_owned(),
        ),
    ]
}

/// An HTTP client whose connections come from `source`.
pub fn client_from(source: IpAddr) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .local_address(source)
        .timeout(Duration::from_secs(20))
        .build()
        .context("building an HTTP client")
}

/// The remote caller's client and the API's base URL as it reaches it (`http://<remote>:<port>`);
/// without a remote address, a loopback client and `local_base`.
pub fn remote_client(
    remote: Option<IpAddr>,
    port: u16,
    local_base: &str,
) -> anyhow::Result<(reqwest::Client, String)> {
    Ok(match remote {
        Some(ip) => (
            client_from(ip)?,
            format!("http://{}", SocketAddr::new(ip, port)),
        ),
        None => (
            client_from(IpAddr::from([127, 0, 0, 1]))?,
            local_base.to_owned(),
        ),
    })
}

/// One request: its status and body text. `body` is `(content type, text)`.
pub async fn call(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
) -> anyhow::Result<(u16, String)> {
    let mut req = http.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some((content_type, text)) = body {
        req = req
            .header("content-type", content_type)
            .body(text.to_string());
    }
    let resp = req.send().await.with_context(|| url.to_owned())?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.unwrap_or_default()))
}

/// Whether `body` is Kuma's error body for a missing token: JSON with `status` 401 and a
/// `detail` that names the `Authorization: Bearer` header to send.
pub fn asks_for_bearer_token(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body).is_ok_and(|e| {
        e["status"] == 401
            && e["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("Authorization: Bearer")
    })
}

/// A file's permission bits (`0o600` for an owner-only file).
pub fn file_mode(path: &Path) -> anyhow::Result<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).with_context(|| path.display().to_string())?;
    Ok(meta.permissions().mode() & 0o777)
}

/// A token file's contents without surrounding white space.
pub fn read_token(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    Ok(text.trim().to_string())
}

/// Checks a server's refusal to start with its API reachable from other hosts and no
/// `api.admin_token_file`: stderr has one `error: ` line naming the reason, the key and its
/// variable, the loopback address to use instead and the token it generated into
/// `<data_dir>/admin-token`, which is owner-only (0600) and ready to use.
pub fn check_exposed_api_refusal(stderr: &str, data_dir: &Path) -> anyhow::Result<()> {
    let line =
        crate::cli::error_line(stderr).with_context(|| format!("no error line: {stderr}"))?;
    let generated = data_dir.join("admin-token");
    for needle in [
        "reachable from other hosts",
        "api.admin_token_file",
        "MOSAIC_API__ADMIN_TOKEN_FILE",
        "127.0.0.1:0",
        &generated.display().to_string(),
    ] {
        anyhow::ensure!(line.contains(needle), "{needle}: {line}");
    }
    let mode = file_mode(&generated)?;
    anyhow::ensure!(mode == 0o600, "{}: mode {mode:o}", generated.display());
    Ok(())
}

/// Checks that `http` is refused on each of `requests` (method, path below `base`; a PUT sends
/// `put_body`): 401 without a token, with Kuma's error body asking for a bearer token (but for
/// HEAD), and 403 with a wrong token; no answer contains any of `never_shown`.
pub async fn check_refused(
    http: &reqwest::Client,
    base: &str,
    requests: &[(Method, &str)],
    put_body: Option<(&str, &str)>,
    never_shown: &[&str],
) -> anyhow::Result<()> {
    for (method, path) in requests {
        let url = format!("{base}{path}");
        let body = put_body.filter(|_| *method == Method::PUT);
        let (status, text) = call(http, method.clone(), &url, None, body).await?;
        anyhow::ensure!(status == 401, "{method} {path}: {status} {text}");
        if *method != Method::HEAD {
            anyhow::ensure!(asks_for_bearer_token(&text), "{text}");
        }
        let wrong = Some("not-the-token");
        let (status, wrong_text) = call(http, method.clone(), &url, wrong, body).await?;
        anyhow::ensure!(status == 403, "{method} {path}: {status} {wrong_text}");
        for hidden in never_shown {
            anyhow::ensure!(
                !text.contains(hidden) && !wrong_text.contains(hidden),
                "{method} {path}: an answer shows {hidden:?}"
            );
        }
    }
    Ok(())
}

/// Checks that `GET url` answers `http` 401 without a token and 200 with `token`.
pub async fn check_needs_token(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<()> {
    let (status, text) = call(http, Method::GET, url, None, None).await?;
    anyhow::ensure!(status == 401, "{url} without a token: {status} {text}");
    let (status, text) = call(http, Method::GET, url, Some(token), None).await?;
    anyhow::ensure!(status == 200, "{url} with the token: {status} {text}");
    Ok(())
}

/// Checks that `GET /ready` and `GET /healthy` below `base` answer 200 to `http` without a token.
pub async fn check_health_open(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    for path in ["/ready", "/healthy"] {
        let (status, text) = call(http, Method::GET, &format!("{base}{path}"), None, None).await?;
        anyhow::ensure!(status == 200, "{path}: {status} {text}");
    }
    Ok(())
}

/// Runs `binary run` in `dir` with its API on each wildcard address (`0.0.0.0:0`, `[::]:0`), no
/// `api.admin_token_file`, a data directory of its own and the variables `env()` adds, for at most
/// `wait`; checks that each run exits 1 as [`check_exposed_api_refusal`] says. Each run's stderr.
pub fn check_exposed_api_refuses_to_start(
    binary: &Path,
    dir: &Path,
    mut env: impl FnMut() -> anyhow::Result<Vec<(&'static str, String)>>,
    wait: Duration,
) -> anyhow::Result<Vec<String>> {
    let mut stderrs = Vec::new();
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let data_dir = dir.join(listen.replace([':', '[', ']', '.'], "_"));
        let (code, stderr) = crate::cli::exit_within(
            crate::cli::command(binary, dir)
                .arg("run")
                .env("MOSAIC_STORE__DATA_DIR", &data_dir)
                .env("MOSAIC_API__LISTEN", listen)
                .envs(env()?),
            wait,
        )?;
        anyhow::ensure!(code == 1, "{listen}: {stderr}");
        // The error line says why and what to do; the token it points at is there to use.
        check_exposed_api_refusal(&stderr, &data_dir)?;
        stderrs.push(stderr);
    }
    Ok(stderrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_body_and_exposed_env() {
        let body = r#"{"status":401,"detail":"send Authorization: Bearer <token>"}"#;
        assert!(asks_for_bearer_token(body));
        assert!(!asks_for_bearer_token(
            r#"{"status":403,"detail":"Authorization: Bearer"}"#
        ));
        assert!(!asks_for_bearer_token("not json"));
        let env = exposed_api_env(Some(IpAddr::from([10, 0, 0, 1])), 5681, Path::new("/t"));
        assert_eq!(env[0].1, "0.0.0.0:5681");
        assert_eq!(env[1].1, "/t");
        assert_eq!(env[2].1, "true");
        let env = exposed_api_env(None, 1, Path::new("/t"));
        assert_eq!(env[2].1, "false");
    }
}
