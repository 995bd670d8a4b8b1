//! Command-line behaviour of the `mosaicctl` binary: flags, exit codes, `config-view`.

use std::{path::Path, process::Command};

use mosaic_testkit::cli;

/// The binary with no inherited `MOSAIC_*`/`RUST_LOG` variables, no user config file and no
/// generated admin token beside its working directory.
fn bin() -> Command {
    let mut cmd = cli::command(env!("CARGO_BIN_EXE_mosaicctl"), Path::new("/"));
    cmd.env("XDG_CONFIG_HOME", "/nonexistent/mosaic-test-config");
    cmd
}

/// Exit code, stdout and stderr of a finished run.
fn run(cmd: &mut Command) -> (i32, String, String) {
    cli::output(cmd).unwrap()
}

#[test]
fn help_and_version() {
    let (code, out, _) = run(bin().arg("--help"));
    assert_eq!(code, 0);
    for word in [
        "version",
        "config-view",
        "apply",
        "get",
        "delete",
        "inspect",
        "generate",
        "--api",
        "--token",
        "--log-format",
    ] {
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
    assert_eq!(
        out,
        "api: https://global.example:5681\ntoken: set (from $MOSAIC_TOKEN)\n"
    );
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
    assert_eq!(
        out,
        "api: http://10.0.0.1:5681\ntoken: set (from --token)\n"
    );
}

#[test]
fn config_file_is_read_after_flags_and_env() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("mosaic")).unwrap();
    std::fs::write(
        dir.path().join("mosaic/ctl.toml"),
        "api = \"https://from-file:5681\"\ntoken = \"file-secret\"\n",
    )
    .unwrap();
    let (code, out, _) = run(bin().env("XDG_CONFIG_HOME", dir.path()).arg("config-view"));
    assert_eq!(code, 0);
    let file = dir.path().join("mosaic/ctl.toml");
    assert_eq!(
        out,
        format!(
            "api: https://from-file:5681\ntoken: set (from {})\n",
            file.display()
        )
    );
    assert!(!out.contains("file-secret"));

    let (code, out, _) = run(bin()
        .env("XDG_CONFIG_HOME", dir.path())
        .env("MOSAIC_API", "http://from-env:5681")
        .arg("config-view"));
    assert_eq!(code, 0);
    assert_eq!(
        out,
        format!(
            "api: http://from-env:5681\ntoken: set (from {})\n",
            file.display()
        )
    );
}

#[test]
fn an_unreachable_control_plane_says_what_to_do() {
    // Port 1 on loopback: nothing listens there.
    let (code, _, err) = run(bin().args(["get", "meshes", "--api", "http://127.0.0.1:1"]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot reach the control plane at http://127.0.0.1:1: is mosaic-global running? (set --api)"),
        "{err}"
    );
}

#[test]
fn apply_refuses_invalid_documents_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "type: Mesh\nname: default\n---\ntype: Mesh\nname: Bad\n",
    )
    .unwrap();
    // The API address is unreachable: the run must fail on the document, not the connection.
    let (code, out, err) = run(bin()
        .args(["apply", "--api", "http://127.0.0.1:1", "-f"])
        .arg(&file));
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.starts_with("error: document 2 is invalid; nothing was applied\n  name:"),
        "{err}"
    );
}

#[test]
fn generate_needs_its_arguments() {
    for args in [
        &["generate", "zone-token"][..],
        &["generate", "zone-token", "--zone", "e", "--valid-for", "5q"],
        // Name and tags are optional (Kuma's mesh-wide tokens); a bad type or scope is not.
        &["generate", "dataplane-token", "--type", "gateway"],
        &[
            "generate",
            "zone-token",
            "--zone",
            "e",
            "--scope",
            "cp,admin",
        ],
        &[
            "generate",
            "dataplane-token",
            "--name",
            "x",
            "--tag",
            "novalue",
        ],
        &["get", "widgets"],
        &["get", "meshes", "-o", "xml"],
    ] {
        let (code, _, err) = run(bin().args(args));
        assert_eq!(code, 2, "{args:?}: {err}");
    }
}
