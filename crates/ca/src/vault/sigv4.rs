//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`) through the `aws-sigv4` crate.
//!
//! Vault's AWS IAM login asks the client to *sign* an STS `GetCallerIdentity` request and hand the
//! signed request to Vault, which replays it against STS. This module signs that request with
//! `aws-sigv4` (the AWS SDK's signer, with its default settings for non-S3 services: double
//! URI-encoding, path normalization, the session token signed); it never sends anything.
//!
//! What this module adds around the library: it checks what the library would panic on or reject
//! without naming the culprit (a URL without a host, an invalid header name or value, an empty
//! region or service, a header the signer sets itself), and it spells the headers to add as Go's
//! `http.Header` does (`X-Amz-Date`), the shape Vault's login parses.
//!
//! The tests below check the published AWS SigV4 test-suite vectors byte for byte.

use std::fmt;
use std::time::SystemTime;

use aws_sigv4::http_request::{self, SignableBody, SigningSettings};
use aws_sigv4::sign::v4;
use reqwest::header::{HeaderName, HeaderValue};
use time::OffsetDateTime;
use url::Url;

use mosaic_core::Sensitive;

/// AWS credentials: a long-lived key pair, or temporary credentials with a session token.
///
/// `Debug` redacts the secret access key and the session token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    /// The access key id (`AKIA...` / `ASIA...`); not secret.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Sensitive<String>,
    /// The session token of temporary credentials.
    pub session_token: Option<Sensitive<String>>,
}

/// The signing algorithm named in the string to sign and the `Authorization` header.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The header that carries the request time, `YYYYMMDD'T'HHMMSS'Z'`.
pub const X_AMZ_DATE: &str = "X-Amz-Date";

/// The header that carries the session token of temporary credentials.
pub const X_AMZ_SECURITY_TOKEN: &str = "X-Amz-Security-Token";

/// The header that carries the signature.
pub const AUTHORIZATION: &str = "Authorization";

/// Headers the signer adds itself; a caller that passes one gets [`SigV4Error::ReservedHeader`].
const RESERVED_HEADERS: [&str; 3] = ["authorization", "x-amz-date", "x-amz-security-token"];

/// The provider name `aws-credential-types` records with credentials (never sent).
const PROVIDER_NAME: &str = "mosaic";

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SigV4Error {
    /// The URL has no host, so there is nothing to put in the signed `host` header.
    #[error("cannot SigV4-sign `{url}`: the URL has no host; use an absolute http(s) URL")]
    NoHost {
        /// The offending URL.
        url: String,
    },
    /// The caller passed a header the signer computes itself.
    #[error(
        "cannot SigV4-sign: header `{name}` is set by the signer; remove it from the headers to sign"
    )]
    ReservedHeader {
        /// The header name as given.
        name: String,
    },
    /// A header name is empty or contains characters not allowed in an HTTP header name.
    #[error("cannot SigV4-sign: `{name}` is not a valid HTTP header name")]
    InvalidHeaderName {
        /// The header name as given.
        name: String,
    },
    /// A header value contains characters not allowed in an HTTP header value (a line break, a
    /// control character); such a request could not be sent either.
    #[error(
        "cannot SigV4-sign: the value of header `{name}` is not a valid HTTP header value \
         (line break or control character); put it on one line"
    )]
    InvalidHeaderValue {
        /// The header name as given (the value is not quoted: it may be a secret).
        name: String,
    },
    /// The signing region or service is empty.
    #[error("cannot SigV4-sign: the signing {what} is empty; pass e.g. `us-east-1` / `sts`")]
    EmptyScope {
        /// `region` or `service`.
        what: &'static str,
    },
    /// `aws-sigv4` refused the request (its message and causes, never the credentials).
    #[error("cannot SigV4-sign `{url}`: {detail}")]
    Signer {
        /// The URL being signed.
        url: String,
        /// The library's error and its sources.
        detail: String,
    },
}

