//! Command-line behaviour of the `mosaic-zone` binary: flags, exit codes, config errors.

use std::{
    fs,
    path::Path,
    process::{Command, Output},
};

/// The binary with no inherited `MOSAIC_*`/`RUST_LOG` variables, run in `dir`.
fn bin(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mosaic-zone"));
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
    let (code, out, _) = run(bin(dir.path()).arg("--version"));
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        format!("mosaic-zone {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["--bogus"][..], &["run", "--bogus"], &[]] {
        let (code, _, err) = run(bin(dir.path()).args(args));
        assert_eq!(code, 2, "{args:?}: {err}");
    }
}

#[test]
fn missing_config_file_exits_1_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(bin(dir.path()).args(["run", "--config", "missing.toml"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("missing.toml"), "{err}");
}

#[test]
fn unknown_key_exits_1_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    // `raft` belongs to the global's configuration, not the zone's.
    fs::write(
        dir.path().join("zone.toml"),
        "zone = \"east\"\n[raft]\nnode_id = 1\n",
    )
    .unwrap();
    let (code, _, err) = run(bin(dir.path()).args(["run", "--config", "zone.toml"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("`raft`") && err.contains("zone.toml"), "{err}");
}

#[test]
fn bad_zone_name_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(bin(dir.path()).env("MOSAIC_ZONE", "East_1").arg("run"));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("MOSAIC_ZONE") && err.contains("DNS-1035"),
        "{err}"
    );
}

#[test]
fn env_only_config_is_accepted_then_not_implemented() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(bin(dir.path())
        .env("MOSAIC_ZONE", "east")
        .env("MOSAIC_GLOBAL__ADDRESS", "grpcs://global.example:5685")
        .arg("run"));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("effective configuration") && err.contains("east"),
        "{err}"
    );
    assert!(
        err.contains("error: ") && err.contains("not implemented"),
        "{err}"
    );
}
