//! Helpers shared by the vault-backend document tests: parse a Mesh and take its first backend's
//! `conf.fromCp`, or the violations that refuse it.

use mosaic_core::resource::{
    Spec,
    mesh::{BackendConf, VaultFromCp},
    parse_document,
};

/// The `conf.fromCp` of the first mtls backend of the Mesh `doc`.
pub fn from_cp(doc: &str) -> VaultFromCp {
    let r = parse_document(doc.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let Spec::Mesh(m) = r.spec else {
        panic!("not a mesh")
    };
    let BackendConf::Vault(v) = m.backends()[0].typed_conf().unwrap() else {
        panic!("not vault")
    };
    v.from_cp().unwrap().clone()
}

/// The (field, message) violations that refuse `doc`; panics if it is accepted.
pub fn violations(doc: &str) -> Vec<(String, String)> {
    match parse_document(doc.as_bytes()) {
        Ok(r) => panic!("should have been refused: {r:?}"),
        Err(e) => e
            .violations()
            .into_iter()
            .map(|v| (v.field, v.message))
            .collect(),
    }
}
