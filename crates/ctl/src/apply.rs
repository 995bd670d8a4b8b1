//! `mosaicctl apply -f FILE|-`: every document (Universal or Kubernetes, YAML or JSON) PUT to its
//! Kuma path. Secrets and GlobalSecrets go first, then Meshes (which may name those Secrets), then
//! the rest. The first failure stops the run.

use anyhow::Context as _;
use mosaic_common::resource::{Resource, ResourceType, parse_documents};

use crate::client::{Client, resource_segments};

/// The apply rank of a type: secrets, then meshes, then everything else.
fn rank(t: ResourceType) -> u8 {
    match t {
        ResourceType::Secret | ResourceType::GlobalSecret => 0,
        ResourceType::Mesh => 1,
        _ => 2,
    }
}

/// Sorts documents into apply order, keeping the file's order within a rank.
pub fn apply_order(mut resources: Vec<Resource>) -> Vec<Resource> {
    resources.sort_by_key(|r| rank(r.resource_type()));
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
/// paths and nothing is sent.
pub fn plan(input: &[u8]) -> anyhow::Result<Vec<Resource>> {
    match parse_documents(input) {
        Ok(resources) => Ok(apply_order(resources)),
        Err(mosaic_common::resource::ParseError::Invalid { index, error }) => {
            let mut msg = format!("document {} is invalid; nothing was applied", index + 1);
            for v in error.violations {
                msg.push_str(&format!("\n  {v}"));
            }
            Err(anyhow::Error::new(crate::Listed(msg)))
        }
        Err(e) => Err(anyhow::Error::new(e).context("nothing was applied")),
    }
}

/// Applies `resources` in order, printing `<Type> <name> created|updated` for each.
pub async fn run(client: &Client, resources: &[Resource]) -> anyhow::Result<()> {
    for r in resources {
        let rtype = r.resource_type();
        let segments = resource_segments(rtype, r.meta.mesh.as_deref(), Some(&r.meta.name));
        let url = client.url(&segments, &[]);
        let answer = client
            .send(reqwest::Method::PUT, url, Some(&r.to_universal()))
            .await
            .with_context(|| format!("applying {}", label(r)))?;
        let verb = if answer.status == reqwest::StatusCode::CREATED {
            "created"
        } else {
            "updated"
        };
        outln!("{} {verb}", label(r));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_then_meshes_then_the_rest() {
        let input = b"type: Zone\nname: east\n---\n\
type: Mesh\nname: default\n---\n\
type: Secret\nmesh: default\nname: token-1\ndata: dA==\n---\n\
apiVersion: v1\nkind: Secret\nmetadata:\n  name: g1\ntype: system.kuma.io/global-secret\ndata:\n  value: dA==\n---\n\
apiVersion: kuma.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: other\n---\n\
type: Secret\nmesh: other\nname: token-2\ndata: dA==\n";
        let order: Vec<String> = plan(input).unwrap().iter().map(label).collect();
        assert_eq!(
            order,
            [
                "Secret default/token-1",
                "GlobalSecret g1",
                "Secret other/token-2",
                "Mesh default",
                "Mesh other",
                "Zone east",
            ]
        );
    }

    #[test]
    fn invalid_documents_stop_before_sending() {
        let input = b"type: Mesh\nname: default\n---\ntype: Mesh\nname: Bad_Name\n";
        let err = plan(input).unwrap_err().to_string();
        assert!(err.starts_with("document 2 is invalid"), "{err}");
        assert!(err.contains("\n  name:"), "{err}");
        assert!(plan(b"").is_err());
    }
}
