//! Command-line behaviour of the `mosaic-dp` binary: flags, exit codes, file checks.

use std::{
    fs,
    path::Path,
    process::{Command, Output},
};

/// The binary with no inherited `MOSAIC_*`/`RUST_LOG` variables, run in `dir`.
fn bin(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mosaic-dp"));
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

/// A complete, valid `run` command line over files created in `dir`.
fn run_args(dir: &Path) -> Vec<String> {
    fs::write(dir.join("ca.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
    fs::write(dir.join("token"), "dp-token\n").unwrap();
    fs::write(dir.join("dp.yaml"), "type: Dataplane\n").unwrap();
    [
        "run",
        "--zone",
        "https://zone.example:5678",
        "--ca-cert-file",
        "ca.pem",
        "--mesh",
        "default",
        "--name",
        "backend-1",
        "--token-file",
        "token",
        "--dataplane-file",
        "dp.yaml",
        "--out-dir",
        "out",
        "--exec-on-rotate",
        "kill -HUP 1",
    ]
    .map(String::from)
    .to_vec()
}

fn replace(args: &mut [String], flag: &str, value: &str) {
    let i = args.iter().position(|a| a == flag).unwrap();
    args[i + 1] = value.to_owned();
}

#[test]
fn help_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(bin(dir.path()).args(["run", "--help"]));
    assert_eq!(code, 0);
    for flag in [
        "--zone",
        "--ca-cert-file",
        "--mesh",
        "--name",
        "--token-file",
        "--dataplane-file",
        "--out-dir",
        "--exec-on-rotate",
    ] {
        assert!(out.contains(flag), "{flag}: {out}");
    }
    let (code, out, _) = run(bin(dir.path()).arg("--version"));
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        format!("mosaic-dp {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(bin(dir.path()).arg("--bogus"));
    assert_eq!(code, 2, "{err}");
    // A required flag missing.
    let (code, _, err) = run(bin(dir.path()).args(["run", "--mesh", "m"]));
    assert_eq!(code, 2, "{err}");
    // A zone URL that is not a TLS URL.
    for zone in ["http://zone:5678", "zone:5678", "https://"] {
        let mut args = run_args(dir.path());
        replace(&mut args, "--zone", zone);
        let (code, _, err) = run(bin(dir.path()).args(&args));
        assert_eq!(code, 2, "{zone}: {err}");
        assert!(err.contains("--zone"), "{err}");
    }
}

#[test]
fn unreadable_files_exit_1_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    for flag in ["--ca-cert-file", "--token-file", "--dataplane-file"] {
        let mut args = run_args(dir.path());
        replace(&mut args, flag, "nope.txt");
        let (code, _, err) = run(bin(dir.path()).args(&args));
        assert_eq!(code, 1, "{flag}: {err}");
        assert!(err.contains(flag) && err.contains("nope.txt"), "{err}");
    }
    let mut args = run_args(dir.path());
    fs::write(dir.path().join("empty"), "\n").unwrap();
    replace(&mut args, "--token-file", "empty");
    let (code, _, err) = run(bin(dir.path()).args(&args));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("empty"), "{err}");

    let mut args = run_args(dir.path());
    replace(&mut args, "--out-dir", "token");
    let (code, _, err) = run(bin(dir.path()).args(&args));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not a directory"), "{err}");
}

#[test]
fn valid_flags_then_not_implemented() {
    let dir = tempfile::tempdir().unwrap();
    let args = run_args(dir.path());
    let (code, _, err) = run(bin(dir.path()).args(&args));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("flags are valid"), "{err}");
    assert!(
        err.contains("error: ") && err.contains("not implemented"),
        "{err}"
    );
    assert!(
        !err.contains("dp-token"),
        "the token must not be logged: {err}"
    );
}
