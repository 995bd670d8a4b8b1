//! kumactl's habits against a real mosaic-global: `apply -f DIR`, `apply -v NAME=VALUE`,
//! `apply --dry-run` (the server sees nothing) and `get --size/--offset` paging.

use std::{path::Path, process::Command, time::Duration};

use mosaic_testkit::{GlobalCluster, workspace_binary};

fn ctl(api: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mosaicctl"))
        .args(["--api", api])
        .args(args)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .env_remove("MOSAIC_API")
        .env_remove("MOSAIC_TOKEN")
        .env_remove("MOSAIC_CA_CERT_FILE")
        .output()
        .expect("run mosaicctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

async fn mesh_status(cluster: &GlobalCluster, name: &str) -> u16 {
    let (status, _) = cluster
        .get(0, &format!("/meshes/{name}"))
        .await
        .expect("GET the mesh");
    status
}

#[tokio::test]
async fn apply_a_directory_with_variables_dry_run_and_page_through_meshes() -> anyhow::Result<()> {
    let mut cluster = GlobalCluster::new(&workspace_binary("mosaic-global")?, 1, 10_000)?;
    cluster.start_all()?;
    cluster.wait_ready(0, Duration::from_secs(60)).await?;
    let api = cluster.api(0);
    let work = cluster.dir().join("work");

    // -f DIR: its .yaml, .yml and .json files (any case), by name; not subdirectories, not
    // other files. A Secret in 01 names the Mesh of 02: the order across files is apply's.
    let dir = work.join("resources");
    write(
        &dir.join("01-secret.yaml"),
        "type: Secret\nmesh: dir-b\nname: s1\ndata: dA==\n",
    );
    write(
        &dir.join("02-meshes.yml"),
        "type: Mesh\nname: dir-a\n---\ntype: Mesh\nname: dir-b\n",
    );
    write(
        &dir.join("03-mesh.JSON"),
        r#"{"type": "Mesh", "name": "dir-c"}"#,
    );
    write(&dir.join("empty.yaml"), "# nothing here\n");
    write(&dir.join("README.txt"), "not a resource");
    write(
        &dir.join("sub/ignored.yaml"),
        "type: Mesh\nname: dir-ignored\n",
    );
    let (code, out, err) = ctl(&api, &["apply", "-f", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    for name in ["dir-a", "dir-b", "dir-c"] {
        assert_eq!(mesh_status(&cluster, name).await, 200, "{name}: {out}");
    }
    assert_eq!(mesh_status(&cluster, "dir-ignored").await, 404);
    let (status, _) = cluster.get(0, "/meshes/dir-b/secrets/s1").await?;
    assert_eq!(status, 200, "{out}");
    // An empty directory: kumactl's refusal.
    let empty = work.join("empty-dir");
    std::fs::create_dir_all(&empty)?;
    let (code, _, err) = ctl(&api, &["apply", "-f", empty.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("no resource(s) passed to apply"), "{err}");

    // -v: {{ name }} placeholders; an unset one renders as nothing.
    let template = work.join("mesh-template.yaml");
    write(
        &template,
        "type: {{ type }}\nname: \"{{ name }}{{ unset }}\"\nlabels:\n  team: '{{ team.name }}'\n",
    );
    let (code, out, err) = ctl(
        &api,
        &[
            "apply",
            "-f",
            template.to_str().unwrap(),
            "-v",
            "name=templated",
            "-v",
            "type=Mesh,team.name=core",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (status, mesh) = cluster.get(0, "/meshes/templated").await?;
    assert_eq!(status, 200, "{out}");
    assert_eq!(mesh["labels"]["team"], "core", "{mesh}");

    // --dry-run: the rendered resources as YAML, nothing sent (the server never sees them).
    let (code, out, err) = ctl(
        &api,
        &[
            "apply",
            "--dry-run",
            "-f",
            template.to_str().unwrap(),
            "-v",
            "name=dry,type=Mesh",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("type: Mesh") && out.contains("name: dry"),
        "{out}"
    );
    assert!(!out.contains("{{"), "{out}");
    assert_eq!(mesh_status(&cluster, "dry").await, 404, "{out}");
    // Several documents: separated by `---`; with no control plane at all.
    let (code, out, err) = ctl(
        "http://127.0.0.1:9",
        &["apply", "--dry-run", "-f", dir.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches("\n---\n").count(), 3, "{out}");

    // get --size/--offset: one page, kumactl's footer naming the next offset.
    let (code, out, err) = ctl(&api, &["get", "meshes", "--size", "2"]);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{out}");
    assert!(
        lines[1].starts_with("dir-a ") && lines[2].starts_with("dir-b "),
        "{out}"
    );
    assert_eq!(
        lines[3..],
        [
            "",
            "Rerun command with --offset=2 argument to retrieve more resources"
        ],
        "{out}"
    );
    let (code, out, err) = ctl(&api, &["get", "meshes", "--size", "2", "--offset", "2"]);
    assert_eq!(code, 0, "{out}{err}");
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[0].starts_with("dir-c ") && rows[1].starts_with("templated "),
        "{out}"
    );
    // The last page: no footer.
    let (_, out, _) = ctl(&api, &["get", "meshes", "--size", "10", "--offset", "4"]);
    assert!(!out.contains("Rerun command"), "{out}");
    // JSON: the API's page envelope.
    let (code, out, err) = ctl(&api, &["get", "meshes", "--size", "1", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let page: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");
    assert_eq!(page["total"], 4, "{page}");
    assert!(
        page["next"]
            .as_str()
            .is_some_and(|n| n.contains("offset=1")),
        "{page}"
    );
    // Without --size: every mesh, no footer.
    let (_, out, _) = ctl(&api, &["get", "meshes"]);
    assert_eq!(out.lines().count(), 5, "{out}");
    // A bad offset: the server's field error.
    let (code, _, err) = ctl(&api, &["get", "meshes", "--offset", "x"]);
    assert_eq!(code, 1);
    assert!(err.contains("offset"), "{err}");
    Ok(())
}

/// `apply -f` a Mesh and the contract's MeshIdentity, `get meshidentities` (table and YAML),
/// `delete meshidentity NAME`, as with any mesh-scoped resource.
#[tokio::test]
async fn meshidentities_apply_get_and_delete() -> anyhow::Result<()> {
    let mut cluster = GlobalCluster::new(&workspace_binary("mosaic-global")?, 1, 10_000)?;
    cluster.start_all()?;
    cluster.wait_ready(0, Duration::from_secs(60)).await?;
    let api = cluster.api(0);
    let file = cluster.dir().join("work/identity.yaml");
    write(
        &file,
        "type: Mesh\nname: default\n---\ntype: MeshIdentity\nname: identity\nmesh: default\nspec:\n  selector: { dataplane: { matchLabels: { app: web } } }\n  provider:\n    type: Bundled\n    bundled: { meshTrustCreation: Enabled, insecureAllowSelfSigned: true, autogenerate: { enabled: true } }\n",
    );
    let (code, out, err) = ctl(&api, &["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = ctl(&api, &["get", "meshidentities"]);
    assert_eq!(code, 0, "{err}");
    let row = out
        .lines()
        .find(|l| l.contains("identity"))
        .unwrap_or_default();
    assert!(row.contains("default") && row.contains("Bundled"), "{out}");
    assert!(
        row.contains("{{ .Mesh }}.{{ .Zone }}.mesh.local"),
        "the default: {out}"
    );
    let (code, out, _) = ctl(&api, &["get", "meshidentity", "identity", "-o", "yaml"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("matchLabels:") && out.contains("app: web"),
        "{out}"
    );
    let (code, out, err) = ctl(&api, &["delete", "meshidentity", "identity"]);
    assert_eq!(code, 0, "{out}{err}");
    let (status, _) = cluster
        .get(0, "/meshes/default/meshidentities/identity")
        .await?;
    assert_eq!(status, 404);
    Ok(())
}
