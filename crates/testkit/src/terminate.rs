//! Graceful stops of the processes the harnesses run: SIGTERM, as systemd or Kubernetes send it.

use std::{
    process::{Child, Command, ExitStatus},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

/// How long a process may take to exit after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(30);

/// Sends SIGTERM to `child` and waits up to 30 s for it to exit; returns how it exited. Errors
/// (after SIGKILL) if it had to be killed. `what` names the process in errors.
pub(crate) fn stop_gracefully(mut child: Child, what: &str) -> anyhow::Result<ExitStatus> {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .context("running kill -TERM")?;
    anyhow::ensure!(
        status.success(),
        "kill -TERM {} ({what}) failed",
        child.id()
    );
    let start = Instant::now();
    while start.elapsed() < GRACE {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    bail!(
        "{what} did not stop within {} s of SIGTERM",
        GRACE.as_secs()
    )
}
