//! Real `mosaic-dp` processes: a data-plane agent started against a zone's dataplane server with
//! its token and Dataplane written to files, its `--out-dir`, its log and its exit status. Killed
//! when dropped.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::ZoneProcess;

/// What a [`DataplaneAgent`] is started with (the flags of `mosaic-dp run`).
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// `--zone`, e.g. [`ZoneProcess::dp_url`].
    pub zone_url: String,
    /// `--ca-cert-file`, e.g. [`ZoneProcess::dp_ca_path`].
    pub ca_cert_file: PathBuf,
    /// `--mesh`.
    pub mesh: String,
    /// `--name`.
    pub name: String,
    /// The dataplane token (written to the `--token-file`).
    pub token: String,
    /// The Dataplane, YAML or JSON (written to the `--dataplane-file`); see [`dataplane_yaml`].
    pub dataplane: String,
    /// `--exec-on-rotate` (runs in the agent's directory, [`DataplaneAgent::dir`]).
    pub exec_on_rotate: Option<String>,
    /// `RUST_LOG` of the agent (`info`; e.g. `info,mosaic_dp=debug` also logs every ACK).
    pub log_filter: String,
}

impl AgentOptions {
    /// An agent of `zone` for dataplane `name` of `mesh`.
    pub fn new(zone: &ZoneProcess, mesh: &str, name: &str, token: &str, dataplane: &str) -> Self {
        Self {
            zone_url: zone.dp_url(),
            ca_cert_file: zone.dp_ca_path(),
            mesh: mesh.to_string(),
            name: name.to_string(),
            token: token.to_string(),
            dataplane: dataplane.to_string(),
            exec_on_rotate: None,
            log_filter: "info".to_string(),
        }
    }

    /// Sets `--exec-on-rotate`.
    pub fn exec_on_rotate(mut self, command: &str) -> Self {
        self.exec_on_rotate = Some(command.to_string());
        self
    }

    /// Sets the agent's `RUST_LOG`.
    pub fn log_filter(mut self, filter: &str) -> Self {
        self.log_filter = filter.to_string();
        self
    }
}

/// A Universal Dataplane named `name` in `mesh` with one inbound (port 8080) carrying `tags`.
pub fn dataplane_yaml(mesh: &str, name: &str, tags: &[(&str, &str)]) -> String {
    let mut yaml = format!(
        "type: Dataplane\nmesh: {mesh}\nname: {name}\nnetworking:\n  address: 127.0.0.1\n  inbound:\n  - port: 8080\n    tags:\n"
    );
    for (k, v) in tags {
        yaml.push_str(&format!("      {k}: {v}\n"));
    }
    yaml
}

/// The three files an agent writes, as read at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentFiles {
    /// `cert.pem`: leaf, then its chain.
    pub cert: String,
    /// `key.pem`: the leaf's private key.
    pub key: String,
    /// `ca.pem`: the mesh's trust bundle.
    pub ca: String,
}

/// One `mosaic-dp run` process. Its files live in `<root>/dp-<mesh>-<name>[-N]/`: `token`,
/// `dataplane.yaml`, `dp.log` (stdout and stderr) and `out/` (the `--out-dir`).
pub struct DataplaneAgent {
    /// The mesh.
    pub mesh: String,
    /// The dataplane's name.
    pub name: String,
    dir: PathBuf,
    child: Option<Child>,
    exited: Option<ExitStatus>,
}

impl std::fmt::Debug for DataplaneAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataplaneAgent")
            .field("mesh", &self.mesh)
            .field("name", &self.name)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

// === impl DataplaneAgent ===

