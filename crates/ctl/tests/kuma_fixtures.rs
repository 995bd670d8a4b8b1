//! The Kuma fixture suite: documents taken from Kuma v2.14.3's own tests, goldens and docs
//! (`fixtures/kuma-2.14.3/`, each file naming its source), checked with `mosaicctl validate` as
//! a user moving from Kuma would. What Kuma accepts is accepted; what Kuma refuses is refused,
//! at the field Kuma names; a feature Mosaic does not claim is refused with a message saying so.
//!
//! Each fixture's header says what is expected:
//! - `# expect: accept`: exit 0;
//! - `# expect: refuse FIELD...`: exit 1, and every FIELD is named as `FIELD: <reason>`;
//! - `# expect: refused TEXT`: exit 1, and the output contains TEXT (documents that are not
//!   resources at all, such as broken YAML);
//! - `# expect: unsupported TEXT`: exit 1, and the output contains TEXT (a feature Mosaic does
//!   not claim, named in the message);
//! - `# args: ...` (optional): more `mosaicctl validate` arguments (`--issue` for local CAs).

use std::path::{Path, PathBuf};

use mosaic_testkit::cli;

const BIN: &str = env!("CARGO_BIN_EXE_mosaicctl");

/// What a fixture's header expects.
#[derive(Debug)]
enum Expect {
    Accept,
    Refuse(Vec<String>),
    /// Refused, saying this.
    Says(String),
}

struct Fixture {
    path: PathBuf,
    expect: Expect,
    args: Vec<String>,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/kuma-2.14.3")
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|x| x == "yaml") {
            out.push(path);
        }
    }
}

fn parse(path: PathBuf) -> Fixture {
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("# source: ")),
        "{}: every fixture names its source",
        path.display()
    );
    let header = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .map(str::to_owned)
    };
    let expect =
        header("# expect: ").unwrap_or_else(|| panic!("{}: no `# expect:` line", path.display()));
    let expect = match expect.split_once(' ') {
        None if expect == "accept" => Expect::Accept,
        Some(("refuse", fields)) => {
            Expect::Refuse(fields.split_whitespace().map(str::to_owned).collect())
        }
        Some(("unsupported" | "refused", text)) => Expect::Says(text.to_owned()),
        _ => panic!("{}: unknown expectation {expect:?}", path.display()),
    };
    let args = header("# args: ")
        .map(|a| a.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    Fixture { path, expect, args }
}

fn fixtures() -> Vec<Fixture> {
    let mut paths = Vec::new();
    collect(&fixtures_dir(), &mut paths);
    paths.into_iter().map(parse).collect()
}

/// Runs `mosaicctl validate -f FIXTURE [args]`; a list of what did not go as expected.
fn check(fixture: &Fixture, dir: &Path) -> Option<String> {
    let mut cmd = cli::command(BIN, dir);
    cmd.arg("validate")
        .arg("-f")
        .arg(&fixture.path)
        .args(&fixture.args);
    let (code, out, err) = cli::output(&mut cmd).unwrap();
    let name = fixture
        .path
        .strip_prefix(fixtures_dir())
        .unwrap_or(&fixture.path);
    let shown = || format!("{}: exit {code}\n{out}{err}", name.display());
    match &fixture.expect {
        Expect::Accept => (code != 0).then(|| format!("expected accept; {}", shown())),
        Expect::Refuse(fields) => {
            if code != 1 {
                return Some(format!("expected refusal; {}", shown()));
            }
            let missing: Vec<_> = fields
                .iter()
                .filter(|f| {
                    !out.lines()
                        .any(|l| l.trim_start().starts_with(&format!("{f}: ")))
                })
                .collect();
            (!missing.is_empty())
                .then(|| format!("refused, but not naming {missing:?}; {}", shown()))
        }
        Expect::Says(text) => (code != 1 || !(out.contains(text) || err.contains(text)))
            .then(|| format!("expected a refusal saying {text:?}; {}", shown())),
    }
}

#[test]
fn every_kuma_fixture_is_judged_as_kuma_judges_it() {
    let fixtures = fixtures();
    assert!(
        fixtures.len() >= 30,
        "the suite has {} fixtures",
        fixtures.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let failures: Vec<String> = fixtures
        .iter()
        .filter_map(|f| check(f, dir.path()))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} fixtures were not judged as Kuma judges them:\n\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn both_verdicts_are_in_the_suite() {
    let fixtures = fixtures();
    let accepted = fixtures
        .iter()
        .filter(|f| matches!(f.expect, Expect::Accept))
        .count();
    let refused = fixtures.len() - accepted;
    assert!(
        accepted >= 2 && refused >= 20,
        "{accepted} accepted, {refused} refused"
    );
}
