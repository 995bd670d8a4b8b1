//! `Mosaic`: one `mosaic-global` replica, `mosaic-zone`s joined to it with zone tokens and its
//! KDS CA, and `mosaic-dp` agents with dataplane tokens from the global, all real processes on
//! loopback; with the calls the end-to-end tests make of them.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use base64::Engine as _;
use mosaic_testkit::{
    AgentFiles, AgentOptions, DataplaneAgent, GlobalCluster, ZoneProcess, dataplane_yaml,
    join::{joining_zone, wait_for_kds_ca},
    workspace_binary,
};
use serde_json::{Value, json};

/// Deadline for anything the tests wait for (generous: 2 shared cores).
pub const WAIT: Duration = Duration::from_secs(60);
/// The mesh most tests use.
pub const MESH: &str = "default";

/// One global, its zones, and where the agents' directories go.
pub struct Mosaic {
    /// The global (one replica).
    pub global: GlobalCluster,
    /// The zones, in the order named.
    pub zones: Vec<ZoneProcess>,
    /// `mosaic-dp`.
    pub dp_binary: PathBuf,
}

impl Mosaic {
    /// A single-replica global and one connected zone per name.
    pub async fn start(zones: &[&str]) -> anyhow::Result<Self> {
        Self::start_with(zones, |_, _| {}).await
    }

    /// Like [`Mosaic::start`], with `configure(name, zone)` run before each zone starts.
    pub async fn start_with(
        zones: &[&str],
        configure: impl Fn(&str, &mut ZoneProcess),
    ) -> anyhow::Result<Self> {
        let dp_binary = workspace_binary("mosaic-dp")?;
        let mut global = GlobalCluster::new(&workspace_binary("mosaic-global")?, 1, 10_000)?;
        global.start_all()?;
        global.wait_ready(0, WAIT).await?;
        wait_for_kds_ca(&global, 0, WAIT).await?;
        let mut started = Vec::new();
        for name in zones {
            let mut zone = joining_zone(
                Path::new(env!("CARGO_BIN_EXE_mosaic-zone")),
                &global,
                name,
                "24h",
            )
            .await?;
            configure(name, &mut zone);
            zone.start()?;
            started.push(zone);
        }
        for zone in &started {
            zone.wait_ready(WAIT).await?;
        }
        Ok(Self {
            global,
            zones: started,
            dp_binary,
        })
    }

    /// The tails of the global's and the zones' logs (for failure messages).
    pub fn logs(&self) -> String {
        let mut out = format!("global log:\n{}\n", self.global.log_tail(0));
        for z in &self.zones {
            let log = z.log();
            let lines: Vec<&str> = log.lines().collect();
            out.push_str(&format!(
                "zone {} log:\n{}\n",
                z.name,
                lines[lines.len().saturating_sub(40)..].join("\n")
            ));
        }
        out
    }

    /// Waits for `agent`'s files; on failure the error carries the control planes' logs too.
    pub async fn files(&self, agent: &mut DataplaneAgent) -> anyhow::Result<AgentFiles> {
        agent
            .wait_for_files(WAIT)
            .await
            .map_err(|e| e.context(self.logs()))
    }

    /// PUTs `body` (JSON or YAML) to the global; it must be accepted.
    pub async fn put(&self, path: &str, body: &str) -> anyhow::Result<()> {
        let (status, answer) = self.global.put(0, path, body).await?;
        anyhow::ensure!(
            status == 200 || status == 201,
            "PUT {path}: {status} {answer}"
        );
        Ok(())
    }

    /// Mesh `default` with one builtin backend `ca-1` (the global generates its CA).
    pub async fn put_builtin_mesh(&self) -> anyhow::Result<()> {
        self.put(
            "/meshes/default",
            &json!({"type": "Mesh", "name": "default", "mtls": {"enabledBackend": "ca-1",
                "backends": [{"name": "ca-1", "type": "builtin"}]}})
            .to_string(),
        )
        .await
    }

    /// A mesh Secret, written as a Kuma user does: Mesh `mesh` first (created without mtls when
    /// it does not exist yet: a Secret needs its Mesh), then the Secret.
    pub async fn put_secret(&self, mesh: &str, name: &str, value: &str) -> anyhow::Result<()> {
        if self.global.get(0, &format!("/meshes/{mesh}")).await?.0 == 404 {
            self.put(
                &format!("/meshes/{mesh}"),
                &format!("type: Mesh\nname: {mesh}\n"),
            )
            .await?;
        }
        let data = base64::engine::general_purpose::STANDARD.encode(value);
        self.put(
            &format!("/meshes/{mesh}/secrets/{name}"),
            &format!("data: {data}\n"),
        )
        .await
    }

