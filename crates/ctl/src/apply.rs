//! `mosaicctl apply -f FILE|DIR|- [-v NAME=VALUE]... [--dry-run]`: every document (Universal or
//! Kubernetes, YAML or JSON) PUT to its Kuma path. As kumactl: a directory means its `.yaml`,
//! `.yml` and `.json` files (not its subdirectories), in the order of their names; `-v` fills
//! `{{ NAME }}` placeholders ([`crate::template`]); `--dry-run` prints the resources as YAML and
//! sends nothing.
//!
//! Order: GlobalSecrets go first, then Meshes, then mesh Secrets (a Secret needs its Mesh, as
//! in Kuma), then the rest. A Mesh whose backends name a Secret of the same file goes after that
//! Secret (its admission reads it: the Vault token of a test issuance); when such a Mesh does not
//! exist yet, it is first created without `mtls` (said on stdout), then its Secrets, then the
//! whole Mesh. The first failure stops the run.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use mosaic_core::resource::{
    ParseError, Resource, ResourceType, Spec, parse::parse_documents_with,
};

use crate::client::{Client, ClientError, resource_segments};

/// The apply rank of a resource: GlobalSecrets, Meshes, Secrets, Meshes that name Secrets of
/// the file, then everything else.
fn rank(r: &Resource, names_file_secrets: &BTreeSet<String>) -> u8 {
    match r.resource_type() {
        ResourceType::GlobalSecret => 0,
        ResourceType::Mesh if names_file_secrets.contains(&r.meta.name) => 3,
        ResourceType::Mesh => 1,
        ResourceType::Secret => 2,
        _ => 4,
    }
}

/// The Meshes among `resources` whose backends name a Secret that `resources` also holds.
fn meshes_naming_file_secrets(resources: &[Resource]) -> BTreeSet<String> {
    let secrets: BTreeSet<(&str, &str)> = resources
        .iter()
        .filter(|r| r.resource_type() == ResourceType::Secret)
        .map(|r| {
            (
                r.meta.mesh.as_deref().unwrap_or_default(),
                r.meta.name.as_str(),
            )
        })
        .collect();
    resources
        .iter()
        .filter_map(|r| match &r.spec {
            Spec::Mesh(spec) => {
                let mesh = r.meta.name.as_str();
                spec.secret_references(mesh)
                    .iter()
                    .any(|s| secrets.contains(&(mesh, s.secret.as_str())))
                    .then(|| mesh.to_string())
            }
            _ => None,
        })
        .collect()
}

/// Sorts documents into apply order, keeping the file's order within a rank.
pub fn apply_order(mut resources: Vec<Resource>) -> Vec<Resource> {
    let names = meshes_naming_file_secrets(&resources);
    resources.sort_by_key(|r| rank(r, &names));
    resources
}

/// `Mesh default`, `Secret default/token-1`.
pub fn label(r: &Resource) -> String {
    match &r.meta.mesh {
        Some(m) if r.resource_type().is_mesh_scoped() => {
            format!("{} {m}/{}", r.resource_type(), r.meta.name)
        }
        _ => format!("{} {}", r.resource_type(), r.meta.name),
    }
}

/// Parses `input` into resources in apply order; invalid documents are reported with their field
/// paths and nothing is sent. (One input without variables: what the unit tests use.)
#[cfg(test)]
pub fn plan(input: &[u8], strict: bool) -> anyhow::Result<Vec<Resource>> {
    plan_inputs(
        &[Input {
            origin: None,
            bytes: input.to_vec(),
        }],
        &BTreeMap::new(),
        strict,
    )
}

/// One input of `apply -f`: a file (`origin` names it when it came from a directory) or
/// standard input.
#[derive(Debug)]
pub struct Input {
    /// The file, when it is one of a directory's.
    pub origin: Option<PathBuf>,
    /// Its contents.
    pub bytes: Vec<u8>,
}

