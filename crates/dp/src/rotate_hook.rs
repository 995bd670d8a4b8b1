//! `--exec-on-rotate CMD`: after the files change, `sh -c CMD` runs in the agent's working
//! directory with its stdout and stderr, and with `MOSAIC_DP_CERT_FILE`, `MOSAIC_DP_KEY_FILE` and
//! `MOSAIC_DP_CA_FILE` naming the files. The agent waits for it (up to [`DEFAULT_TIMEOUT`], then
//! kills it and everything it started: the command runs in a process group of its own) and logs
//! how it ended; a failing command is logged, never fatal.

use std::{path::PathBuf, process::Stdio, time::Duration};

/// How long the command may run before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The command and what it is told.
#[derive(Clone, Debug)]
pub struct RotateHook {
    command: String,
    timeout: Duration,
    env: Vec<(&'static str, PathBuf)>,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookOutcome {
    /// Exited with this code (0 is success).
    Exited(i32),
    /// Killed by a signal (or the platform gave no code).
    Signalled,
    /// Ran longer than the timeout and was killed.
    TimedOut,
    /// Could not be started.
    SpawnFailed(String),
}

// === impl RotateHook ===

impl RotateHook {
    /// A hook running `command` with the paths of the three files in its environment.
    pub fn new(command: String, cert: PathBuf, key: PathBuf, ca: PathBuf) -> Self {
        Self {
            command,
            timeout: DEFAULT_TIMEOUT,
            env: vec![
                ("MOSAIC_DP_CERT_FILE", cert),
                ("MOSAIC_DP_KEY_FILE", key),
                ("MOSAIC_DP_CA_FILE", ca),
            ],
        }
    }

    /// Changes the timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The command line.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Runs the command, waits for it and logs the outcome.
    pub async fn run(&self) -> HookOutcome {
        let outcome = self.run_quiet().await;
        let command = self.command.as_str();
        match &outcome {
            HookOutcome::Exited(0) => {
                tracing::info!(command, exit_code = 0, "--exec-on-rotate command succeeded");
            }
            HookOutcome::Exited(code) => {
                tracing::warn!(command, exit_code = code, "--exec-on-rotate command failed");
            }
            HookOutcome::Signalled => {
                tracing::warn!(command, "--exec-on-rotate command was killed by a signal");
            }
            HookOutcome::TimedOut => tracing::warn!(
                command,
                timeout = ?self.timeout,
                "--exec-on-rotate command ran too long and was killed"
            ),
            HookOutcome::SpawnFailed(e) => {
                tracing::warn!(command, error = %e, "--exec-on-rotate command could not start");
            }
        }
        outcome
    }

    async fn run_quiet(&self) -> HookOutcome {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&self.command)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return HookOutcome::SpawnFailed(e.to_string()),
        };
        match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(Ok(status)) => status
                .code()
                .map_or(HookOutcome::Signalled, HookOutcome::Exited),
            Ok(Err(e)) => HookOutcome::SpawnFailed(e.to_string()),
            Err(_) => {
                kill_group(&mut child).await;
                HookOutcome::TimedOut
            }
        }
    }
}

/// Kills the command's process group (its children too), then the command itself.
async fn kill_group(child: &mut tokio::process::Child) {
    #[cfg(unix)]
    if let Some(pid) = child.id() {
        // The group id is the command's pid (process_group(0)); `kill` is POSIX.
        let _ = tokio::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }
    let _ = child.kill().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(cmd: &str, dir: &std::path::Path) -> RotateHook {
        RotateHook::new(
            cmd.to_string(),
            dir.join("cert.pem"),
            dir.join("key.pem"),
            dir.join("ca.pem"),
        )
    }

    #[tokio::test]
    async fn runs_with_the_file_paths_and_reports_exit_codes() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("log");
        let cmd = format!("echo \"$MOSAIC_DP_KEY_FILE\" >> '{}'", log.display());
        assert_eq!(hook(&cmd, tmp.path()).run().await, HookOutcome::Exited(0));
        assert_eq!(
            std::fs::read_to_string(&log).unwrap().trim(),
            tmp.path().join("key.pem").display().to_string()
        );
        assert_eq!(
            hook("exit 3", tmp.path()).run().await,
            HookOutcome::Exited(3)
        );
        assert_eq!(
            hook("kill -9 $$", tmp.path()).run().await,
            HookOutcome::Signalled
        );
    }

    #[tokio::test]
    async fn a_hung_command_is_killed() {
        let tmp = tempfile::tempdir().unwrap();
        let pid_file = tmp.path().join("pid");
        // The grandchild `sleep` must die with the command, not linger.
        let cmd = format!("sleep 30 & echo $! > '{}'; wait", pid_file.display());
        let h = hook(&cmd, tmp.path()).with_timeout(Duration::from_millis(300));
        assert_eq!(h.run().await, HookOutcome::TimedOut);
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        // Gone, or a zombie waiting for init to reap it (Linux /proc).
        let alive = || {
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).is_ok_and(|stat| {
                stat.rsplit(')')
                    .next()
                    .is_some_and(|r| !r.trim_start().starts_with('Z'))
            })
        };
        while alive() {
            assert!(std::time::Instant::now() < deadline, "sleep {pid} survived");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
