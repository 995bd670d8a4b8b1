//! Hostile values (#16 item 6): property tests over the small parsers a peer reaches: tokens
//! (a zone's on KDS, a data plane's on SDS: random strings, valid tokens with a byte changed in
//! header, claims or signature, other algorithms, huge base64), Kuma durations, the SPIFFE ID and
//! `commonName` templates, SDS resource names and node ids, the token-tags rule, DataSources.
//!
//! Properties: nothing panics; a changed token never verifies, and its refusal never quotes it;
//! what formats parses back to itself. `PROPTEST_CASES=N` raises the case counts.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use mosaic_core::{
    datasource::{DataSource, decode_base64},
    duration::{format_duration, parse_duration},
    sds::{SecretName, check_tags, check_workload, node_id, parse_node_id},
    spiffe_template::{SpiffeTemplate, check_spiffe_id, check_trust_domain},
    template::Template,
    token::{
        DataplaneClaims, PublicKey, SigningKey, ZoneClaims, signing_key_of, verify_dataplane_token,
        verify_zone_token,
    },
    validate::{FieldPath, Validator},
};
use proptest::{prelude::*, test_runner::Config};
use time::OffsetDateTime;

/// Cases per property unless `PROPTEST_CASES` says otherwise.
fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

struct Keys {
    key: SigningKey,
    other: SigningKey,
    zone: String,
    dataplane: String,
}

fn keys() -> &'static Keys {
    static KEYS: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let key = SigningKey::generate().expect("key");
        let other = SigningKey::generate().expect("key");
        let now = OffsetDateTime::now_utc();
        let zone = key
            .sign_zone_token(&ZoneClaims::new("east", now, Duration::from_secs(3600)))
            .expect("zone token")
            .expose()
            .clone();
        let tags = BTreeMap::from([("kuma.io/service".to_string(), vec!["web".to_string()])]);
        let dataplane = key
            .sign_dataplane_token(&DataplaneClaims::new(
                "default",
                "web-1",
                tags,
                now,
                Duration::from_secs(3600),
            ))
            .expect("dataplane token")
            .expose()
            .clone();
        Keys {
            key,
            other,
            zone,
            dataplane,
        }
    })
}

fn public_keys() -> Vec<PublicKey> {
    let k = keys();
    vec![k.key.public_key().clone(), k.other.public_key().clone()]
}

/// Verifies `token` both ways; returns whether either accepted it. Refusals never quote it.
fn verifies(token: &str) -> Result<bool, TestCaseError> {
    let keys = public_keys();
    let now = OffsetDateTime::now_utc();
    let zone = verify_zone_token(token, &keys, now);
    let dp = verify_dataplane_token(token, &keys, "default", now);
    for e in [
        zone.as_ref().err().map(ToString::to_string),
        dp.as_ref().err().map(ToString::to_string),
    ]
    .into_iter()
    .flatten()
    {
        prop_assert!(!e.is_empty());
        if token.len() >= 16 {
            prop_assert!(!e.contains(token), "a refusal quotes the token: {e}");
            for part in token.split('.').filter(|p| p.len() >= 16) {
                prop_assert!(!e.contains(part), "a refusal quotes part of the token: {e}");
            }
        }
    }
    let _ = signing_key_of(token);
    Ok(zone.is_ok() || dp.is_ok())
}

/// Which part of a token a mutation changes.
#[derive(Clone, Copy, Debug)]
enum Part {
    Header,
    Claims,
    Signature,
    Anywhere,
}

fn mutate(token: &str, part: Part, at: prop::sample::Index, byte: u8) -> String {
    let dots: Vec<usize> = token.match_indices('.').map(|(i, _)| i).collect();
    let (start, end) = match part {
        Part::Header => (0, dots[0]),
        Part::Claims => (dots[0] + 1, dots[1]),
        Part::Signature => (dots[1] + 1, token.len()),
        Part::Anywhere => (0, token.len()),
    };
    let mut bytes = token.as_bytes().to_vec();
    let i = start + at.index(end - start);
    bytes[i] = if bytes[i] == byte {
        byte.wrapping_add(1)
    } else {
        byte
    };
    String::from_utf8_lossy(&bytes).into_owned()
}

fn hs256(message: &str, secret: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    B64.encode(ring::hmac::sign(&key, message.as_bytes()).as_ref())
}

/// A token whose header says `alg` and `kid`, with `claims`, "signed" with `signature`.
fn forged(
    alg: &str,
    kid: &str,
    claims: &serde_json::Value,
    sign: impl Fn(&str) -> String,
) -> String {
    let header = serde_json::json!({"alg": alg, "typ": "JWT", "kid": kid});
    let message = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let sig = sign(&message);
    format!("{message}.{sig}")
}

