//! Running a Mosaic binary as a user would, to check its command line: none of the test's
//! `MOSAIC_*` or `RUST_LOG` variables, a chosen working directory, and what it printed and exited
//! with (0 ok, 1 runtime error with one `error: ` line, 2 usage error).

use std::{
    ffi::OsStr,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context as _;

/// `binary`, to be run in `dir`, with none of this process's `MOSAIC_*` or `RUST_LOG` variables.
pub fn command(binary: impl AsRef<OsStr>, dir: &Path) -> Command {
    let mut cmd = Command::new(binary);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("MOSAIC_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir);
    cmd
}

/// Runs `cmd` to its end: exit code, standard output, standard error. An error if it cannot
/// start, dies of a signal, or prints what is not UTF-8.
pub fn output(cmd: &mut Command) -> anyhow::Result<(i32, String, String)> {
    let program = cmd.get_program().to_owned();
    let out = cmd
        .output()
        .with_context(|| format!("running {program:?}"))?;
    let code = out
        .status
        .code()
        .with_context(|| format!("{program:?} ended without an exit code ({})", out.status))?;
    let stdout = String::from_utf8(out.stdout).context("its stdout is not UTF-8")?;
    let stderr = String::from_utf8(out.stderr).context("its stderr is not UTF-8")?;
    Ok((code, stdout, stderr))
}

/// Runs `cmd` (no stdin, stdout discarded, stderr captured) until it exits, for at most
/// `timeout`: its exit code and standard error. Still running then: killed, and an error with
/// what it printed.
pub fn exit_within(cmd: &mut Command, timeout: Duration) -> anyhow::Result<(i32, String)> {
    let program = cmd.get_program().to_owned();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {program:?}"))?;
    let start = Instant::now();
    let exited = loop {
        if child.try_wait()?.is_some() {
            break true;
        }
        if start.elapsed() > timeout {
            // Already gone is fine: the output below says what it did.
            let _ = child.kill();
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    anyhow::ensure!(exited, "{program:?} kept running: {stderr}");
    let code = out.status.code().with_context(|| {
        format!(
            "{program:?} ended without an exit code ({}): {stderr}",
            out.status
        )
    })?;
    Ok((code, stderr))
}

/// Runs `binary` with `args` and the extra environment `env` in a new, empty temporary directory
/// whose `config` files (name, text) are written first: exit code, stdout, stderr (see [`output`]).
pub fn run_in_temp_dir(
    binary: impl AsRef<OsStr>,
    config: &[(&str, &str)],
    env: &[(&str, &str)],
    args: &[&str],
) -> anyhow::Result<(i32, String, String)> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    for (name, text) in config {
        std::fs::write(dir.path().join(name), text).with_context(|| format!("writing {name}"))?;
    }
    let mut cmd = command(binary, dir.path());
    cmd.envs(env.iter().copied()).args(args);
    output(&mut cmd)
}

/// `binary run --config FILE` in a new temporary directory, where FILE is `file` holding `text`
/// (`None`: no such file): exit code and stderr. For the tests of configuration errors.
pub fn run_with_config(
    binary: impl AsRef<OsStr>,
    file: &str,
    text: Option<&str>,
) -> anyhow::Result<(i32, String)> {
    let config: Vec<(&str, &str)> = text.map(|text| (file, text)).into_iter().collect();
    let (code, _, stderr) = run_in_temp_dir(binary, &config, &[], &["run", "--config", file])?;
    Ok((code, stderr))
}

/// `binary run` with no config file and the environment `env`, in a new temporary directory:
/// exit code and stderr. For the tests of environment errors.
pub fn run_with_env(
    binary: impl AsRef<OsStr>,
    env: &[(&str, &str)],
) -> anyhow::Result<(i32, String)> {
    let (code, _, stderr) = run_in_temp_dir(binary, &[], env, &["run"])?;
    Ok((code, stderr))
}

/// Checks that `binary run --config FILE`, FILE being `file` holding `text`, exits 1 and that its
/// stderr names every one of `names`; panics showing stderr otherwise.
pub fn assert_config_refused(binary: &str, file: &str, text: &str, names: &[&str]) {
    let (code, err) = run_with_config(binary, file, Some(text)).unwrap();
    assert_refused(code, &err, names);
}

/// Checks that `binary run` with the environment `env` (no config file) exits 1 and that its
/// stderr names every one of `names`; panics showing stderr otherwise.
pub fn assert_env_refused(binary: &str, env: &[(&str, &str)], names: &[&str]) {
    let (code, err) = run_with_env(binary, env).unwrap();
    assert_refused(code, &err, names);
}

fn assert_refused(code: i32, stderr: &str, names: &[&str]) {
    assert_eq!(code, 1, "{stderr}");
    for name in names {
        assert!(
            stderr.contains(name),
            "stderr does not name {name:?}: {stderr}"
        );
    }
}

/// Checks a control plane's `--help` (exit 0, lists `run` and `--log-format`), `run --help` (exit
/// 0, lists `--config`) and `--version` (exit 0, prints `name version`); panics on a mismatch.
pub fn assert_help_and_version(binary: &str, name: &str, version: &str) {
    let run = |args: &[&str]| run_in_temp_dir(binary, &[], &[], args).unwrap();
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("run") && out.contains("--log-format"), "{out}");
    let (code, out, _) = run(&["run", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("--config"), "{out}");
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("{name} {version}"));
}

/// Checks that `binary` exits 2 (a usage error) for an unknown flag, an unknown `run` flag, no
/// command at all, an unknown `--log-format`, and each of `more`; panics naming the arguments
/// otherwise.
pub fn assert_usage_errors_exit_2(binary: &str, more: &[&[&str]]) {
    let common: [&[&str]; 4] = [
        &["--bogus"],
        &["run", "--bogus"],
        &[],
        &["--log-format", "yaml", "run"],
    ];
    for args in common.iter().chain(more) {
        let (code, _, err) = run_in_temp_dir(binary, &[], &[], args).unwrap();
        assert_eq!(code, 2, "{args:?}: {err}");
    }
}

/// Checks that `binary run --config missing.toml` exits 1 with one `error: ` line naming the file.
pub fn assert_missing_config_exits_1(binary: &str) {
    let (code, err) = run_with_config(binary, "missing.toml", None).unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("missing.toml"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

/// The command-line tests every control-plane binary passes, as `#[test]` functions in the
/// calling test file: `help_and_version` ([`assert_help_and_version`] with the calling crate's
/// version), `usage_errors_exit_2` ([`assert_usage_errors_exit_2`]) and
/// `missing_config_file_exits_1_naming_it` ([`assert_missing_config_exits_1`]).
#[macro_export]
macro_rules! control_plane_cli_tests {
    ($binary:expr, $name:literal) => {
        #[test]
        fn help_and_version() {
            $crate::cli::assert_help_and_version($binary, $name, env!("CARGO_PKG_VERSION"));
        }

        #[test]
        fn usage_errors_exit_2() {
            $crate::cli::assert_usage_errors_exit_2($binary, &[]);
        }

        #[test]
        fn missing_config_file_exits_1_naming_it() {
            $crate::cli::assert_missing_config_exits_1($binary);
        }
    };
}

/// `GET path` over plain HTTP/1.1 to a binary listening on loopback `port`, reading for at most
/// `timeout`: the status code and body, or `None` while nothing (or nothing complete) answers.
pub fn http_get(port: u16, path: &str, timeout: Duration) -> Option<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

/// The first line of `stderr` that starts with `error: `.
pub fn error_line(stderr: &str) -> Option<&str> {
    stderr.lines().find(|l| l.starts_with("error: "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_and_exit_within_report_code_and_streams() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = command("sh", dir.path());
        cmd.env("MOSAIC_X", "1")
            .args(["-c", "echo out; echo \"error: $MOSAIC_X-\" >&2; exit 3"]);
        let (code, out, err) = output(&mut cmd).unwrap();
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (3, "out\n", "error: 1-\n")
        );
        let mut cmd = command("sh", dir.path());
        cmd.args(["-c", "echo starting >&2; echo 'error: no' >&2; exit 1"]);
        let (code, err) = exit_within(&mut cmd, Duration::from_secs(10)).unwrap();
        assert_eq!((code, error_line(&err)), (1, Some("error: no")));
        let mut cmd = command("sleep", dir.path());
        cmd.arg("30");
        let err = exit_within(&mut cmd, Duration::from_millis(200)).unwrap_err();
        assert!(err.to_string().contains("kept running"), "{err}");
    }

    #[test]
    fn run_with_config_and_env_run_in_a_fresh_directory() {
        let (code, err) = run_with_config("cat", "c.toml", Some("x = 1")).unwrap();
        assert_eq!(code, 1, "cat has no `run` file: {err}");
        let (code, out, _) = run_in_temp_dir(
            "sh",
            &[("c.toml", "x = 1")],
            &[("V", "v")],
            &["-c", "cat c.toml; echo $V"],
        )
        .unwrap();
        assert_eq!((code, out.as_str()), (0, "x = 1v\n"));
        let (code, _) = run_with_env("true", &[("MOSAIC_X", "1")]).unwrap();
        assert_eq!(code, 0);
    }
}
