//! Command-line behaviour of the `mosaicctl` binary: flags, exit codes, `config-view`.

use std::process::{Command, Output};

/// The binary with no inherited `MOSAIC_*`/`RUST_LOG` variables.
fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mosaicctl"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("MOSAIC_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
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
    let (code, out, _) = run(bin().arg("--help"));
    assert_eq!(code, 0);
    for word in ["version", "config-view", "--api", "--token", "--log-format"] {
        assert!(out.contains(word), "{word}: {out}");
    }
    let version = format!("mosaicctl {}", env!("CARGO_PKG_VERSION"));
    let (code, out, _) = run(bin().arg("--version"));
    assert_eq!((code, out.trim()), (0, version.as_str()));
    let (code, out, _) = run(bin().arg("version"));
    assert_eq!((code, out.trim()), (0, version.as_str()));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["--bogus"][..],
        &["version", "--bogus"],
        &[],
        &["--api", "ftp://x", "version"],
        &["--api", "not a url", "version"],
    ] {
        let (code, _, err) = run(bin().args(args));
        assert_eq!(code, 2, "{args:?}: {err}");
    }
}

#[test]
fn config_view_resolves_flags_and_env() {
    let (code, out, _) = run(bin().arg("config-view"));
    assert_eq!(code, 0);
    assert_eq!(out, "api: http://127.0.0.1:5681\ntoken: not set\n");

    let (code, out, _) = run(bin()
        .env("MOSAIC_API", "https://global.example:5681")
        .env("MOSAIC_TOKEN", "s3cret-token")
        .arg("config-view"));
    assert_eq!(code, 0);
    assert_eq!(out, "api: https://global.example:5681\ntoken: set\n");
    assert!(!out.contains("s3cret"));

    // Flags win over the environment.
    let (code, out, _) = run(bin()
        .env("MOSAIC_API", "https://global.example:5681")
        .args([
            "config-view",
            "--api",
            "http://10.0.0.1:5681",
            "--token",
            "t",
        ]));
    assert_eq!(code, 0);
    assert_eq!(out, "api: http://10.0.0.1:5681\ntoken: set\n");
}