proptest! {
    #![proptest_config(config(256))]

    /// A valid token with one byte changed (in its header, claims, signature or anywhere) never
    /// verifies.
    #[test]
    fn changed_tokens_never_verify(
        which in any::<bool>(),
        part in prop_oneof![Just(Part::Header), Just(Part::Claims), Just(Part::Signature), Just(Part::Anywhere)],
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let k = keys();
        let token = if which { &k.zone } else { &k.dataplane };
        let changed = mutate(token, part, at, byte);
        prop_assume!(changed.trim() != token.as_str());
        prop_assert!(!verifies(&changed)?, "a changed token verified: {changed}");
    }

    /// Parts of valid tokens swapped between them, cut short or repeated never verify.
    #[test]
    fn spliced_tokens_never_verify(cut in any::<prop::sample::Index>(), swap in 0usize..6) {
        let k = keys();
        let z: Vec<&str> = k.zone.split('.').collect();
        let d: Vec<&str> = k.dataplane.split('.').collect();
        let spliced = match swap {
            0 => format!("{}.{}.{}", z[0], d[1], z[2]),
            1 => format!("{}.{}.{}", d[0], z[1], d[2]),
            2 => format!("{}.{}.{}", z[0], z[1], d[2]),
            3 => format!("{}.{}", z[0], z[1]),
            4 => format!("{}.{}.{}.{}", z[0], z[1], z[2], z[2]),
            _ => k.zone[..cut.index(k.zone.len())].to_string(),
        };
        prop_assert!(!verifies(&spliced)?);
    }

    /// Tokens naming other algorithms (none, HS256 keyed with the public key, RS256 without an
    /// imported key, unknown ones) with any claims never verify.
    #[test]
    fn other_algorithms_never_verify(
        alg in prop_oneof![Just("none".to_string()), Just("HS256".to_string()), Just("HS512".to_string()), Just("RS256".to_string()), Just("ES256".to_string()), Just("EdDSA".to_string()), "[A-Za-z0-9]{0,8}"],
        kid_is_real in any::<bool>(),
        mesh in prop_oneof![Just("default".to_string()), "[a-z]{0,6}"],
        signature in prop_oneof![Just(0usize), Just(1), Just(2)],
    ) {
        let k = keys();
        let public = k.key.public_key();
        let kid = if kid_is_real { public.kid.clone() } else { "1".to_string() };
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = serde_json::json!({"kind": "dataplane", "mesh": mesh, "name": "web-1",
            "zone": "east", "Zone": "east", "Mesh": mesh, "Name": "web-1",
            "iat": now, "exp": now + 3600, "jti": "x", "iss": "kuma"});
        let token = forged(&alg, &kid, &claims, |m| match signature {
            0 => String::new(),
            1 => hs256(m, &public.bytes),
            _ => B64.encode([0u8; 64]),
        });
        prop_assert!(!verifies(&token)?, "forged token verified: {token}");
    }

    /// Random strings, JWT-shaped strings of random base64, and huge ones: refused, no panic.
    #[test]
    fn random_tokens_are_refused(
        s in "\\PC{0,200}",
        a in "[A-Za-z0-9_-]{0,64}", b in "[A-Za-z0-9_-]{0,256}", c in "[A-Za-z0-9_-]{0,128}",
        huge in 0usize..3,
    ) {
        let big = "A".repeat([10_000, 100_000, 1_000_000][huge]);
        for token in [s.clone(), format!("{a}.{b}.{c}"), format!("{a}.{big}.{c}"), format!("{big}.{b}.{c}")] {
            prop_assert!(!verifies(&token)?);
        }
    }

    /// Durations: no panic on any text; what is accepted formats and parses back to itself.
    #[test]
    fn durations_parse_or_refuse(text in prop_oneof![
        "\\PC{0,24}",
        "[0-9.]{0,12}(ns|us|µs|ms|s|m|h|d|w|y|x|){0,3}",
        "([0-9]{1,25}(\\.[0-9]{0,6})?(ns|us|ms|s|m|h|d|w|y)){1,4}",
    ]) {
        match parse_duration(&text) {
            Ok(d) => {
                let back = parse_duration(&format_duration(d));
                prop_assert_eq!(back, Ok(d), "{:?} formats as {:?}", text, format_duration(d));
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// Every duration up to `u64::MAX` ns (584 years) formats to text that parses back to it.
    #[test]
    fn formatted_durations_parse_back(secs in 0u64..18_446_744_073, nanos in 0u32..1_000_000_000) {
        let d = Duration::new(secs, nanos);
        prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
    }

    /// SPIFFE ID templates and the commonName template: no panic on any text; a template that
    /// parses renders with any tags and labels without a panic, and a rendered SPIFFE ID is checked.
    #[test]
    fn templates_parse_and_render_without_panic(
        text in prop_oneof![
            "\\PC{0,40}",
            "([a-z/.]{0,4}(\\{\\{ ?(\\.Mesh|\\.Zone|\\.Namespace|\\.Workload|\\.ServiceAccount|\\.X|label \"[a-z./]{0,8}\"|tag \"[a-z./]{0,8}\"( \\| (replace \"[._]\" \"-\"|lower|upper|zone|x))*|zone|\"|\\|) ?\\}\\}?)?){0,4}",
        ],
        tags in prop::collection::btree_map("[a-z./]{0,8}", prop::collection::btree_set("\\PC{0,8}", 0..3), 0..4),
        labels in prop::collection::btree_map("[a-z./]{0,8}", "\\PC{0,8}", 0..4),
        zone in prop::option::of("[a-z-]{0,8}"),
    ) {
        if let Ok(t) = SpiffeTemplate::parse(&text) {
            let fields = [("Mesh", "default"), ("Zone", "east"), ("Namespace", "ns"), ("Workload", "w"), ("ServiceAccount", "sa")];
            if let Ok(id) = t.render(&text, &fields, &labels) {
                let _ = check_spiffe_id(&id);
                let _ = check_trust_domain(&id);
            }
        }
        let tags: BTreeMap<String, BTreeSet<String>> = tags;
        if let Ok(t) = Template::parse(&text) {
            let _ = t.referenced_tags();
            let _ = t.render(&tags);
        }
        if let Ok(t) = Template::parse_zone_field(&text) {
            let _ = t.names_zone();
            let _ = t.render_zone(zone.as_deref());
        }
    }

    /// SDS names and node ids: no panic; what parses formats back to the same text.
    #[test]
    fn sds_names_and_node_ids(name in prop_oneof![
        "\\PC{0,40}",
        "(identity_cert:secret:|mesh_ca:secret:|)[a-z.:-]{0,12}",
    ], id in prop_oneof!["\\PC{0,40}", "[a-z]{0,6}\\.{0,2}[a-z.]{0,8}"]) {
        if let Some(parsed) = SecretName::parse(&name) {
            prop_assert_eq!(parsed.to_string(), name.clone());
            prop_assert!(!parsed.mesh().is_empty());
        }
        match parse_node_id(&id) {
            Ok((mesh, rest)) => {
                prop_assert!(!mesh.is_empty() && !rest.is_empty() && !mesh.contains('.'));
                prop_assert_eq!(node_id(mesh, rest), id.clone());
            }
            Err(e) => prop_assert!(e.contains("node.id")),
        }
    }

    /// The token-tags rule: no panic; a Dataplane with exactly the token's tags fits; with
    /// `require_all_tags`, a Dataplane tag the token does not name is refused.
    #[test]
    fn token_tags_rule(
        token_tags in prop::collection::btree_map("[a-z./]{1,8}", prop::collection::vec("[a-z0-9]{0,4}", 1..3), 0..4),
        extra in prop::collection::btree_map("[A-Z]{1,4}", prop::collection::btree_set("[a-z]{0,3}", 1..3), 0..3),
        workload in "[a-z]{0,4}", label in prop::option::of("[a-z]{0,4}"),
    ) {
        let exact: BTreeMap<String, BTreeSet<String>> = token_tags
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
            .collect();
        prop_assert!(check_tags(&exact, &token_tags, false).is_ok());
        prop_assert!(check_tags(&exact, &token_tags, true).is_ok());
        let mut more = exact.clone();
        more.extend(extra.clone());
        prop_assert!(check_tags(&more, &token_tags, false).is_ok());
        prop_assert_eq!(check_tags(&more, &token_tags, true).is_ok(), extra.is_empty());
        let labels: BTreeMap<String, String> = label.iter().map(|l| ("kuma.io/workload".to_string(), l.clone())).collect();
        let fits = workload.is_empty() || label.as_deref() == Some(workload.as_str());
        prop_assert_eq!(check_workload(&workload, &labels).is_ok(), fits);
    }

    /// DataSources: validation never panics and refuses exactly the shapes it should; base64 is
    /// read in every alphabet and refused otherwise without a panic.
    #[test]
    fn datasources(
        secret in prop::option::of("\\PC{0,8}"), file in prop::option::of("\\PC{0,8}"),
        inline in prop::option::of("[A-Za-z0-9+/=_ \n-]{0,16}"), inline_string in prop::option::of("\\PC{0,8}"),
        bytes in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let ds = DataSource { secret, file, inline, inline_string };
        let mut v = Validator::new();
        ds.validate(&FieldPath::root().field("conf"), &mut v);
        let ok = v.finish().is_ok();
        if ds.set_count() != 1 {
            prop_assert!(!ok);
        }
        let _ = ds.describe();
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        prop_assert_eq!(decode_base64(&STANDARD.encode(&bytes)), Ok(bytes.clone()));
        prop_assert_eq!(decode_base64(&URL_SAFE_NO_PAD.encode(&bytes)), Ok(bytes.clone()));
    }
}

/// A DataSource's description never carries the inline value.
#[test]
fn datasource_descriptions_do_not_carry_values() {
    let ds = DataSource::inline_string("s3cr3t-value-that-must-not-show");
    assert!(!ds.describe().contains("s3cr3t"));
    let ds = DataSource::inline_bytes(b"s3cr3t-value-that-must-not-show");
    assert!(!ds.describe().contains("czNjcjN0"));
}

/// The unchanged tokens verify (so the properties above start from valid tokens).
#[test]
fn unchanged_tokens_verify() {
    let k = keys();
    let now = OffsetDateTime::now_utc();
    assert_eq!(
        verify_zone_token(&k.zone, &public_keys(), now)
            .expect("zone")
            .zone,
        "east"
    );
    let dp = verify_dataplane_token(&k.dataplane, &public_keys(), "default", now).expect("dp");
    assert_eq!(dp.name, "web-1");
}
