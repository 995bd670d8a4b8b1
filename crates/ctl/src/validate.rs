//! `mosaicctl validate -f FILE|- [--issue]`: checks documents offline, as the API will on apply,
//! and with `--issue` proves every CA backend of every Mesh by issuing a test certificate from
//! this machine (what the global does before it accepts a Mesh).

use std::{io::Read as _, path::Path, sync::Arc};

use anyhow::Context as _;
use mosaic_ca::build_backend;
use mosaic_core::{
    ca::{IssueRequest, identity::inspect_pem},
    datasource::{SecretSource, StaticSecrets},
    resource::{
        Resource, Spec, UnknownFields, parse::parse_documents_with, unknown_fields::Decoded,
    },
};

/// Reads `file` (`-` for stdin).
pub fn read_input(file: &Path) -> anyhow::Result<Vec<u8>> {
    if file == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading standard input")?;
        Ok(buf)
    } else {
        std::fs::read(file).with_context(|| format!("reading {}", file.display()))
    }
}

fn label(r: &Resource) -> String {
    match &r.meta.mesh {
        Some(m) => format!("{} {m}/{}", r.resource_type(), r.meta.name),
        None => format!("{} {}", r.resource_type(), r.meta.name),
    }
}

/// The policy of `--strict`: refuse unknown fields, else ignore them as Kuma does.
pub fn policy(strict: bool) -> UnknownFields {
    if strict {
        UnknownFields::Refuse
    } else {
        UnknownFields::Ignore
    }
}

/// Prints a `warning:` line on stderr for every ignored field of every document and returns
/// the resources.
pub fn warn_ignored(decoded: Vec<Decoded>) -> Vec<Resource> {
    decoded
        .into_iter()
        .map(|d| {
            for path in &d.ignored {
                warnln!(
                    "{}: {} (Kuma ignores it too; use --strict to refuse it)",
                    label(&d.resource),
                    mosaic_core::resource::unknown_fields::ignored_message(path)
                );
            }
            d.resource
        })
        .collect()
}

/// Validates every document (`strict`: unknown fields are refused, else ignored with a
/// warning); with `issue`, test-issues from every backend. Returns whether all passed; prints
/// one line per resource and one per backend.
pub async fn run(input: &[u8], issue: bool, strict: bool) -> anyhow::Result<bool> {
    let resources = match parse_documents_with(input, policy(strict)) {
        Ok(r) => warn_ignored(r),
        Err(mosaic_core::resource::ParseError::Invalid { index, error }) => {
            outln!("document {}: invalid", index + 1);
            for v in error.violations {
                outln!("  {v}");
            }
            return Ok(false);
        }
        Err(e) => {
            outln!("invalid: {e}");
            return Ok(false);
        }
    };
    let mut secrets = StaticSecrets::new();
    for r in &resources {
        if let (Spec::Secret(s), Some(mesh)) = (&r.spec, &r.meta.mesh)
            && let Ok(v) = s.value()
        {
            secrets.insert(mesh, &r.meta.name, v.into_inner());
        }
    }
    let secrets: Arc<dyn SecretSource> = Arc::new(secrets);
    let mut ok = true;
    for r in &resources {
        outln!("{}: valid", label(r));
        let Spec::Mesh(mesh) = &r.spec else { continue };
        if !issue {
            continue;
        }
        for backend in mesh.backends() {
            let name = &backend.name;
            let result = async {
                if backend.kind == "builtin" {
                    return Ok::<_, anyhow::Error>(
                        "builtin: the global generates its CA when the Mesh is applied".to_string(),
                    );
                }
                let ca = build_backend(&r.meta.name, backend, secrets.clone()).await?;
                let cert = ca
                    .issue(&IssueRequest::validation(ca.default_ttl()))
                    .await?;
                let info = inspect_pem(&cert.chain_pem)?;
                Ok(format!(
                    "test certificate issued: {} issuer \"{}\" serial {} expires {}",
                    info.uri_sans.first().map(String::as_str).unwrap_or("-"),
                    info.issuer,
                    info.serial,
                    info.not_after
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                ))
            }
            .await;
            match result {
                Ok(line) => outln!("  backend {name} ({}): {line}", backend.kind),
                Err(e) => {
                    ok = false;
                    outln!("  backend {name} ({}): FAILED: {e:#}", backend.kind);
                }
            }
        }
    }
    Ok(ok)
}