impl DataplaneAgent {
    /// Writes the token and Dataplane files under `root` and starts `binary` (`mosaic-dp`) with
    /// `RUST_LOG` from the options and no inherited `MOSAIC_*` variables.
    pub fn start(binary: &Path, root: &Path, options: &AgentOptions) -> anyhow::Result<Self> {
        let base = format!("dp-{}-{}", options.mesh, options.name);
        let dir = (1..)
            .map(|n| match n {
                1 => root.join(&base),
                n => root.join(format!("{base}-{n}")),
            })
            .find(|d| !d.exists())
            .context("no free agent directory")?;
        std::fs::create_dir_all(&dir)?;
        let token = dir.join("token");
        let dataplane = dir.join("dataplane.yaml");
        std::fs::write(&token, &options.token).context("writing the token file")?;
        std::fs::write(&dataplane, &options.dataplane).context("writing the Dataplane file")?;
        let log = std::fs::File::create(dir.join("dp.log"))?;
        let mut cmd = Command::new(binary);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("MOSAIC_") {
                cmd.env_remove(key);
            }
        }
        cmd.arg("run")
            .arg("--zone")
            .arg(&options.zone_url)
            .arg("--ca-cert-file")
            .arg(&options.ca_cert_file)
            .arg("--mesh")
            .arg(&options.mesh)
            .arg("--name")
            .arg(&options.name)
            .arg("--token-file")
            .arg(&token)
            .arg("--dataplane-file")
            .arg(&dataplane)
            .arg("--out-dir")
            .arg(dir.join("out"));
        if let Some(hook) = &options.exec_on_rotate {
            cmd.arg("--exec-on-rotate").arg(hook);
        }
        let child = cmd
            .env("RUST_LOG", &options.log_filter)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Self {
            mesh: options.mesh.clone(),
            name: options.name.clone(),
            dir,
            child: Some(child),
            exited: None,
        })
    }

    /// The agent's directory (its working directory, where `--exec-on-rotate` runs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `--out-dir`.
    pub fn out_dir(&self) -> PathBuf {
        self.dir.join("out")
    }

    /// `<out-dir>/cert.pem`.
    pub fn cert_path(&self) -> PathBuf {
        self.out_dir().join("cert.pem")
    }

    /// `<out-dir>/key.pem`.
    pub fn key_path(&self) -> PathBuf {
        self.out_dir().join("key.pem")
    }

    /// `<out-dir>/ca.pem`.
    pub fn ca_path(&self) -> PathBuf {
        self.out_dir().join("ca.pem")
    }

    /// The three files, if all exist (`cert.pem` is written last, so its presence means the set
    /// is complete).
    pub fn files(&self) -> Option<AgentFiles> {
        let read = |p: PathBuf| std::fs::read_to_string(p).ok();
        let cert = read(self.cert_path())?;
        Some(AgentFiles {
            key: read(self.key_path())?,
            ca: read(self.ca_path())?,
            cert,
        })
    }

    /// Whether any of the three files exists.
    pub fn has_any_file(&self) -> bool {
        [self.cert_path(), self.key_path(), self.ca_path()]
            .iter()
            .any(|p| p.exists())
    }

    /// The agent's whole log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dp.log")).unwrap_or_default()
    }

    /// The exit status, if the process has exited (`None` while it runs).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none()
            && let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            self.exited = Some(status);
            self.child = None;
        }
        self.exited
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none() && self.child.is_some()
    }

    /// Polls `check` every 50 ms until it holds; fails after `deadline`, or as soon as the agent
    /// exits while `check` does not hold, with the agent's log.
    pub async fn wait_until(
        &mut self,
        what: &str,
        deadline: Duration,
        mut check: impl FnMut(&Self) -> bool,
    ) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if check(self) {
                return Ok(());
            }
            if let Some(status) = self.exit_status() {
                bail!(
                    "agent {}.{}: {what} did not happen; it exited ({status}); log:\n{}",
                    self.mesh,
                    self.name,
                    self.log()
                );
            }
            if start.elapsed() > deadline {
                bail!(
                    "agent {}.{}: {what} did not happen within {deadline:?}; log:\n{}",
                    self.mesh,
                    self.name,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the three files exist and returns them.
    pub async fn wait_for_files(&mut self, deadline: Duration) -> anyhow::Result<AgentFiles> {
        self.wait_until("cert.pem, key.pem and ca.pem written", deadline, |a| {
            a.files().is_some()
        })
        .await?;
        self.files()
            .context("the files disappeared right after they were written")
    }

    /// Waits until the process exits; returns its status.
    pub async fn wait_exit(&mut self, deadline: Duration) -> anyhow::Result<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.exit_status() {
                return Ok(status);
            }
            if self.child.is_none() {
                bail!("agent {}.{} was killed by the test", self.mesh, self.name);
            }
            if start.elapsed() > deadline {
                bail!(
                    "agent {}.{} still running after {deadline:?}; log:\n{}",
                    self.mesh,
                    self.name,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILLs the process (if running).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for DataplaneAgent {
    fn drop(&mut self) {
        self.kill();
    }
}