/// The request to sign. Nothing is sent; the signer only reads these parts.
#[derive(Debug, Clone, Copy)]
pub struct SignableRequest<'a> {
    /// The HTTP method, e.g. `POST`. Used as given (AWS expects upper case).
    pub method: &'a str,
    /// The absolute URL: its host (and non-default port), path and query are signed.
    pub url: &'a Url,
    /// Headers to send and sign (name, value), in order; repeated names are allowed. A `Host`
    /// header overrides the one derived from the URL. Must not contain `Authorization`,
    /// `X-Amz-Date` or `X-Amz-Security-Token`. `User-Agent`, `X-Amzn-Trace-Id` and
    /// `Transfer-Encoding` may be passed; they are left out of the signature.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body, hashed into the signature.
    pub body: &'a [u8],
}

/// Where and when the signature is valid.
#[derive(Debug, Clone, Copy)]
pub struct SigningParams<'a> {
    /// The credentials that sign; the session token, if any, is sent and signed.
    pub credentials: &'a AwsCredentials,
    /// The signing region, e.g. `us-east-1` (the global STS endpoint signs for `us-east-1`).
    pub region: &'a str,
    /// The signing service name, e.g. `sts`.
    pub service: &'a str,
    /// The request time; AWS rejects signatures more than about 15 minutes off.
    pub time: OffsetDateTime,
}

/// The result of signing: the headers to add and the signature.
///
/// `Debug` redacts the session token.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningOutput {
    headers: Vec<(&'static str, String)>,
    signature: String,
}

/// Signs `request` with SigV4 and returns the headers to add to it.
///
/// The caller sends the request with its own headers, unchanged, plus
/// [`SigningOutput::headers`] (`X-Amz-Date`, `X-Amz-Security-Token` when the credentials carry a
/// session token, and `Authorization`).
pub fn sign(
    request: &SignableRequest<'_>,
    params: &SigningParams<'_>,
) -> Result<SigningOutput, SigV4Error> {
    if params.region.is_empty() {
        return Err(SigV4Error::EmptyScope { what: "region" });
    }
    if params.service.is_empty() {
        return Err(SigV4Error::EmptyScope { what: "service" });
    }
    // aws-sigv4 panics on a URI without an authority.
    if request.url.host_str().is_none_or(str::is_empty) {
        return Err(SigV4Error::NoHost {
            url: request.url.to_string(),
        });
    }
    for (name, value) in request.headers {
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(SigV4Error::InvalidHeaderName {
                name: (*name).to_owned(),
            });
        }
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(SigV4Error::ReservedHeader {
                name: (*name).to_owned(),
            });
        }
        if HeaderValue::from_str(value).is_err() {
            return Err(SigV4Error::InvalidHeaderValue {
                name: (*name).to_owned(),
            });
        }
    }
    let signer_error = |e: &dyn std::error::Error| SigV4Error::Signer {
        url: request.url.to_string(),
        detail: error_chain(e),
    };

    let credentials = params.credentials;
    let identity = aws_credential_types::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.expose().clone(),
        credentials
            .session_token
            .as_ref()
            .map(|token| token.expose().clone()),
        None,
        PROVIDER_NAME,
    )
    .into();
    let signing_params = v4::SigningParams::builder()
        .identity(&identity)
        .region(params.region)
        .name(params.service)
        .time(SystemTime::from(params.time))
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| signer_error(&e))?
        .into();
    let signable = http_request::SignableRequest::new(
        request.method,
        request.url.as_str(),
        request.headers.iter().copied(),
        SignableBody::Bytes(request.body),
    )
    .map_err(|e| signer_error(&e))?;
    let (instructions, signature) = http_request::sign(signable, &signing_params)
        .map_err(|e| signer_error(&e))?
        .into_parts();

    // The library names them in lower case, in its own order; Vault gets them as Go spells them.
    let (added, _query) = instructions.into_parts();
    let mut headers: Vec<(&'static str, String)> = Vec::with_capacity(added.len());
    for name in [X_AMZ_DATE, X_AMZ_SECURITY_TOKEN, AUTHORIZATION] {
        if let Some(header) = added.iter().find(|h| h.name().eq_ignore_ascii_case(name)) {
            headers.push((name, header.value().to_owned()));
        }
    }
    Ok(SigningOutput { headers, signature })
}

