//! Command-line behaviour of the `mosaic-dp` binary: flags, exit codes, file checks, shutdown.

use std::{
    fs,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use mosaic_testkit::cli;

/// The binary with no inherited `MOSAIC_*`/`RUST_LOG` variables, run in `dir`.
fn bin(dir: &Path) -> Command {
    cli::command(env!("CARGO_BIN_EXE_mosaic-dp"), dir)
}

/// Exit code, stdout and stderr of a finished run.
fn run(cmd: &mut Command) -> (i32, String, String) {
    cli::output(cmd).unwrap()
}

const DATAPLANE: &str = "type: Dataplane
mesh: default
name: backend-1
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    tags:
      kuma.io/service: backend
";

/// A complete, valid `run` command line over files created in `dir`.
fn run_args(dir: &Path) -> Vec<String> {
    let ca = mosaic_runtime::tls::generate_ca("test zone CA").unwrap();
    fs::write(dir.join("ca.pem"), ca.cert_pem).unwrap();
    fs::write(dir.join("token"), "dp-token\n").unwrap();
    fs::write(dir.join("dp.yaml"), DATAPLANE).unwrap();
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
fn unusable_file_contents_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &str, &str); 6] = [
        (
            "--ca-cert-file",
            "bad-ca.pem",
            "-----BEGIN CERTIFICATE-----\n",
            "holds no usable PEM certificate",
        ),
        (
            "--token-file",
            "bad-token",
            "dp\u{1}token\n",
            "cannot go in a gRPC header",
        ),
        (
            "--dataplane-file",
            "bad-dp.yaml",
            "type: Dataplane\n",
            "is not a valid Dataplane",
        ),
        (
            "--dataplane-file",
            "mesh.yaml",
            "type: Mesh\nname: default\n",
            "describes a Mesh",
        ),
        (
            "--dataplane-file",
            "other-name.yaml",
            &DATAPLANE.replace("name: backend-1", "name: web-1"),
            "describes name \"web-1\" but --name is \"backend-1\"",
        ),
        (
            "--dataplane-file",
            "other-mesh.yaml",
            &DATAPLANE.replace("mesh: default", "mesh: prod"),
            "describes mesh \"prod\" but --mesh is \"default\"",
        ),
    ];
    for (flag, file, content, want) in cases {
        let mut args = run_args(dir.path());
        fs::write(dir.path().join(file), content).unwrap();
        replace(&mut args, flag, file);
        let (code, _, err) = run(bin(dir.path()).args(&args));
        assert_eq!(code, 1, "{flag} {file}: {err}");
        assert!(
            err.contains(flag) && err.contains(file) && err.contains(want),
            "{err}"
        );
        assert!(
            err.starts_with("error: ") || err.contains("\nerror: "),
            "{err}"
        );
        assert!(
            !err.contains("dp-token"),
            "the token must not be logged: {err}"
        );
    }
}

/// While the zone is unreachable the agent retries; SIGTERM and SIGINT stop it with exit 0.
#[test]
fn signals_stop_the_retrying_agent_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    for signal in ["TERM", "INT"] {
        let mut args = run_args(dir.path());
        // Port 1 on loopback: connection refused, retried forever.
        replace(&mut args, "--zone", "https://127.0.0.1:1");
        replace(&mut args, "--out-dir", &format!("out-{signal}"));
        let log = dir.path().join(format!("stderr-{signal}"));
        let mut child = bin(dir.path())
            .args(&args)
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !fs::read_to_string(&log).unwrap().contains("retrying") {
            assert!(
                child.try_wait().unwrap().is_none(),
                "exited early: {}",
                fs::read_to_string(&log).unwrap()
            );
            assert!(Instant::now() < deadline, "no retry logged");
            std::thread::sleep(Duration::from_millis(50));
        }
        let stderr = fs::read_to_string(&log).unwrap();
        assert!(stderr.contains("retry_in"), "{stderr}");
        let status = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let code = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s.code();
            }
            assert!(Instant::now() < deadline, "did not stop on SIG{signal}");
            std::thread::sleep(Duration::from_millis(50));
        };
        let stderr = fs::read_to_string(&log).unwrap();
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stderr.contains("mosaic-dp stopped"), "{stderr}");
        assert!(
            !stderr.contains("dp-token"),
            "the token must not be logged: {stderr}"
        );
        // The output directory was created, private.
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(dir.path().join(format!("out-{signal}")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