    /// Waits until every zone has received `mesh` over KDS as the global holds it now, `mtls`
    /// included (an agent of a mesh its zone does not know is refused; a Mesh first created
    /// without mtls for its Secrets must not be mistaken for the whole one).
    pub async fn mesh_reached_zones(&self, mesh: &str) -> anyhow::Result<()> {
        let (status, global) = self.global.get(0, &format!("/meshes/{mesh}")).await?;
        anyhow::ensure!(
            status == 200,
            "GET /meshes/{mesh} on the global: {status} {global}"
        );
        for zone in &self.zones {
            zone.wait_for(
                &format!("/meshes/{mesh}"),
                &format!("mesh {mesh} arrives"),
                WAIT,
                |m| m["mtls"] == global["mtls"],
            )
            .await?;
        }
        Ok(())
    }

    /// A dataplane token from the global for `name` of `mesh`, allowing `tags`.
    pub async fn dataplane_token(
        &self,
        mesh: &str,
        name: &str,
        tags: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        self.dataplane_token_for(mesh, name, tags, None).await
    }

    /// [`Mosaic::dataplane_token`], bound to `workload` when given (Kuma's `workload`).
    pub async fn dataplane_token_for(
        &self,
        mesh: &str,
        name: &str,
        tags: &[(&str, &str)],
        workload: Option<&str>,
    ) -> anyhow::Result<String> {
        let mut allowed = serde_json::Map::new();
        for (k, v) in tags {
            allowed.insert((*k).to_string(), json!([v]));
        }
        let mut body = json!({"mesh": mesh, "name": name, "tags": allowed, "validFor": "24h"});
        if let Some(w) = workload {
            body["workload"] = json!(w);
        }
        let (status, token) = self.global.post(0, "/tokens/dataplane", &body).await?;
        anyhow::ensure!(
            status == 200,
            "dataplane token for {name}: {status} {token}"
        );
        Ok(token.trim().to_string())
    }

    /// Starts an agent of zone `zone` for `name` of `mesh`, registering a Dataplane with `tags`.
    pub fn agent(
        &self,
        zone: usize,
        options: impl FnOnce(AgentOptions) -> AgentOptions,
        mesh: &str,
        name: &str,
        token: &str,
        tags: &[(&str, &str)],
    ) -> anyhow::Result<DataplaneAgent> {
        let opts = options(AgentOptions::new(
            &self.zones[zone],
            mesh,
            name,
            token,
            &dataplane_yaml(mesh, name, tags),
        ));
        DataplaneAgent::start(&self.dp_binary, self.global.dir(), &opts)
    }

    /// Starts an agent of zone `zone` for `name` of `mesh` registering `dataplane` (a Dataplane
    /// document, labels and all).
    pub fn agent_yaml(
        &self,
        zone: usize,
        mesh: &str,
        name: &str,
        token: &str,
        dataplane: &str,
    ) -> anyhow::Result<DataplaneAgent> {
        let opts = AgentOptions::new(&self.zones[zone], mesh, name, token, dataplane);
        DataplaneAgent::start(&self.dp_binary, self.global.dir(), &opts)
    }

    /// Runs `mosaicctl` against the global as a user would (no config file, no env): exit code,
    /// stdout, stderr.
    pub fn ctl(&self, args: &[&str]) -> anyhow::Result<(i32, String, String)> {
        let out = std::process::Command::new(workspace_binary("mosaicctl")?)
            .args(["--api", &self.global.api(0)])
            .args(args)
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .env_remove("MOSAIC_API")
            .env_remove("MOSAIC_TOKEN")
            .output()?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// A token for `name` with exactly `tags`, and an agent for it on zone `zone`.
    pub async fn dataplane(
        &self,
        zone: usize,
        mesh: &str,
        name: &str,
        tags: &[(&str, &str)],
    ) -> anyhow::Result<DataplaneAgent> {
        let token = self.dataplane_token(mesh, name, tags).await?;
        self.agent(zone, |o| o, mesh, name, &token, tags)
    }

    /// The CA health the global shows for `zone`'s `backend` of `mesh` (`GET /zones/_overview`).
    pub async fn wait_ca_health(
        &self,
        zone: &str,
        backend: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let find = |overview: &Value| -> Option<Value> {
            overview["items"]
                .as_array()?
                .iter()
                .find(|z| z["name"] == zone)?["caHealth"]
                .as_array()?
                .iter()
                .find(|h| h["mesh"] == MESH && h["backend"] == backend)
                .cloned()
        };
        let overview = self
            .global
            .wait_for(0, "/zones/_overview", what, WAIT, |o| {
                find(o).is_some_and(|h| check(&h))
            })
            .await?;
        find(&overview).ok_or_else(|| anyhow::anyhow!("no CA health for {zone}"))
    }
}
