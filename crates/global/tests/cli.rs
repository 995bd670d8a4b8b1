//! Command-line behaviour of the `mosaic-global` binary: flags, exit codes, config errors.

use std::{
    fs,
    path::Path,
    process::{Command, Output},
};

/// The binary with no inherited `MOSAIC_*`/`RUST_LOG` variables, run in `dir`.
fn bin(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mosaic-global"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("MOSAIC_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir);
    cmd
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    (
        status.code().unwrap(),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

#[test]
fn help_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(bin(dir.path()).arg("--help"));
    assert_eq!(code, 0);
    assert!(out.contains("run") && out.contains("--log-format"), "{out}");
    let (code, out, _) = run(bin(dir.path()).args(["run", "--help"]));
    assert_eq!(code, 0);
    assert!(out.contains("--config"), "{out}");
    let (code, out, _) = run(bin(dir.path()).arg("--version"));
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        format!("mosaic-global {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--bogus"][..],
        &["run", "--bogus"],
        &[],
        &["--log-format", "yaml", "run"],
    ] {
        let (code, _, err) = run(bin(dir.path()).args(args));
        assert_eq!(code, 2, "{args:?}: {err}");
    }
}

#[test]
fn missing_config_file_exits_1_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(bin(dir.path()).args(["run", "--config", "missing.toml"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("missing.toml"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn unknown_key_exits_1_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("global.toml"),
        "[kds]\nlisten = \"0.0.0.0:5685\"\nlisen = \"x\"\n",
    )
    .unwrap();
    let (code, _, err) = run(bin(dir.path()).args(["run", "--config", "global.toml"]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("kds.lisen") && err.contains("global.toml"),
        "{err}"
    );
}

#[test]
fn bad_env_exits_1_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(bin(dir.path())
        .env("MOSAIC_RAFT__PEERS", "1=10.0.0.1:5682,oops")
        .arg("run"));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("MOSAIC_RAFT__PEERS") && err.contains("oops"),
        "{err}"
    );
}

#[test]
fn valid_config_is_logged_then_not_implemented() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("global.toml"),
        "[raft]\nnode_id = 2\npeers = [\"1=a:5682\", \"2=b:5682\"]\n",
    )
    .unwrap();
    let (code, _, err) = run(bin(dir.path())
        .env("MOSAIC_KDS__LISTEN", "127.0.0.1:15685")
        .args(["--log-format", "json", "run", "--config", "global.toml"]));
    assert_eq!(code, 1, "{err}");
    let log = err.lines().next().unwrap();
    let line: serde_json::Value = serde_json::from_str(log).unwrap();
    assert_eq!(
        line["fields"]["message"], "effective configuration",
        "{log}"
    );
    assert!(
        log.contains("127.0.0.1:15685") && log.contains("2=b:5682"),
        "{log}"
    );
    assert!(
        err.contains("error: ") && err.contains("not implemented"),
        "{err}"
    );
    // Nothing long-running yet: no data directory is created.
    assert!(!dir.path().join("mosaic-data").exists());
}
