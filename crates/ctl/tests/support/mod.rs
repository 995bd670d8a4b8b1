//! What several mosaicctl integration tests share: running mosaicctl against an API as a user
//! would, with no config file and no inherited `MOSAIC_API`/`MOSAIC_TOKEN`.

use std::process::Command;

/// Runs `mosaicctl --api API ARGS...`; its exit code, stdout and stderr.
pub fn ctl(api: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mosaicctl"))
        .args(["--api", api])
        .args(args)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .env_remove("MOSAIC_API")
        .env_remove("MOSAIC_TOKEN")
        .output()
        .expect("run mosaicctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
