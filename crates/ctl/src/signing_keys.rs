//! `mosaicctl get signing-keys zone|dataplane`, `rotate signing-key zone|dataplane` and
//! `retire signing-key zone|dataplane SERIAL` (`--mesh M` for a mesh's dataplane keys): the
//! global's token signing keys (Kuma's `zone-token-signing-key-N`, one serial per key) over
//! `/tokens/signing-keys/zone` and `/meshes/{mesh}/tokens/signing-keys/dataplane`.

use anyhow::Context as _;
use clap::ValueEnum;
use serde_json::Value;

use crate::{
    client::Client,
    get::{GetKind, Output, print_document, rows},
    table,
};

/// Whose signing keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeyPurpose {
    /// The keys of zone tokens.
    #[value(alias = "zone-token")]
    Zone,
    /// The keys of a mesh's dataplane tokens (with --mesh).
    #[value(alias = "dataplane-token")]
    Dataplane,
}

/// The API path segments of `purpose`'s keys.
fn segments(purpose: KeyPurpose, mesh: &str) -> Vec<&str> {
    match purpose {
        KeyPurpose::Zone => vec!["tokens", "signing-keys", "zone"],
        KeyPurpose::Dataplane => vec!["meshes", mesh, "tokens", "signing-keys", "dataplane"],
    }
}

/// What the keys sign, for output lines.
fn describe(purpose: KeyPurpose, mesh: &str) -> String {
    match purpose {
        KeyPurpose::Zone => "zone tokens".to_string(),
        KeyPurpose::Dataplane => format!("dataplane tokens of mesh {mesh:?}"),
    }
}

/// Reads `get signing-keys`'s positional argument (`zone` or `dataplane`).
pub fn parse_purpose(name: Option<&str>) -> anyhow::Result<KeyPurpose> {
    let Some(name) = name else {
        anyhow::bail!(
            "name whose signing keys: mosaicctl get signing-keys zone, or mosaicctl get signing-keys dataplane --mesh MESH"
        );
    };
    KeyPurpose::from_str(name, true).map_err(|_| {
        anyhow::anyhow!(
            "{name:?} is not zone or dataplane: mosaicctl get signing-keys zone, or mosaicctl get signing-keys dataplane --mesh MESH"
        )
    })
}

fn field(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The table of a key list (`get`'s rows for signing keys).
pub fn key_table(items: &[Value]) -> String {
    let (headers, rows) = rows(
        GetKind::SigningKeys,
        items,
        None,
        time::OffsetDateTime::now_utc(),
    );
    table::render(&headers, &rows)
}

/// `mosaicctl get signing-keys zone|dataplane [--mesh M] [-o table|yaml|json]`.
pub async fn list(
    client: &Client,
    purpose: KeyPurpose,
    mesh: &str,
    output: Output,
) -> anyhow::Result<()> {
    let url = client.url(&segments(purpose, mesh), &[]);
    let envelope = client
        .get_json(url)
        .await
        .with_context(|| format!("listing the signing keys of {}", describe(purpose, mesh)))?;
    if output != Output::Table {
        return print_document(&envelope, output);
    }
    let items = envelope
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    out!("{}", key_table(&items));
    Ok(())
}

/// `mosaicctl rotate signing-key zone|dataplane [--mesh M]`.
pub async fn rotate(client: &Client, purpose: KeyPurpose, mesh: &str) -> anyhow::Result<()> {
    let mut path = segments(purpose, mesh);
    path.push("rotate");
    let url = client.url(&path, &[]);
    let answer = client
        .send(reqwest::Method::POST, url, None)
        .await
        .with_context(|| format!("rotating the signing key of {}", describe(purpose, mesh)))?;
    let key: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    outln!(
        "signing key {} (kid {}) of {} created: it signs every new token; the older keys keep verifying until you retire them",
        field(&key, "serial"),
        field(&key, "kid"),
        describe(purpose, mesh)
    );
    Ok(())
}

/// `mosaicctl retire signing-key zone|dataplane SERIAL [--mesh M]`.
pub async fn retire(
    client: &Client,
    purpose: KeyPurpose,
    mesh: &str,
    serial: u32,
) -> anyhow::Result<()> {
    let serial_text = serial.to_string();
    let mut path = segments(purpose, mesh);
    path.push(&serial_text);
    let url = client.url(&path, &[]);
    let answer = client
        .send(reqwest::Method::DELETE, url, None)
        .await
        .with_context(|| {
            format!(
                "retiring signing key {serial} of {}",
                describe(purpose, mesh)
            )
        })?;
    let key: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    outln!(
        "signing key {serial} (kid {}) of {} retired: tokens it signed are refused and their open connections ended",
        field(&key, "kid"),
        describe(purpose, mesh)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_and_tables() {
        assert_eq!(parse_purpose(Some("zone")).unwrap(), KeyPurpose::Zone);
        assert_eq!(
            parse_purpose(Some("Dataplane")).unwrap(),
            KeyPurpose::Dataplane
        );
        let e = parse_purpose(Some("mesh")).unwrap_err().to_string();
        assert!(e.contains("is not zone or dataplane"), "{e}");
        assert!(parse_purpose(None).is_err());
        assert_eq!(
            segments(KeyPurpose::Dataplane, "payments"),
            ["meshes", "payments", "tokens", "signing-keys", "dataplane"]
        );
        let items = vec![
            serde_json::json!({"serial": 1, "kid": "aa11", "state": "verifying"}),
            serde_json::json!({"serial": 2, "kid": "bb22", "state": "signing"}),
        ];
        assert_eq!(
            key_table(&items),
            "SERIAL   KID    STATE\n1        aa11   VERIFYING\n2        bb22   SIGNING\n"
        );
    }
}