// === impl SigningOutput ===

impl SigningOutput {
    /// The headers to add to the request: `X-Amz-Date`, `X-Amz-Security-Token` (with temporary
    /// credentials) and `Authorization`, in that order.
    pub fn headers(&self) -> &[(&'static str, String)] {
        &self.headers
    }

    /// The value of the `Authorization` header.
    pub fn authorization(&self) -> &str {
        self.headers
            .iter()
            .find(|(name, _)| *name == AUTHORIZATION)
            .map(|(_, value)| value.as_str())
            .unwrap_or_default()
    }

    /// The hex signature.
    pub fn signature(&self) -> &str {
        &self.signature
    }
}

impl fmt::Debug for SigningOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| match *name {
                X_AMZ_SECURITY_TOKEN => (*name, "<redacted>"),
                _ => (*name, value.as_str()),
            })
            .collect();
        f.debug_struct("SigningOutput")
            .field("headers", &headers)
            .field("signature", &self.signature)
            .finish()
    }
}

/// An error and its sources, `: `-separated.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_core::Sensitive;
    use time::UtcOffset;

    const ACCESS_KEY: &str = "AKIDEXAMPLE";
    const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    /// The session token of the suite's `post-sts-header-before` vector.
    const STS_TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

    fn creds(token: Option<&str>) -> AwsCredentials {
        AwsCredentials {
            access_key_id: ACCESS_KEY.to_owned(),
            secret_access_key: Sensitive::new(SECRET_KEY.to_owned()),
            session_token: token.map(|t| Sensitive::new(t.to_owned())),
        }
    }

    /// Lowercase hex SHA-256, computed with ring rather than by the library under test.
    fn sha256_hex(data: &[u8]) -> String {
        hex::encode(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
    }

    fn suite_time() -> OffsetDateTime {
        // 2015-08-30T12:36:00Z
        OffsetDateTime::from_unix_timestamp(1_440_938_160).expect("valid timestamp")
    }

    /// One vector of the AWS SigV4 test suite (the CRT `aws-signing-test-suite/v4` layout, as
    /// vendored in smithy-rs `aws/rust-runtime/aws-sigv4/aws-signing-test-suite`):
    /// the request, then the published canonical request, string to sign and Authorization.
    struct Vector {
        name: &'static str,
        method: &'static str,
        url: &'static str,
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
        token: Option<&'static str>,
        creq: &'static str,
        sts: &'static str,
        authz: &'static str,
    }

    fn check(v: &Vector) {
        check_with(v, suite_time(), "us-east-1", "service");
    }

    fn check_with(v: &Vector, time: OffsetDateTime, region: &str, service: &str) {
        let url = Url::parse(v.url).expect("vector URL parses");
        let credentials = creds(v.token);
        let out = sign(
            &SignableRequest {
                method: v.method,
                url: &url,
                headers: v.headers,
                body: v.body.as_bytes(),
            },
            &SigningParams {
                credentials: &credentials,
                region,
                service,
                time,
            },
        )
        .expect("vector signs");
        assert_signed_as(&out, v.creq, v.sts, v.authz, time, region, service, v.name);
    }

    /// aws-sigv4 keeps its canonical request and string to sign to itself, but its signature
    /// commits to both: it is the HMAC of the string to sign, whose last line is the SHA-256 of
    /// the canonical request. So: the published canonical request hashes into the published
    /// string to sign, the published string to sign HMACs (under the derived key) into the
    /// signature aws-sigv4 produced, and the Authorization header is the published one. Together
    /// these hold only if aws-sigv4 built exactly the published canonical request and string to
    /// sign.
    #[allow(clippy::too_many_arguments)]
    fn assert_signed_as(
        out: &SigningOutput,
        creq: &str,
        sts: &str,
        authz: &str,
        time: OffsetDateTime,
        region: &str,
        service: &str,
        name: &str,
    ) {
        let lines: Vec<&str> = sts.split('\n').collect();
        assert_eq!(lines.len(), 4, "{name}: string to sign has 4 lines");
        assert_eq!(lines[0], ALGORITHM, "{name}: string to sign");
        assert_eq!(
            lines[3],
            sha256_hex(creq.as_bytes()),
            "{name}: canonical request"
        );
        assert_eq!(
            out.headers().first().map(|(n, v)| (*n, v.as_str())),
            Some((X_AMZ_DATE, lines[1])),
            "{name}: string to sign (date)"
        );
        let key = v4::generate_signing_key(SECRET_KEY, SystemTime::from(time), region, service);
        assert_eq!(
            v4::calculate_signature(key, sts.as_bytes()),
            out.signature(),
            "{name}: string to sign"
        );
        assert_eq!(out.authorization(), authz, "{name}: Authorization");
    }

    /// Signs a GET of `url` with `headers` at the suite's time and scope.
    fn sign_get(url: &str, headers: &[(&str, &str)]) -> SigningOutput {
        let url = Url::parse(url).expect("URL parses");
        let credentials = creds(None);
        sign(
            &SignableRequest {
                method: "GET",
                url: &url,
                headers,
                body: b"",
            },
            &SigningParams {
                credentials: &credentials,
                region: "us-east-1",
                service: "service",
                time: suite_time(),
            },
        )
        .expect("signs")
    }

    #[test]
    fn get_vanilla() {
        check(&Vector {
            name: "get-vanilla",
            method: "GET",
            url: "https://example.amazonaws.com/",
            headers: &[],
            body: "",
            token: None,
            creq: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
            authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        });
    }

    #[test]
    fn get_vanilla_query_order_key_case() {
        check(&Vector {
            name: "get-vanilla-query-order-key-case",
            method: "GET",
            url: "https://example.amazonaws.com/?Param2=value2&Param1=value1",
            headers: &[("Host", "example.amazonaws.com")],
            body: "",
            token: None,
            creq: "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
            authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        });
    }

    #[test]
    fn get_vanilla_query_order_encoded() {
        check(&Vector {
            name: "get-vanilla-query-order-encoded",
            method: "GET",
            url: "https://example.amazonaws.com/?Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
            headers: &[],
            body: "",
            token: None,
            creq: "GET\n/\n%E1%88%B4=Value1&Param=Value2&Param-3=Value3\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n868294f5c38bd141c4972a373a76654f1418a8e4fc18b2e7903ae45e8ae0ec71",
            authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
        });
    }

    #[test]
    fn get_vanilla_query_unreserved() {
        check(&Vector {
            name: "get-vanilla-query-unreserved",
            method: "GET",
            url: "https://example.amazonaws.com/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            headers: &[],
            body: "",
            token: None,
            creq: "GET\n/\n-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nc30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
            authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
        });
    }

    #[test]
    fn get_vanilla_utf8_query() {
        check(&Vector {
            name: "get-vanilla-utf8-query",
            method: "GET",
            url: "https://example.amazonaws.com/?\u{1234}=bar",
            headers: &[],
            body: "",
            token: None,
            creq: "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\neb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
            authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
        });
    }

    #[test]
    fn get_unreserved_path() {
        check(&Vector {
            name: "get-unreserved",
            method: "GET",
            url: "https://example.amazonaws.com/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            headers: &[],
            body: "",
            token: None,
            creq: "GET\n/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
            authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
        });
    }

    #[test]
    fn get_slashes_and_dots_normalized() {
        check(&Vector {
            name: "get-slashes-normalized",
            method: "GET",
            url: "https://example.amazonaws.com//example//",
            headers: &[],
            body: "",
            token: None,
            creq: "GET\n/example/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\ncb96b4ac96d501f7c5c15bc6d67b3035061cfced4af6585ad927f7e6c985c015",
            authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
        });
        // get-relative-relative-normalized and get-slash-dot-slash-normalized both reduce to
        // get-vanilla's signature.
        for url in [
            "https://example.amazonaws.com/example1/example2/../..",
            "https://example.amazonaws.com/./",
        ] {
            check(&Vector {
                name: url,
                method: "GET",
                url,
                headers: &[],
                body: "",
                token: None,
                creq: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                sts: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
                authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            });
        }
    }

    #[test]
    fn post_vanilla() {
        check(&Vector {
            name: "post-vanilla",
            method: "POST",
            url: "https://example.amazonaws.com/",
            headers: &[],
            body: "",
            token: None,
            creq: "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
            authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        });
    }

    #[test]
    fn post_vanilla_empty_query_value() {
        check(&Vector {
            name: "post-vanilla-empty-query-value",
            method: "POST",
            url: "https://example.amazonaws.com/?Param1=value1",
            headers: &[],
            body: "",
            token: None,
            creq: "POST\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
            authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
        });
    }

    #[test]
    fn post_x_www_form_urlencoded() {
        // The CRT suite signs the body, so the request carries Content-Length and
        // X-Amz-Content-Sha256; both are ordinary caller headers here.
        check(&Vector {
            name: "post-x-www-form-urlencoded",
            method: "POST",
            url: "https://example.amazonaws.com/",
            headers: &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Host", "example.amazonaws.com"),
                ("Content-Length", "13"),
                (
                    "x-amz-content-sha256",
                    "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
                ),
            ],
            body: "Param1=value1",
            token: None,
            creq: "POST\n/\n\ncontent-length:13\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\nx-amz-date:20150830T123600Z\n\ncontent-length;content-type;host;x-amz-content-sha256;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            sts: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nb1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d16cfb",
            authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
        });
    }

    #[test]
    fn post_x_www_form_urlencoded_parameters() {
        check(&Vector {
            name: "post-x-www-form-urlencoded-parameters",
            method: "POST",
            url: "https://example.amazonaws.com/",
            headers: &[
                (
                    "Content-Type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                ),
                ("Host", "example.amazonaws.com"),
                ("Content-Length", "13"),
                (
                    "x-amz-content-sha256",
                    "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
                ),
            ],
            body: "Param1=value1",
            token: None,
            creq: "POST\n/\n\ncontent-length:13\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:example.amazonaws.com\nx-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\nx-amz-date:20150830T123600Z\n\ncontent-length;content-type;host;x-amz-content-sha256;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            sts: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\na89f1a5b53e37702ee6363ce1da3ce8f54386f3c8f352ae652153c2982a0bc4d",
            authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, Signature=328d1b9eaadca9f5818ef05e8392801e091653bafec24fcab71e7344e7f51422",
        });
    }

    #[test]
    fn get_header_value_trim() {
        check(&Vector {
            name: "get-header-value-trim",
            method: "GET",
            url: "https://example.amazonaws.com/",
            headers: &[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
            body: "",
            token: None,
            creq: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\na726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
            authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        });
    }

    #[test]
    fn get_header_value_multiline() {
        // The suite's header is folded over three lines (obs-fold). A line break cannot be sent
        // in an HTTP header, and aws-sigv4 refuses it: the signer says which header.
        let err = sign(
            &SignableRequest {
                method: "GET",
                url: &Url::parse("https://example.amazonaws.com/").expect("URL parses"),
                headers: &[("My-Header1", "value1\n  value2\n     value3")],
                body: b"",
            },
            &SigningParams {
                credentials: &creds(None),
                region: "us-east-1",
                service: "service",
                time: suite_time(),
            },
        )
        .expect_err("a line break in a header value");
        assert!(
            matches!(&err, SigV4Error::InvalidHeaderValue { name } if name == "My-Header1"),
            "{err:?}"
        );
        // Unfolded, as an HTTP/1.1 recipient does (each fold becomes one space; sequential spaces
        // collapse in the canonical form), it signs to the published vector.
        check(&Vector {
            name: "get-header-value-multiline",
            method: "GET",
            url: "https://example.amazonaws.com/",
            headers: &[("My-Header1", "value1   value2      value3")],
            body: "",
            token: None,
            creq: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1 value2 value3\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\ne99419459a677bc11de234014be3c4e72c1ea5b454ceb58b613061f5d7a162e8",
            authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=cfd34249e4b1c8d6b91ef74165d41a32e5fab3306300901bb65a51a73575eefd",
        });
    }

    #[test]
    fn get_header_key_duplicate_and_value_order() {
        check(&Vector {
            name: "get-header-key-duplicate",
            method: "GET",
            url: "https://example.amazonaws.com/",
            headers: &[
                ("My-Header1", "value2"),
                ("My-Header1", "value2"),
                ("My-Header1", "value1"),
            ],
            body: "",
            token: None,
            creq: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\ndc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
            authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
        });
        check(&Vector {
            name: "get-header-value-order",
            method: "GET",
            url: "https://example.amazonaws.com/",
            headers: &[
                ("My-Header1", "value4"),
                ("My-Header1", "value1"),
                ("My-Header1", "value3"),
                ("My-Header1", "value2"),
            ],
            body: "",
            token: None,
            creq: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value4,value1,value3,value2\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
            authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
        });
    }

    #[test]
    fn post_header_key_sort_and_value_case() {
        check(&Vector {
            name: "post-header-key-sort",
            method: "POST",
            url: "https://example.amazonaws.com/",
            headers: &[("My-Header1", "value1")],
            body: "",
            token: None,
            creq: "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
            authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
        });
        check(&Vector {
            name: "post-header-value-case",
            method: "POST",
            url: "https://example.amazonaws.com/",
            headers: &[("My-Header1", "VALUE1")],
            body: "",
            token: None,
            creq: "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:VALUE1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nd51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93",
            authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
        });
    }

    #[test]
    fn get_vanilla_with_session_token() {
        let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
        check(&Vector {
            name: "get-vanilla-with-session-token",
            method: "GET",
            url: "https://example.amazonaws.com/",
            headers: &[],
            body: "",
            token: Some(token),
            creq: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-security-token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267\n\nhost;x-amz-date;x-amz-security-token\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n067b36aa60031588cea4a4cde1f21215227a047690c72247f1d70b32fbbfad2b",
            authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
        });
    }

    #[test]
    fn post_sts_header_before() {
        check(&Vector {
            name: "post-sts-header-before",
            method: "POST",
            url: "https://example.amazonaws.com/",
            headers: &[],
            body: "",
            token: Some(STS_TOKEN),
            creq: "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-security-token:AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==\n\nhost;x-amz-date;x-amz-security-token\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            sts: "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nc237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
            authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
        });
    }

    #[test]
    fn double_url_encode_lambda() {
        // smithy-rs' `double-url-encode` vector: the wire path is already percent-encoded and
        // every `%` is encoded once more.
        check_with(
            &Vector {
                name: "double-url-encode",
                method: "POST",
                url: "https://lambda.us-east-2.amazonaws.com/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A892717189312%3Afunction%3Amy-rusty-fun/invocations",
                headers: &[],
                body: "",
                token: None,
                creq: "POST\n/2015-03-31/functions/arn%253Aaws%253Alambda%253Aus-west-2%253A892717189312%253Afunction%253Amy-rusty-fun/invocations\n\nhost:lambda.us-east-2.amazonaws.com\nx-amz-date:20210511T154045Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                sts: "AWS4-HMAC-SHA256\n20210511T154045Z\n20210511/us-east-2/lambda/aws4_request\n684dbb3c92a8b6b1e452e23e523c1ea941c713a4c13500bb9f3bdad1e19afaf7",
                authz: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20210511/us-east-2/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=4b93abbcc68be32bd64c18e2c71150660ab4c29bbd6c32a383a7517a88fc1804",
            },
            // 2021-05-11T15:40:45Z
            OffsetDateTime::from_unix_timestamp(1_620_747_645).expect("valid timestamp"),
            "us-east-2",
            "lambda",
        );
    }

    /// The worked example of AWS's "Create a canonical request / string to sign / signature"
    /// documentation: IAM `ListUsers`.
    #[test]
    fn iam_list_users_documentation_example() {
        // The documented derived signing key.
        let key = v4::generate_signing_key(
            SECRET_KEY,
            SystemTime::from(suite_time()),
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex::encode(key.as_ref()),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );

        let url = Url::parse("https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08")
            .expect("URL parses");
        let credentials = creds(None);
        let out = sign(
            &SignableRequest {
                method: "GET",
                url: &url,
                headers: &[(
                    "Content-Type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                )],
                body: b"",
            },
            &SigningParams {
                credentials: &credentials,
                region: "us-east-1",
                service: "iam",
                time: suite_time(),
            },
        )
        .expect("signs");
        let creq = "GET\n/\nAction=ListUsers&Version=2010-05-08\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            sha256_hex(creq.as_bytes()),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let sts = "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\nf536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59";
        assert_eq!(
            out.signature(),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
        assert_signed_as(
            &out,
            creq,
            sts,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
            suite_time(),
            "us-east-1",
            "iam",
            "iam-list-users",
        );
    }

    #[test]
    fn output_headers_and_order() {
        let url = Url::parse("https://sts.amazonaws.com/").expect("URL parses");
        let credentials = creds(Some("tok"));
        let out = sign(
            &SignableRequest {
                method: "POST",
                url: &url,
                headers: &[("X-Vault-AWS-IAM-Server-ID", "vault.example.com")],
                body: b"Action=GetCallerIdentity&Version=2011-06-15",
            },
            &SigningParams {
                credentials: &credentials,
                region: "us-east-1",
                service: "sts",
                time: suite_time(),
            },
        )
        .expect("signs");
        let names: Vec<&str> = out.headers().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, [X_AMZ_DATE, X_AMZ_SECURITY_TOKEN, AUTHORIZATION]);
        assert_eq!(out.headers()[0].1, "20150830T123600Z");
        assert_eq!(out.headers()[1].1, "tok");
        assert!(
            out.authorization().contains(
                "SignedHeaders=host;x-amz-date;x-amz-security-token;x-vault-aws-iam-server-id,"
            ),
            "{}",
            out.authorization()
        );
        // The server id's value is signed: another value, another signature.
        let other = sign(
            &SignableRequest {
                method: "POST",
                url: &url,
                headers: &[("X-Vault-AWS-IAM-Server-ID", "other.example.com")],
                body: b"Action=GetCallerIdentity&Version=2011-06-15",
            },
            &SigningParams {
                credentials: &credentials,
                region: "us-east-1",
                service: "sts",
                time: suite_time(),
            },
        )
        .expect("signs");
        assert_ne!(other.signature(), out.signature());
    }

    #[test]
    fn non_default_port_is_part_of_host_and_user_agent_is_unsigned() {
        let out = sign_get("http://127.0.0.1:8080/x", &[("User-Agent", "mosaic/1")]);
        assert!(
            out.authorization()
                .contains("SignedHeaders=host;x-amz-date,"),
            "{}",
            out.authorization()
        );
        // Signed as if `host:127.0.0.1:8080` were given and no User-Agent.
        let explicit = sign_get("http://127.0.0.1:8080/x", &[("Host", "127.0.0.1:8080")]);
        assert_eq!(out.signature(), explicit.signature());
        let without_port = sign_get("http://127.0.0.1:8080/x", &[("Host", "127.0.0.1")]);
        assert_ne!(out.signature(), without_port.signature());
        // The scheme's default port is not part of it.
        assert_eq!(
            sign_get("https://example.amazonaws.com:443/", &[]).signature(),
            sign_get("https://example.amazonaws.com/", &[]).signature()
        );
    }

    #[test]
    fn rejects_reserved_and_invalid_headers_and_empty_scope() {
        let url = Url::parse("https://example.amazonaws.com/").expect("URL parses");
        let credentials = creds(None);
        let params = SigningParams {
            credentials: &credentials,
            region: "us-east-1",
            service: "service",
            time: suite_time(),
        };
        for (name, want) in [
            ("Authorization", "is set by the signer"),
            ("x-amz-date", "is set by the signer"),
            ("X-Amz-Security-Token", "is set by the signer"),
            ("Bad Header", "not a valid HTTP header name"),
            ("", "not a valid HTTP header name"),
            ("X-Control", "not a valid HTTP header value"),
        ] {
            let value = if name == "X-Control" { "a\u{7}b" } else { "v" };
            let headers = [(name, value)];
            let err = sign(
                &SignableRequest {
                    method: "GET",
                    url: &url,
                    headers: &headers,
                    body: b"",
                },
                &params,
            )
            .expect_err("must be rejected");
            assert!(err.to_string().contains(want), "{name}: {err}");
        }
        let err = sign(
            &SignableRequest {
                method: "GET",
                url: &url,
                headers: &[],
                body: b"",
            },
            &SigningParams {
                region: "",
                ..params
            },
        )
        .expect_err("empty region");
        assert!(matches!(err, SigV4Error::EmptyScope { what: "region" }));
        let no_host = Url::parse("data:text/plain,x").expect("URL parses");
        let err = sign(
            &SignableRequest {
                method: "GET",
                url: &no_host,
                headers: &[],
                body: b"",
            },
            &params,
        )
        .expect_err("no host");
        assert!(matches!(err, SigV4Error::NoHost { .. }));
    }

    #[test]
    fn debug_redacts_the_session_token() {
        let url = Url::parse("https://example.amazonaws.com/").expect("URL parses");
        let credentials = creds(Some(STS_TOKEN));
        let out = sign(
            &SignableRequest {
                method: "POST",
                url: &url,
                headers: &[],
                body: b"",
            },
            &SigningParams {
                credentials: &credentials,
                region: "us-east-1",
                service: "service",
                time: suite_time(),
            },
        )
        .expect("signs");
        let debug = format!("{out:?}");
        assert!(!debug.contains(STS_TOKEN), "{debug}");
        assert!(!debug.contains(SECRET_KEY), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }

    #[test]
    fn canonicalization_through_the_signer() {
        // What the old hand-written helpers produced, checked as "signs the same as" through
        // aws-sigv4, whose canonical forms are not public.
        assert_eq!(sha256_hex(b""), EMPTY_SHA256);
        let same = |a: &str, b: &str| {
            assert_eq!(
                sign_get(a, &[]).signature(),
                sign_get(b, &[]).signature(),
                "{a} vs {b}"
            );
        };
        // Query values are RFC 3986-encoded (only A-Za-z0-9-_.~ literal, upper-case hex).
        same("https://h/?k=a b/c~*", "https://h/?k=a%20b%2Fc~%2A");
        // An empty path is `/`; dot segments are removed.
        same("https://h", "https://h/");
        same("https://h/a/./b/../c/", "https://h/a/c/");
        // Parameters sorted by name then value, `+` is a space, a bare key has an empty value.
        same(
            "https://h/?b=2&a=1&a=0&k&s=a+b",
            "https://h/?a=0&a=1&b=2&k=&s=a%20b",
        );
        // A path's `%` is encoded once more.
        assert_ne!(
            sign_get("https://h/%2A", &[]).signature(),
            sign_get("https://h/*", &[]).signature()
        );
        // Header values are trimmed and inner runs of spaces collapse to one.
        assert_eq!(
            sign_get("https://h/", &[("X-A", "  a   b  ")]).signature(),
            sign_get("https://h/", &[("X-A", "a b")]).signature()
        );
        // The time is taken in UTC whatever its offset.
        let url = Url::parse("https://h/").expect("URL parses");
        let credentials = creds(None);
        let out = sign(
            &SignableRequest {
                method: "GET",
                url: &url,
                headers: &[],
                body: b"",
            },
            &SigningParams {
                credentials: &credentials,
                region: "us-east-1",
                service: "service",
                time: suite_time().to_offset(UtcOffset::from_hms(2, 0, 0).expect("offset")),
            },
        )
        .expect("signs");
        assert_eq!(
            out.headers()[0],
            (X_AMZ_DATE, "20150830T123600Z".to_owned())
        );
        assert!(
            out.authorization()
                .contains("Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request,")
        );
    }
}