/// The extensions a directory's files are applied by (kumactl's, compared in lowercase).
const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// Reads `-f`: `-` (standard input), a file, or a directory's `.yaml`, `.yml` and `.json` files
/// (subdirectories, and links to them, are skipped; files in the order of their names).
pub fn read_inputs(file: &Path) -> anyhow::Result<Vec<Input>> {
    if file != Path::new("-") && file.is_dir() {
        let entries = std::fs::read_dir(file)
            .with_context(|| format!("reading the directory {}", file.display()))?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry
                .with_context(|| format!("reading the directory {}", file.display()))?
                .path();
            let wanted = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
            // `is_dir` follows links: a link to a directory is skipped too.
            if wanted && !path.is_dir() {
                files.push(path);
            }
        }
        files.sort();
        anyhow::ensure!(
            !files.is_empty(),
            "no resource(s) passed to apply: {} holds no .yaml, .yml or .json file (subdirectories are not read)",
            file.display()
        );
        return files
            .into_iter()
            .map(|path| {
                let bytes =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                Ok(Input {
                    origin: Some(path),
                    bytes,
                })
            })
            .collect();
    }
    Ok(vec![Input {
        origin: None,
        bytes: crate::validate::read_input(file)?,
    }])
}

/// Renders (when `vars` is not empty) and parses every input into resources in apply order.
/// Nothing is sent when any document is invalid; empty files of a directory are skipped.
/// Unknown fields are dropped with a warning on stderr (what is sent has none of them), or with
/// `strict` refused.
pub fn plan_inputs(
    inputs: &[Input],
    vars: &BTreeMap<String, String>,
    strict: bool,
) -> anyhow::Result<Vec<Resource>> {
    let mut resources = Vec::new();
    for input in inputs {
        let at = |msg: String| match &input.origin {
            Some(path) => format!("{}: {msg}", path.display()),
            None => msg,
        };
        let rendered;
        let bytes = if vars.is_empty() {
            input.bytes.as_slice()
        } else {
            let text = std::str::from_utf8(&input.bytes).map_err(|e| {
                anyhow::anyhow!(at(format!(
                    "is not UTF-8 (at byte {}); nothing was applied",
                    e.valid_up_to()
                )))
            })?;
            rendered = crate::template::render(text, vars).map_err(|e| {
                anyhow::anyhow!(at(format!(
                    "cannot fill in the -v variables: {e}; nothing was applied"
                )))
            })?;
            rendered.as_bytes()
        };
        match parse_documents_with(bytes, crate::validate::policy(strict)) {
            Ok(decoded) => resources.extend(crate::validate::warn_ignored(decoded)),
            Err(ParseError::Empty) if input.origin.is_some() => {}
            Err(ParseError::Invalid { index, error }) => {
                let mut msg = at(format!(
                    "document {} is invalid; nothing was applied",
                    index + 1
                ));
                for v in error.violations {
                    msg.push_str(&format!("\n  {v}"));
                }
                return Err(anyhow::Error::new(crate::Listed(msg)));
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(at("nothing was applied".into())));
            }
        }
    }
    anyhow::ensure!(!resources.is_empty(), "no resource(s) passed to apply");
    Ok(apply_order(resources))
}

/// `--dry-run`: the resources as YAML documents (`---` between them), in apply order.
pub fn dry_run(resources: &[Resource]) -> anyhow::Result<()> {
    for (i, r) in resources.iter().enumerate() {
        if i > 0 {
            outln!("---");
        }
        crate::get::print_document(&r.to_universal(), crate::get::Output::Yaml)?;
    }
    Ok(())
}

/// Applies `resources` in order, printing `<Type> <name> created|updated` for each. A Mesh that
/// comes after Secrets it names and does not exist yet is created without `mtls` before them.
pub async fn run(client: &Client, resources: &[Resource]) -> anyhow::Result<()> {
    let staged = meshes_naming_file_secrets(resources);
    let mut checked = BTreeSet::new();
    let mut created_bare = BTreeSet::new();
    for r in resources {
        let rtype = r.resource_type();
        if rtype == ResourceType::Secret
            && let Some(mesh) = r.meta.mesh.as_deref()
            && let Some(m) = resources.iter().find(|m| {
                m.resource_type() == ResourceType::Mesh
                    && m.meta.name == mesh
                    && staged.contains(mesh)
            })
            && checked.insert(mesh.to_string())
            && !mesh_exists(client, mesh).await?
        {
            put(client, &without_mtls(m)).await.with_context(|| {
                format!("creating Mesh {mesh} without mtls, before its Secrets")
            })?;
            created_bare.insert(mesh.to_string());
            outln!(
                "Mesh {mesh} created without mtls: its backends name Secrets of this file, which need the Mesh; they come next, then the whole Mesh"
            );
        }
        let (status, warnings) = put(client, r).await.with_context(|| {
            if rtype == ResourceType::Mesh && created_bare.contains(&r.meta.name) {
                format!(
                    "applying {} (it exists now, without mtls: fix the problem and apply the file again, or delete the Mesh)",
                    label(r)
                )
            } else {
                format!("applying {}", label(r))
            }
        })?;
        for w in &warnings {
            warnln!("{}: {w}", label(r));
        }
        let created = status == reqwest::StatusCode::CREATED
            || (rtype == ResourceType::Mesh && created_bare.contains(&r.meta.name));
        let verb = if created { "created" } else { "updated" };
        outln!("{} {verb}", label(r));
    }
    Ok(())
}

