//! `mosaicctl raft members|add|promote|remove`: the global's raft membership over
//! `/raft/members` (an etcd `member list|add|promote|remove`-like flow on openraft's learners):
//! - `members [-o table|yaml|json]`: every member, its role, whether it leads, how far behind it
//!   is and the newest log entry format it reads (as the leader sees it), and the format the
//!   cluster writes (a rolling upgrade is finished when it is the new release's);
//! - `add ID ADDRESS`: add a replica (started with `raft.join = true`) as a learner;
//! - `promote ID`: make a caught-up learner a voter;
//! - `remove ID`: remove a voter or learner (a dead replica being replaced, a scale-down).

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::{client::Client, get::Output, table};

/// One member of `GET /raft/members`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Member {
    id: u64,
    address: String,
    role: String,
    #[serde(default)]
    leader: bool,
    #[serde(default)]
    lag: Option<u64>,
    #[serde(default)]
    reads_entry_format: Option<u32>,
}

/// `GET /raft/members`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Members {
    answered_by: u64,
    #[serde(default)]
    leader: Option<u64>,
    term: u64,
    #[serde(default)]
    changing: bool,
    #[serde(default)]
    joining: bool,
    #[serde(default)]
    entry_format: u32,
    members: Vec<Member>,
}

fn render(value: &serde_json::Value, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(value)?),
        Output::Yaml => out!("{}", serde_saphyr::to_string(value)?),
        Output::Table => {
            let m: Members = serde_json::from_value(value.clone())?;
            let rows: Vec<Vec<String>> = m
                .members
                .iter()
                .map(|x| {
                    vec![
                        x.id.to_string(),
                        x.address.clone(),
                        x.role.clone(),
                        if x.leader { "yes" } else { "" }.to_string(),
                        x.lag.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
                        x.reads_entry_format
                            .map(|f| f.to_string())
                            .unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            out!(
                "{}",
                table::render(
                    &["ID", "ADDRESS", "ROLE", "LEADER", "LAG", "READS FORMAT"],
                    &rows
                )
            );
            let leader = m
                .leader
                .map(|l| format!("leader {l}"))
                .unwrap_or_else(|| "no leader".into());
            let mut notes = vec![format!("answered by node {}", m.answered_by), leader];
            notes.push(format!("term {}", m.term));
            if m.entry_format > 0 {
                notes.push(format!("log entry format {}", m.entry_format));
            }
            if m.changing {
                notes.push("a voter change is in progress".into());
            }
            if m.joining {
                notes.push(format!(
                    "node {} is joining (not voting until replicated to)",
                    m.answered_by
                ));
            }
            if m.leader != Some(m.answered_by) {
                notes.push("LAG and READS FORMAT are known on the leader only".into());
            }
            outln!("{}", notes.join("; "));
        }
    }
    Ok(())
}

/// `mosaicctl raft members`.
pub async fn members(client: &Client, output: Output) -> anyhow::Result<()> {
    let url = client.url(&["raft", "members"], &[]);
    let answer = client.send(Method::GET, url, None).await?;
    let value: serde_json::Value = serde_json::from_slice(&answer.body)?;
    render(&value, output)
}

async fn change(
    client: &Client,
    method: Method,
    segments: &[&str],
    body: Option<serde_json::Value>,
    done: String,
) -> anyhow::Result<()> {
    let url = client.url(segments, &[]);
    let answer = client.send(method, url, body.as_ref()).await?;
    let value: serde_json::Value = serde_json::from_slice(&answer.body)?;
    outln!("{done}");
    render(&value, Output::Table)
}

/// `mosaicctl raft add ID ADDRESS`.
pub async fn add(client: &Client, id: u64, address: &str) -> anyhow::Result<()> {
    change(
        client,
        Method::POST,
        &["raft", "members"],
        Some(json!({ "id": id, "address": address })),
        format!(
            "added node {id} ({address}) as a learner; promote it with `mosaicctl raft promote {id}` once LAG is small"
        ),
    )
    .await
}

/// `mosaicctl raft promote ID`.
pub async fn promote(client: &Client, id: u64) -> anyhow::Result<()> {
    let id_text = id.to_string();
    change(
        client,
        Method::POST,
        &["raft", "members", &id_text, "promote"],
        None,
        format!("node {id} is a voter"),
    )
    .await
}

/// `mosaicctl raft remove ID`.
pub async fn remove(client: &Client, id: u64) -> anyhow::Result<()> {
    let id_text = id.to_string();
    change(
        client,
        Method::DELETE,
        &["raft", "members", &id_text],
        None,
        format!("removed node {id}"),
    )
    .await
}
