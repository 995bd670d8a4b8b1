//! Tokens keep their bytes across implementations: `fixtures/tokens-ring-v1.json` holds a signing
//! key (PKCS#8 as the global stores it), its public key (JSON as zones receive it) and a zone and a
//! dataplane token made by the hand-written `ring` signer that preceded jsonwebtoken. The tokens
//! still verify with the public key only, and signing the same claims now gives the same bytes
//! (Ed25519 is deterministic), so what this code issues verifies wherever the old code runs.

use base64::Engine as _;
use mosaic_core::token::{
    DataplaneClaims, PublicKey, SigningKey, TokenError, TokenKind, ZoneClaims,
    verify_dataplane_token, verify_zone_token,
};
use serde_json::Value;
use time::OffsetDateTime;

const FIXTURE: &str = include_str!("fixtures/tokens-ring-v1.json");

struct Fixture {
    pkcs8: Vec<u8>,
    public: PublicKey,
    zone_claims: ZoneClaims,
    zone_token: String,
    dataplane_claims: DataplaneClaims,
    dataplane_token: String,
}

fn fixture() -> Fixture {
    fn field<T: serde::de::DeserializeOwned>(f: &Value, name: &str) -> T {
        serde_json::from_value(f[name].clone()).unwrap()
    }
    let f: Value = serde_json::from_str(FIXTURE).unwrap();
    let pkcs8: String = field(&f, "pkcs8");
    Fixture {
        pkcs8: base64::engine::general_purpose::STANDARD
            .decode(pkcs8)
            .unwrap(),
        public: field(&f, "publicKey"),
        zone_claims: field(&f, "zoneClaims"),
        zone_token: field(&f, "zoneToken"),
        dataplane_claims: field(&f, "dataplaneClaims"),
        dataplane_token: field(&f, "dataplaneToken"),
    }
}

/// Inside the fixture tokens' validity (issued at 1 750 000 000 for a day).
fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_750_000_000 + 3600).unwrap()
}

#[test]
fn old_tokens_verify_with_the_public_key_only() {
    let f = fixture();
    let keys = [f.public.clone()];
    assert_eq!(
        verify_zone_token(&f.zone_token, &keys, now()).unwrap(),
        f.zone_claims
    );
    assert_eq!(
        verify_dataplane_token(&f.dataplane_token, &keys, "default", now()).unwrap(),
        f.dataplane_claims
    );
    // And still as strictly: the other kind, a day later, another key.
    assert!(matches!(
        verify_zone_token(&f.dataplane_token, &keys, now()),
        Err(TokenError::WrongKind {
            expected: TokenKind::Zone,
            found: Some(TokenKind::Dataplane)
        })
    ));
    let later = OffsetDateTime::from_unix_timestamp(f.zone_claims.exp).unwrap();
    assert!(matches!(
        verify_zone_token(&f.zone_token, &keys, later),
        Err(TokenError::Expired { .. })
    ));
    let other = SigningKey::generate().unwrap();
    assert!(matches!(
        verify_zone_token(&f.zone_token, &[other.public_key().clone()], now()),
        Err(TokenError::UnknownKey { .. })
    ));
}

#[test]
fn stored_key_reloads_and_signs_the_same_bytes() {
    let f = fixture();
    let key = SigningKey::from_pkcs8(&f.pkcs8).unwrap();
    assert_eq!(key.public_key(), &f.public);
    assert_eq!(
        key.sign_zone_token(&f.zone_claims).unwrap().expose(),
        &f.zone_token
    );
    assert_eq!(
        key.sign_dataplane_token(&f.dataplane_claims)
            .unwrap()
            .expose(),
        &f.dataplane_token
    );
}

#[test]
fn wire_format_is_compact_jws_with_our_header() {
    let f = fixture();
    let key = SigningKey::from_pkcs8(&f.pkcs8).unwrap();
    let claims = ZoneClaims::new("west", now(), std::time::Duration::from_secs(60));
    let token = key.sign_zone_token(&claims).unwrap().into_inner();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert!(
        !token.contains('=') && !token.contains('+') && !token.contains('/'),
        "base64url without padding: {token}"
    );
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    assert_eq!(
        String::from_utf8(b64.decode(parts[0]).unwrap()).unwrap(),
        format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}"}}"#, f.public.kid)
    );
    assert_eq!(
        String::from_utf8(b64.decode(parts[1]).unwrap()).unwrap(),
        format!(
            r#"{{"kind":"zone","zone":"west","iat":{},"exp":{},"jti":"{}"}}"#,
            claims.iat, claims.exp, claims.jti
        )
    );
    assert_eq!(b64.decode(parts[2]).unwrap().len(), 64);
    // The fixture's tokens have the same header.
    assert_eq!(f.zone_token.split('.').next(), Some(parts[0]));
}