/// PUTs `r` to its Kuma path; the answer's status and warnings (admission's notes).
async fn put(
    client: &Client,
    r: &Resource,
) -> Result<(reqwest::StatusCode, Vec<String>), ClientError> {
    let segments = resource_segments(
        r.resource_type(),
        r.meta.mesh.as_deref(),
        Some(&r.meta.name),
    );
    let url = client.url(&segments, &[]);
    let answer = client
        .send(reqwest::Method::PUT, url, Some(&r.to_universal()))
        .await?;
    Ok((answer.status, answer.warnings))
}

/// Whether Mesh `name` exists (a consistent read).
async fn mesh_exists(client: &Client, name: &str) -> anyhow::Result<bool> {
    let url = client.url(&["meshes", name], &[]);
    match client.get_json(url).await {
        Ok(_) => Ok(true),
        Err(ClientError::Api(e)) if e.status == 404 => Ok(false),
        Err(e) => Err(anyhow::Error::new(e).context(format!("reading Mesh {name}"))),
    }
}

/// `mesh` with its `mtls` section removed (mTLS off), every other field kept.
fn without_mtls(mesh: &Resource) -> Resource {
    let mut bare = mesh.clone();
    if let Spec::Mesh(spec) = &mut bare.spec {
        spec.mtls = None;
    }
    bare
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meshes_before_their_secrets_unless_they_name_them() {
        let input = b"type: Zone\nname: east\n---\n\
type: Mesh\nname: default\n---\n\
type: Secret\nmesh: default\nname: token-1\ndata: dA==\n---\n\
apiVersion: v1\nkind: Secret\nmetadata:\n  name: g1\ntype: system.kuma.io/global-secret\ndata:\n  value: dA==\n---\n\
apiVersion: kuma.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: other\n---\n\
type: Secret\nmesh: other\nname: token-2\ndata: dA==\n";
        let order: Vec<String> = plan(input, false).unwrap().iter().map(label).collect();
        assert_eq!(
            order,
            [
                "GlobalSecret g1",
                "Mesh default",
                "Mesh other",
                "Secret default/token-1",
                "Secret other/token-2",
                "Zone east",
            ]
        );
        // The seed's shape: a Mesh whose vault backend names a Secret of the file goes after it
        // (run() first creates it without mtls when it does not exist yet).
        let input = b"type: Mesh\nname: default\nmtls:\n  enabledBackend: v\n  backends:\n  - name: v\n    type: vault\n    conf:\n      fromCp:\n        address: http://vault:8200\n        pki: pki\n        role: r\n        auth:\n          token:\n            secret: token-1\n---\n\
type: Mesh\nname: plain\n---\n\
type: Secret\nmesh: default\nname: token-1\ndata: dA==\n";
        let resources = plan(input, false).unwrap();
        let order: Vec<String> = resources.iter().map(label).collect();
        assert_eq!(
            order,
            ["Mesh plain", "Secret default/token-1", "Mesh default"]
        );
        assert_eq!(
            meshes_naming_file_secrets(&resources),
            BTreeSet::from(["default".to_string()])
        );
        let Spec::Mesh(bare) = without_mtls(&resources[2]).spec else {
            panic!("a Mesh")
        };
        assert!(bare.mtls.is_none());
    }

    #[test]
    fn invalid_documents_stop_before_sending() {
        let input = b"type: Mesh\nname: default\n---\ntype: Mesh\nname: Bad_Name\n";
        let err = plan(input, false).unwrap_err().to_string();
        assert!(err.starts_with("document 2 is invalid"), "{err}");
        assert!(err.contains("\n  name:"), "{err}");
        assert!(plan(b"", false).is_err());
    }
}
