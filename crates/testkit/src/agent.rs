//! `bao agent` with auto-auth and an unauthenticated API proxy (Mesh `agentAddress`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tempfile::TempDir;

use crate::client::BaoClient;
use crate::server::{OpenBao, port_clash, tail};
use crate::{READY_TIMEOUT, free_port};

/// A running `bao agent` that authenticates to its server with a static token (`token_file`
/// auto-auth method) and proxies the Vault API on `http://127.0.0.1:PORT` without TLS, adding that
/// token to requests that carry none (`api_proxy { use_auto_auth_token = true }`). Killed on drop.
pub struct Agent {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl OpenBao {
    /// Starts a `bao agent` in front of this server's HTTP listener, auto-authenticating with `token`,
    /// and waits until it proxies an authenticated `auth/token/lookup-self`.
    pub async fn start_agent(&self, token: &str) -> Result<Agent> {
        let dir = tempfile::Builder::new()
            .prefix("mosaic-bao-agent-")
            .tempdir()
            .context("creating temp dir for bao agent")?;
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, token).context("writing agent token file")?;
        let mut agent = Agent {
            child: None,
            port: 0,
            dir,
        };
        let mut last_err = anyhow!("bao agent did not start");
        for _ in 0..5 {
            agent.port = free_port()?;
            let config = format!(
                r#"vault {{
  address = "{server}"
}}
auto_auth {{
  method "token_file" {{
    config = {{
      token_file_path = {token_file:?}
    }}
  }}
}}
api_proxy {{
  use_auto_auth_token = true
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  tls_disable = true
}}
"#,
                server = self.addr(),
                port = agent.port,
            );
            let config_path = agent.dir.path().join("agent.hcl");
            std::fs::write(&config_path, config).context("writing agent config")?;
            match agent.spawn_and_wait(self.bin(), &config_path).await {
                Ok(()) => return Ok(agent),
                Err(e) => {
                    agent.kill();
                    let clash = port_clash(&agent.log_path());
                    last_err = e;
                    if !clash {
                        break;
                    }
                }
            }
        }
        Err(last_err)
    }
}

impl Agent {
    async fn spawn_and_wait(&mut self, bin: &Path, config: &Path) -> Result<()> {
        let log = File::create(self.log_path()).context("creating agent log")?;
        let child = Command::new(bin)
            .arg("agent")
            .arg(format!("-config={}", config.display()))
            .env("HOME", self.dir.path())
            .env_remove("BAO_ADDR")
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_TOKEN")
            .env_remove("VAULT_TOKEN")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {} agent", bin.display()))?;
        self.child = Some(child);
        let probe = BaoClient::new(self.addr(), "")?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                bail!(
                    "bao agent exited early ({status}); log:\n{}",
                    self.log_tail()
                );
            }
            if probe.read("auth/token/lookup-self").await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "bao agent not ready after {READY_TIMEOUT:?}; log:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `http://127.0.0.1:PORT` (plain HTTP; no token needed).
    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The agent's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("agent.log")
    }

    /// The last ~4 KiB of the agent log.
    pub fn log_tail(&self) -> String {
        tail(&self.log_path(), 4096)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}
