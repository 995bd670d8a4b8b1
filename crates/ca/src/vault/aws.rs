//! AWS credentials and the request bodies of Vault's `auth/aws/login`.
//!
//! Kong Mesh's `auth.aws` option "authenticates using the instance or IRSA role available within
//! the environment". This module finds those credentials and builds what Vault expects:
//!
//! - [`resolve_credentials`]: the credential chain, in order
//!   1. static keys from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//!      `AWS_SESSION_TOKEN`);
//!   2. IRSA / web identity (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`
//!      [+ `AWS_ROLE_SESSION_NAME`]) exchanged at STS `AssumeRoleWithWebIdentity` (unsigned);
//!   3. the EC2 instance profile, through IMDSv2.
//!
//!   A source that is configured but fails is an error; the chain does not fall through to the
//!   next one (an IRSA pod silently authenticating as its node's role would be worse than failing).
//! - [`iam_login_body`]: the `iam` method, an STS `GetCallerIdentity` request signed with SigV4
//!   that Vault replays to learn who we are.
//! - [`ec2_login_body`]: the `ec2` method, the instance's PKCS#7-signed identity document.
//!
//! The chain is this module's own, not `aws-config`'s: `aws-config` (with `aws-sdk-sts` and the
//! smithy runtime, even with its default features off) made the release `mosaic-zone` 5.6 MB
//! larger, where signing with `aws-sigv4` costs 0.2 MB. Its chain also falls through on a half-set
//! environment (`AWS_ACCESS_KEY_ID` without the secret) to the instance role, which this one
//! refuses.
//!
//! The environment is passed in as an [`AwsEnvironment`] so tests never touch the process
//! environment; [`AwsEnvironment::from_process_env`] reads the real one. Endpoints are parameters
//! ([`AwsEndpoints`]) so tests can point them at a local fake.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

pub use super::sigv4::AwsCredentials;
use super::sigv4::{self, SigV4Error, SignableRequest, SigningParams};
use mosaic_core::Sensitive;

/// AWS login flavour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AwsKind {
    /// Signed `sts:GetCallerIdentity`.
    Iam,
    /// EC2 instance identity document (PKCS#7).
    Ec2,
}

/// The global STS endpoint, the one Vault's AWS auth method checks against by default.
pub const DEFAULT_STS_URL: &str = "https://sts.amazonaws.com/";

/// The EC2 instance metadata service.
pub const DEFAULT_IMDS_URL: &str = "http://169.254.169.254";

/// How long one IMDS call may take. IMDS answers in milliseconds on EC2; off EC2 the address is
/// usually a black hole, so the timeout is what bounds the last step of the chain.
pub const DEFAULT_IMDS_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one STS call may take.
pub const STS_TIMEOUT: Duration = Duration::from_secs(30);

/// The signing region of the global STS endpoint.
pub const STS_GLOBAL_REGION: &str = "us-east-1";

/// The header Vault's `iam_server_id_header_value` checks, signed into the STS request so a
/// login body minted for one Vault cannot be replayed against another.
pub const IAM_SERVER_ID_HEADER: &str = "X-Vault-AWS-IAM-Server-ID";

/// The body of the STS request of the IAM login method.
pub const GET_CALLER_IDENTITY_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// The `Content-Type` of STS query-protocol requests.
const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// IMDSv2 session token lifetime requested, in seconds (the maximum, six hours).
const IMDS_TOKEN_TTL_SECONDS: &str = "21600";

/// Longest excerpt of an unexpected response body quoted in an error.
const MAX_ERROR_BODY: usize = 256;

/// Why AWS credentials or a Vault AWS login body could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// An endpoint URL does not parse.
    #[error("invalid {what} URL `{url}`: {source}; pass an absolute http(s) URL")]
    InvalidUrl {
        /// Which endpoint (`STS`, `IMDS`).
        what: &'static str,
        /// The URL as given.
        url: String,
        /// The parse error.
        #[source]
        source: url::ParseError,
    },
    /// Only half of a pair of environment variables is set.
    #[error("{set} is set but {missing} is not; set both, or neither")]
    IncompleteEnvironment {
        /// The variable that is set.
        set: &'static str,
        /// The variable that is missing.
        missing: &'static str,
    },
    /// The IRSA token file could not be read.
    #[error(
        "cannot read the web identity token file `{path}` (AWS_WEB_IDENTITY_TOKEN_FILE): {source}; \
         check that the projected service-account token volume is mounted"
    )]
    WebIdentityTokenFile {
        /// The path from `AWS_WEB_IDENTITY_TOKEN_FILE`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The IRSA token file is empty.
    #[error(
        "the web identity token file `{path}` (AWS_WEB_IDENTITY_TOKEN_FILE) is empty; \
         check the projected service-account token volume"
    )]
    EmptyWebIdentityToken {
        /// The path from `AWS_WEB_IDENTITY_TOKEN_FILE`.
        path: PathBuf,
    },
    /// An HTTP call failed before a response arrived (connection, timeout, ...).
    #[error("{what} request to {url} failed: {source}")]
    Request {
        /// Which call (`STS AssumeRoleWithWebIdentity`, `IMDS token`, ...).
        what: &'static str,
        /// The URL called.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// An HTTP call returned an unexpected status.
    #[error("{what} at {url} answered HTTP {status}: {body}")]
    HttpStatus {
        /// Which call.
        what: &'static str,
        /// The URL called.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// STS answered with an `ErrorResponse`.
    #[error(
        "STS {action} was refused (HTTP {status}, {code}): {message}; \
         check the role ARN, the role's trust policy and the token's audience"
    )]
    StsRejected {
        /// The STS action.
        action: &'static str,
        /// The HTTP status code.
        status: u16,
        /// The AWS error code, e.g. `InvalidIdentityToken`.
        code: String,
        /// The AWS error message.
        message: String,
    },
    /// A response was not in the expected shape. Never quotes the body of a credentials
    /// response.
    #[error("{what} returned an unexpected response: {detail}")]
    MalformedResponse {
        /// Which call.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// IMDS has no role: the instance has no IAM instance profile.
    #[error(
        "the EC2 instance metadata service at {url} lists no IAM role; \
         attach an instance profile to the instance, or use IRSA or static credentials"
    )]
    NoInstanceProfile {
        /// The URL called.
        url: String,
    },
    /// IMDS returned credentials with a non-`Success` code.
    #[error("IMDS credentials for role `{role}` are not usable (Code={code}): {message}")]
    ImdsCredentials {
        /// The role name.
        role: String,
        /// The `Code` field.
        code: String,
        /// The `Message` field, if any.
        message: String,
    },
    /// No source in the chain is configured and IMDS failed too.
    #[error(
        "no AWS credentials found: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are unset, IRSA \
         (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN) is not configured, and the EC2 instance \
         metadata service failed: {source}"
    )]
    NoCredentials {
        /// Why IMDS failed.
        #[source]
        source: Box<AwsError>,
    },
    /// Signing the STS request failed.
    #[error("signing the STS GetCallerIdentity request failed: {0}")]
    Signing(#[from] SigV4Error),
    /// Encoding the login body failed.
    #[error("encoding the Vault AWS login body failed: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Where credentials came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` [/ `AWS_SESSION_TOKEN`].
    Environment,
    /// IRSA: a web identity token exchanged at STS `AssumeRoleWithWebIdentity`.
    WebIdentity,
    /// The EC2 instance profile, through IMDSv2.
    InstanceProfile,
}

/// Credentials and what is known about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedCredentials {
    /// The credentials.
    pub credentials: AwsCredentials,
    /// Where they came from.
    pub source: CredentialSource,
    /// When temporary credentials expire, if the source said so. Resolve again before then.
    pub expires_at: Option<OffsetDateTime>,
}

/// The AWS variables of an environment. Empty values count as unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsEnvironment {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<Sensitive<String>>,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<Sensitive<String>>,
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` (IRSA).
    pub web_identity_token_file: Option<PathBuf>,
    /// `AWS_ROLE_ARN` (IRSA).
    pub role_arn: Option<String>,
    /// `AWS_ROLE_SESSION_NAME` (IRSA); defaults to `mosaic-<unix seconds>`.
    pub role_session_name: Option<String>,
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`. Informational: the IAM login signs for the
    /// region of the STS endpoint it targets.
    pub region: Option<String>,
}

/// STS and IMDS endpoints. `Default` is AWS's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsEndpoints {
    /// The STS endpoint for `AssumeRoleWithWebIdentity`.
    pub sts_url: String,
    /// The IMDS base URL (scheme and authority; paths are appended).
    pub imds_base: String,
    /// The timeout of each IMDS call.
    pub imds_timeout: Duration,
}

/// Resolves credentials: environment, then IRSA, then the EC2 instance profile.
///
/// The first *configured* source decides: if the environment sets keys or IRSA variables and that
/// source fails, the error is returned. Only when neither is configured is IMDS tried, and its
/// failure is reported as [`AwsError::NoCredentials`].
pub async fn resolve_credentials(
    http: &reqwest::Client,
    env: &AwsEnvironment,
    endpoints: &AwsEndpoints,
) -> Result<ResolvedCredentials, AwsError> {
    if let Some(credentials) = env.static_credentials()? {
        return Ok(ResolvedCredentials {
            credentials,
            source: CredentialSource::Environment,
            expires_at: None,
        });
    }
    match (&env.web_identity_token_file, &env.role_arn) {
        (Some(token_file), Some(role_arn)) => {
            let session_name = env.role_session_name.clone().unwrap_or_else(|| {
                format!("mosaic-{}", OffsetDateTime::now_utc().unix_timestamp())
            });
            return credentials_from_web_identity(
                http,
                &endpoints.sts_url,
                token_file,
                role_arn,
                &session_name,
            )
            .await;
        }
        (Some(_), None) => {
            return Err(AwsError::IncompleteEnvironment {
                set: "AWS_WEB_IDENTITY_TOKEN_FILE",
                missing: "AWS_ROLE_ARN",
            });
        }
        (None, Some(_)) => {
            return Err(AwsError::IncompleteEnvironment {
                set: "AWS_ROLE_ARN",
                missing: "AWS_WEB_IDENTITY_TOKEN_FILE",
            });
        }
        (None, None) => {}
    }
    credentials_from_imds(http, &endpoints.imds_base, endpoints.imds_timeout)
        .await
        .map_err(|e| AwsError::NoCredentials {
            source: Box::new(e),
        })
}

/// IRSA: reads the web identity token from `token_file` and exchanges it at STS
/// `AssumeRoleWithWebIdentity` (an unsigned call) for temporary credentials of `role_arn`.
pub async fn credentials_from_web_identity(
    http: &reqwest::Client,
    sts_url: &str,
    token_file: &std::path::Path,
    role_arn: &str,
    session_name: &str,
) -> Result<ResolvedCredentials, AwsError> {
    const WHAT: &str = "STS AssumeRoleWithWebIdentity";
    let url = parse_url("STS", sts_url)?;
    let token = tokio::fs::read_to_string(token_file)
        .await
        .map_err(|source| AwsError::WebIdentityTokenFile {
            path: token_file.to_owned(),
            source,
        })?;
    let token = Sensitive::new(token.trim().to_owned());
    if token.expose().is_empty() {
        return Err(AwsError::EmptyWebIdentityToken {
            path: token_file.to_owned(),
        });
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "AssumeRoleWithWebIdentity")
        .append_pair("Version", "2011-06-15")
        .append_pair("RoleArn", role_arn)
        .append_pair("RoleSessionName", session_name)
        .append_pair("WebIdentityToken", token.expose())
        .finish();
    let body = Sensitive::new(body);
    let response = http
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, FORM_CONTENT_TYPE)
        .header(reqwest::header::ACCEPT, "text/xml")
        .timeout(STS_TIMEOUT)
        .body(body.into_inner())
        .send()
        .await
        .map_err(|source| AwsError::Request {
            what: WHAT,
            url: url.to_string(),
            source,
        })?;
    let status = response.status();
    let text = response.text().await.map_err(|source| AwsError::Request {
        what: WHAT,
        url: url.to_string(),
        source,
    })?;
    if !status.is_success() {
        return Err(sts_error(
            "AssumeRoleWithWebIdentity",
            WHAT,
            &url,
            status.as_u16(),
            &text,
        ));
    }
    let text = Sensitive::new(text);
    let missing = |field: &str| AwsError::MalformedResponse {
        what: WHAT,
        detail: format!("no <Credentials><{field}> element"),
    };
    let creds =
        xml_element(text.expose(), "Credentials").ok_or_else(|| AwsError::MalformedResponse {
            what: WHAT,
            detail: "no <Credentials> element".to_owned(),
        })?;
    let access_key_id = xml_field(creds, "AccessKeyId").ok_or_else(|| missing("AccessKeyId"))?;
    let secret = xml_field(creds, "SecretAccessKey").ok_or_else(|| missing("SecretAccessKey"))?;
    let session_token = xml_field(creds, "SessionToken").ok_or_else(|| missing("SessionToken"))?;
    let expires_at = xml_field(creds, "Expiration").and_then(|e| parse_time(&e));
    Ok(ResolvedCredentials {
        credentials: AwsCredentials {
            access_key_id,
            secret_access_key: Sensitive::new(secret),
            session_token: Some(Sensitive::new(session_token)),
        },
        source: CredentialSource::WebIdentity,
        expires_at,
    })
}

/// The EC2 instance profile: IMDSv2 token, then the role name, then its credentials.
pub async fn credentials_from_imds(
    http: &reqwest::Client,
    imds_base: &str,
    timeout: Duration,
) -> Result<ResolvedCredentials, AwsError> {
    const CREDS_PATH: &str = "/latest/meta-data/iam/security-credentials/";
    let imds = Imds::new(http, imds_base, timeout)?;
    let token = imds.token().await?;
    let (status, roles) = imds
        .get("IMDS security-credentials listing", CREDS_PATH, &token)
        .await?;
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(AwsError::NoInstanceProfile {
            url: imds.url(CREDS_PATH)?.to_string(),
        });
    }
    let roles = imds.require_success(
        "IMDS security-credentials listing",
        CREDS_PATH,
        status,
        roles,
    )?;
    let Some(role) = roles.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return Err(AwsError::NoInstanceProfile {
            url: imds.url(CREDS_PATH)?.to_string(),
        });
    };
    let role = role.to_owned();
    let path = format!("{CREDS_PATH}{role}");
    let (status, body) = imds.get("IMDS role credentials", &path, &token).await?;
    if !status.is_success() {
        return Err(AwsError::HttpStatus {
            what: "IMDS role credentials",
            url: imds.url(&path)?.to_string(),
            status: status.as_u16(),
            // This body may hold credentials if the status is odd but the content is not: never
            // quote it.
            body: "<not shown>".to_owned(),
        });
    }
    let body = Sensitive::new(body);
    let parsed: ImdsCredentialsDocument =
        serde_json::from_str(body.expose()).map_err(|e| AwsError::MalformedResponse {
            what: "IMDS role credentials",
            detail: format!(
                "not the expected JSON document (line {}, column {})",
                e.line(),
                e.column()
            ),
        })?;
    match parsed.code.as_deref() {
        None | Some("Success") => {}
        Some(code) => {
            return Err(AwsError::ImdsCredentials {
                role,
                code: code.to_owned(),
                message: parsed.message.unwrap_or_default(),
            });
        }
    }
    let missing = |field: &str| AwsError::MalformedResponse {
        what: "IMDS role credentials",
        detail: format!("no `{field}` field"),
    };
    Ok(ResolvedCredentials {
        credentials: AwsCredentials {
            access_key_id: parsed.access_key_id.ok_or_else(|| missing("AccessKeyId"))?,
            secret_access_key: Sensitive::new(
                parsed
                    .secret_access_key
                    .ok_or_else(|| missing("SecretAccessKey"))?,
            ),
            session_token: parsed.token.map(Sensitive::new),
        },
        source: CredentialSource::InstanceProfile,
        expires_at: parsed.expiration.as_deref().and_then(parse_time),
    })
}

/// The body of Vault's `auth/aws/login` for the `iam` method.
///
/// Signs an STS `GetCallerIdentity` request (`POST sts_url`, body
/// [`GET_CALLER_IDENTITY_BODY`], `Content-Type: application/x-www-form-urlencoded;
/// charset=utf-8`, plus the signed [`IAM_SERVER_ID_HEADER`] when given) with SigV4 for service
/// `sts` in `region` (`us-east-1` for the global endpoint) at `now`, and returns, as Vault's own
/// `GenerateLoginData` does:
///
/// ```json
/// {"role": "...", "iam_http_request_method": "POST",
///  "iam_request_url": base64(url), "iam_request_body": base64(body),
///  "iam_request_headers": base64({"Header-Name": ["value"], ...})}
/// ```
///
/// `role` is omitted when `None` (Vault then uses the role named after the IAM principal).
///
/// The result carries the signed `Authorization` and, with temporary credentials, the session
/// token (base64-encoded inside `iam_request_headers`): send it to Vault, do not log it. The
/// secret access key is never part of it.
pub fn iam_login_body(
    creds: &AwsCredentials,
    role: Option<&str>,
    iam_server_id_header: Option<&str>,
    region: &str,
    sts_url: &str,
    now: OffsetDateTime,
) -> Result<Value, AwsError> {
    let url = parse_url("STS", sts_url)?;
    // Header names as Go's http.Header spells them, which is what Vault parses them into.
    let mut to_sign: Vec<(&str, &str)> = vec![("Content-Type", FORM_CONTENT_TYPE)];
    if let Some(server_id) = iam_server_id_header {
        to_sign.push(("X-Vault-Aws-Iam-Server-Id", server_id));
    }
    let signed = sigv4::sign(
        &SignableRequest {
            method: "POST",
            url: &url,
            headers: &to_sign,
            body: GET_CALLER_IDENTITY_BODY.as_bytes(),
        },
        &SigningParams {
            credentials: creds,
            region,
            service: "sts",
            time: now,
        },
    )?;
    let mut headers = Map::new();
    for (name, value) in to_sign
        .iter()
        .map(|(n, v)| (*n, *v))
        .chain(signed.headers().iter().map(|(n, v)| (*n, v.as_str())))
    {
        headers.insert(name.to_owned(), json!([value]));
    }
    let headers_json = Sensitive::new(serde_json::to_vec(&Value::Object(headers))?);

    let mut body = Map::new();
    if let Some(role) = role {
        body.insert("role".to_owned(), Value::from(role));
    }
    body.insert("iam_http_request_method".to_owned(), Value::from("POST"));
    body.insert(
        "iam_request_url".to_owned(),
        Value::from(BASE64.encode(url.as_str())),
    );
    body.insert(
        "iam_request_body".to_owned(),
        Value::from(BASE64.encode(GET_CALLER_IDENTITY_BODY)),
    );
    body.insert(
        "iam_request_headers".to_owned(),
        Value::from(BASE64.encode(headers_json.expose())),
    );
    Ok(Value::Object(body))
}

/// The body of Vault's `auth/aws/login` for the `ec2` method: `{"role", "pkcs7", "nonce"}`.
///
/// Fetches the PKCS#7-signed instance identity document from IMDSv2
/// (`/latest/dynamic/instance-identity/pkcs7`) and strips its newlines, as Vault's agent does.
/// `role` and `nonce` are omitted when `None`. Vault returns a nonce on the first login when none
/// was sent; later logins from the same instance must send that nonce, so keep it.
pub async fn ec2_login_body(
    http: &reqwest::Client,
    imds_base: &str,
    role: Option<&str>,
    nonce: Option<&str>,
) -> Result<Value, AwsError> {
    const PATH: &str = "/latest/dynamic/instance-identity/pkcs7";
    const WHAT: &str = "IMDS instance identity (pkcs7)";
    let imds = Imds::new(http, imds_base, DEFAULT_IMDS_TIMEOUT)?;
    let token = imds.token().await?;
    let (status, body) = imds.get(WHAT, PATH, &token).await?;
    let body = imds.require_success(WHAT, PATH, status, body)?;
    let pkcs7: String = body.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    let pkcs7 = pkcs7.trim();
    if pkcs7.is_empty() {
        return Err(AwsError::MalformedResponse {
            what: WHAT,
            detail: "empty document".to_owned(),
        });
    }
    let mut out = Map::new();
    if let Some(role) = role {
        out.insert("role".to_owned(), Value::from(role));
    }
    out.insert("pkcs7".to_owned(), Value::from(pkcs7));
    if let Some(nonce) = nonce {
        out.insert("nonce".to_owned(), Value::from(nonce));
    }
    Ok(Value::Object(out))
}

// === impl AwsEnvironment ===

impl AwsEnvironment {
    /// Reads the variables through `lookup` (e.g. a map in tests). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        Self {
            access_key_id: get("AWS_ACCESS_KEY_ID"),
            secret_access_key: get("AWS_SECRET_ACCESS_KEY").map(Sensitive::new),
            session_token: get("AWS_SESSION_TOKEN").map(Sensitive::new),
            web_identity_token_file: get("AWS_WEB_IDENTITY_TOKEN_FILE").map(PathBuf::from),
            role_arn: get("AWS_ROLE_ARN"),
            role_session_name: get("AWS_ROLE_SESSION_NAME"),
            region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
        }
    }

    /// Reads the variables from the process environment.
    pub fn from_process_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Static credentials, if the environment sets both keys.
    fn static_credentials(&self) -> Result<Option<AwsCredentials>, AwsError> {
        match (&self.access_key_id, &self.secret_access_key) {
            (Some(id), Some(secret)) => Ok(Some(AwsCredentials {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
                session_token: self.session_token.clone(),
            })),
            (Some(_), None) => Err(AwsError::IncompleteEnvironment {
                set: "AWS_ACCESS_KEY_ID",
                missing: "AWS_SECRET_ACCESS_KEY",
            }),
            (None, Some(_)) => Err(AwsError::IncompleteEnvironment {
                set: "AWS_SECRET_ACCESS_KEY",
                missing: "AWS_ACCESS_KEY_ID",
            }),
            (None, None) => Ok(None),
        }
    }
}

// === impl AwsEndpoints ===

impl Default for AwsEndpoints {
    fn default() -> Self {
        Self {
            sts_url: DEFAULT_STS_URL.to_owned(),
            imds_base: DEFAULT_IMDS_URL.to_owned(),
            imds_timeout: DEFAULT_IMDS_TIMEOUT,
        }
    }
}

// === impl CredentialSource ===

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Environment => "environment",
            Self::WebIdentity => "web identity (IRSA)",
            Self::InstanceProfile => "EC2 instance profile (IMDSv2)",
        })
    }
}

// === impl Imds ===

/// An IMDSv2 client: a session token, then GETs carrying it.
struct Imds<'a> {
    http: &'a reqwest::Client,
    base: Url,
    timeout: Duration,
}

impl<'a> Imds<'a> {
    fn new(http: &'a reqwest::Client, base: &str, timeout: Duration) -> Result<Self, AwsError> {
        Ok(Self {
            http,
            base: parse_url("IMDS", base)?,
            timeout,
        })
    }

    fn url(&self, path: &str) -> Result<Url, AwsError> {
        self.base.join(path).map_err(|source| AwsError::InvalidUrl {
            what: "IMDS",
            url: format!("{}{path}", self.base),
            source,
        })
    }

    /// `PUT /latest/api/token`.
    async fn token(&self) -> Result<Sensitive<String>, AwsError> {
        const WHAT: &str = "IMDSv2 token";
        const PATH: &str = "/latest/api/token";
        let url = self.url(PATH)?;
        let response = self
            .http
            .put(url.clone())
            .header(
                "X-aws-ec2-metadata-token-ttl-seconds",
                IMDS_TOKEN_TTL_SECONDS,
            )
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|source| AwsError::Request {
                what: WHAT,
                url: url.to_string(),
                source,
            })?;
        let status = response.status();
        let body = response.text().await.map_err(|source| AwsError::Request {
            what: WHAT,
            url: url.to_string(),
            source,
        })?;
        if !status.is_success() {
            return Err(AwsError::HttpStatus {
                what: WHAT,
                url: url.to_string(),
                status: status.as_u16(),
                body: excerpt(&body),
            });
        }
        let token = body.trim().to_owned();
        if token.is_empty() {
            return Err(AwsError::MalformedResponse {
                what: WHAT,
                detail: "empty token".to_owned(),
            });
        }
        Ok(Sensitive::new(token))
    }

    /// `GET path` with the session token; returns the status and body as is.
    async fn get(
        &self,
        what: &'static str,
        path: &str,
        token: &Sensitive<String>,
    ) -> Result<(reqwest::StatusCode, String), AwsError> {
        let url = self.url(path)?;
        let response = self
            .http
            .get(url.clone())
            .header("X-aws-ec2-metadata-token", token.expose())
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|source| AwsError::Request {
                what,
                url: url.to_string(),
                source,
            })?;
        let status = response.status();
        let body = response.text().await.map_err(|source| AwsError::Request {
            what,
            url: url.to_string(),
            source,
        })?;
        Ok((status, body))
    }

    fn require_success(
        &self,
        what: &'static str,
        path: &str,
        status: reqwest::StatusCode,
        body: String,
    ) -> Result<String, AwsError> {
        if status.is_success() {
            Ok(body)
        } else {
            Err(AwsError::HttpStatus {
                what,
                url: self.url(path)?.to_string(),
                status: status.as_u16(),
                body: excerpt(&body),
            })
        }
    }
}

/// The IMDS credentials document. No `Debug`: it holds the secret key.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImdsCredentialsDocument {
    code: Option<String>,
    message: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    token: Option<String>,
    expiration: Option<String>,
}

// === helpers ===

fn parse_url(what: &'static str, url: &str) -> Result<Url, AwsError> {
    Url::parse(url).map_err(|source| AwsError::InvalidUrl {
        what,
        url: url.to_owned(),
        source,
    })
}

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s.trim(), &Rfc3339).ok()
}

/// The start of a response body, for error messages.
fn excerpt(body: &str) -> String {
    let body = body.trim();
    match body.char_indices().nth(MAX_ERROR_BODY) {
        Some((end, _)) => format!("{}...", &body[..end]),
        None => body.to_owned(),
    }
}

/// Turns an STS error answer into [`AwsError::StsRejected`] (or [`AwsError::HttpStatus`] when the
/// body is not an `ErrorResponse`).
fn sts_error(
    action: &'static str,
    what: &'static str,
    url: &Url,
    status: u16,
    body: &str,
) -> AwsError {
    match xml_element(body, "Error") {
        Some(error) => AwsError::StsRejected {
            action,
            status,
            code: xml_field(error, "Code").unwrap_or_else(|| "unknown".to_owned()),
            message: xml_field(error, "Message").unwrap_or_default(),
        },
        None => AwsError::HttpStatus {
            what,
            url: url.to_string(),
            status,
            body: excerpt(body),
        },
    }
}

/// The raw content of the first element named `tag` (no namespace prefix) in `doc`: enough XML
/// for STS's fixed-shape answers, tolerant of attributes, whitespace and element order.
fn xml_element<'a>(doc: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}");
    let close = format!("</{tag}");
    let mut from = 0;
    while let Some(pos) = doc[from..].find(&open) {
        let start = from + pos + open.len();
        let rest = &doc[start..];
        match rest.chars().next() {
            Some('>') => {
                let content = &rest[1..];
                return content.find(&close).map(|end| &content[..end]);
            }
            Some(c) if c.is_whitespace() || c == '/' => {
                let gt = rest.find('>')?;
                if rest[..gt].ends_with('/') {
                    return Some("");
                }
                let content = &rest[gt + 1..];
                return content.find(&close).map(|end| &content[..end]);
            }
            // A longer name with the same prefix (`<CredentialsX`): keep looking.
            _ => from = start,
        }
    }
    None
}

/// The text of the first element named `tag`, entities decoded and whitespace trimmed.
fn xml_field(doc: &str, tag: &str) -> Option<String> {
    xml_element(doc, tag).map(xml_text)
}

/// Decodes CDATA sections and the XML entities (`&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`,
/// `&#NN;`, `&#xHH;`) of element text.
fn xml_text(raw: &str) -> String {
    let raw = raw.trim();
    if let Some(inner) = raw
        .strip_prefix("<![CDATA[")
        .and_then(|r| r.strip_suffix("]]>"))
    {
        return inner.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let decoded = after.find(';').and_then(|semi| {
            let entity = &after[..semi];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .map(|hex| u32::from_str_radix(hex, 16))
                    .or_else(|| entity.strip_prefix('#').map(str::parse::<u32>))
                    .and_then(Result::ok)
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, semi))
        });
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

// === Vault auth bridge ===

/// A nonce for EC2 logins, fixed for the life of the process: Vault binds the instance to the
/// nonce of its first login, and later logins must present the same one.
fn ec2_nonce() -> &'static str {
    static NONCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NONCE.get_or_init(|| {
        let bytes: [u8; 16] = rand::random();
        hex::encode(bytes)
    })
}

/// The `auth/aws/login` body for `auth.aws` of a Mesh, with credentials from `env` and the AWS
/// endpoints in `endpoints`. IAM signs for the global STS endpoint (`us-east-1`), as Vault expects
/// by default.
pub async fn vault_login_body_with(
    http: &reqwest::Client,
    env: &AwsEnvironment,
    endpoints: &AwsEndpoints,
    kind: AwsKind,
    role: &str,
    iam_server_id_header: &str,
) -> Result<Value, AwsError> {
    let role = Some(role).filter(|r| !r.is_empty());
    match kind {
        AwsKind::Iam => {
            let creds = resolve_credentials(http, env, endpoints).await?;
            iam_login_body(
                &creds.credentials,
                role,
                Some(iam_server_id_header).filter(|h| !h.is_empty()),
                STS_GLOBAL_REGION,
                &endpoints.sts_url,
                OffsetDateTime::now_utc(),
            )
        }
        AwsKind::Ec2 => ec2_login_body(http, &endpoints.imds_base, role, Some(ec2_nonce())).await,
    }
}

/// [`vault_login_body_with`] with the process environment and AWS's endpoints.
pub async fn vault_login_body(
    kind: AwsKind,
    role: &str,
    iam_server_id_header: &str,
) -> Result<Value, AwsError> {
    mosaic_runtime::tls::install_crypto_provider();
    let http = reqwest::Client::builder()
        .timeout(STS_TIMEOUT)
        .build()
        .map_err(|source| AwsError::Request {
            what: "HTTP client",
            url: String::new(),
            source,
        })?;
    vault_login_body_with(
        &http,
        &AwsEnvironment::from_process_env(),
        &AwsEndpoints::default(),
        kind,
        role,
        iam_server_id_header,
    )
    .await
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode, Uri};
    use axum::routing::{get, post, put};

    use super::*;

    const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const IRSA_JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a29uZy1tZXNoLXN5c3RlbTpjcCJ9.c2ln";
    const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/mosaic-cp";
    const IMDS_TOKEN: &str = "AQAEAFake-imds-session-token==";
    const PKCS7: &str = "MIAGCSqGSIb3DQEHAqCAMIACAQExCzAJBgUrDgMCGgUAMIAGCSqGSIb3DQEHAaCAJIAEggHb\newogICJhY2NvdW50SWQiIDogIjEyMzQ1Njc4OTAxMiIKfQ==\nAAAAAAAA\n";

    fn http() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("reqwest client builds")
    }

    fn static_creds(token: Option<&str>) -> AwsCredentials {
        AwsCredentials {
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: Sensitive::new(SECRET_KEY.to_owned()),
            session_token: token.map(|t| Sensitive::new(t.to_owned())),
        }
    }

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("fake server runs");
        });
        format!("http://{addr}")
    }

    fn env(vars: &[(&str, &str)]) -> AwsEnvironment {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AwsEnvironment::from_lookup(|name| map.get(name).cloned())
    }

    // --- fake STS ---------------------------------------------------------------------------

    #[derive(Default)]
    struct FakeSts {
        /// Secret key by access key id, for signature verification.
        secrets: HashMap<String, String>,
        calls: AtomicUsize,
    }

    fn sts_error_xml(code: &str, message: &str) -> String {
        format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    \
             <Type>Sender</Type>\n    <Code>{code}</Code>\n    <Message>{message}</Message>\n  \
             </Error>\n  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>\n</ErrorResponse>"
        )
    }

    async fn fake_sts(
        State(sts): State<Arc<FakeSts>>,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, String) {
        sts.calls.fetch_add(1, Ordering::SeqCst);
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(&body).into_owned().collect();
        match form.get("Action").map(String::as_str) {
            Some("AssumeRoleWithWebIdentity") => {
                assert!(headers.get("authorization").is_none(), "the call is unsigned");
                assert_eq!(form.get("Version").map(String::as_str), Some("2011-06-15"));
                assert_eq!(form.get("RoleArn").map(String::as_str), Some(ROLE_ARN));
                assert_eq!(
                    form.get("RoleSessionName").map(String::as_str),
                    Some("zone-1")
                );
                if form.get("WebIdentityToken").map(String::as_str) != Some(IRSA_JWT) {
                    return (
                        StatusCode::BAD_REQUEST,
                        sts_error_xml("InvalidIdentityToken", "Couldn&apos;t retrieve verification key"),
                    );
                }
                // Field order differs from the docs' on purpose, and the secret carries an
                // escaped character.
                let xml = "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n\
                  <AssumeRoleWithWebIdentityResult>\n\
                    <Audience>sts.amazonaws.com</Audience>\n\
                    <AssumedRoleUser>\n\
                      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:zone-1</AssumedRoleId>\n\
                      <Arn>arn:aws:sts::123456789012:assumed-role/mosaic-cp/zone-1</Arn>\n\
                    </AssumedRoleUser>\n\
                    <Credentials>\n\
                      <SessionToken>IQoJb3JpZ2luX2VjEIRSA+token/==</SessionToken>\n\
                      <SecretAccessKey>irsa&amp;Secret/Key+EXAMPLE</SecretAccessKey>\n\
                      <Expiration>2031-10-24T23:00:23Z</Expiration>\n\
                      <AccessKeyId>ASIAIRSAEXAMPLE</AccessKeyId>\n\
                    </Credentials>\n\
                    <SubjectFromWebIdentityToken>system:serviceaccount:kong-mesh-system:cp</SubjectFromWebIdentityToken>\n\
                  </AssumeRoleWithWebIdentityResult>\n\
                  <ResponseMetadata><RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId></ResponseMetadata>\n\
                </AssumeRoleWithWebIdentityResponse>";
                (StatusCode::OK, xml.to_owned())
            }
            Some("GetCallerIdentity") => match verify_sigv4(&sts, &uri, &headers, &body) {
                Ok(()) => (
                    StatusCode::OK,
                    "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
                     <GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/mosaic</Arn>\
                     <UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account>\
                     </GetCallerIdentityResult></GetCallerIdentityResponse>"
                        .to_owned(),
                ),
                Err(why) => (
                    StatusCode::FORBIDDEN,
                    sts_error_xml("SignatureDoesNotMatch", &why),
                ),
            },
            other => (
                StatusCode::BAD_REQUEST,
                sts_error_xml("InvalidAction", &format!("{other:?}")),
            ),
        }
    }

    /// What STS does: parse the Authorization header, rebuild the signed request from what was
    /// received, recompute the signature with the secret it knows, compare.
    fn verify_sigv4(
        sts: &FakeSts,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), String> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .ok_or_else(|| format!("missing header {name}"))
        };
        let authorization = header("authorization")?;
        let rest = authorization
            .strip_prefix("AWS4-HMAC-SHA256 ")
            .ok_or("not AWS4-HMAC-SHA256")?;
        let mut parts: HashMap<&str, &str> = HashMap::new();
        for part in rest.split(", ") {
            let (k, v) = part.split_once('=').ok_or("malformed Authorization")?;
            parts.insert(k, v);
        }
        let credential: Vec<&str> = parts
            .get("Credential")
            .ok_or("no Credential")?
            .split('/')
            .collect();
        let [akid, date, region, service, "aws4_request"] = credential[..] else {
            return Err("malformed credential scope".to_owned());
        };
        if service != "sts" {
            return Err(format!("signed for service {service}"));
        }
        let secret = sts.secrets.get(akid).ok_or("unknown access key")?;
        let amz_date = header("x-amz-date")?;
        if !amz_date.starts_with(date) {
            return Err("X-Amz-Date does not match the scope date".to_owned());
        }
        let time = time::PrimitiveDateTime::parse(
            &amz_date,
            &time::format_description::parse("[year][month][day]T[hour][minute][second]Z")
                .map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?
        .assume_utc();
        let signed_names: Vec<&str> = parts
            .get("SignedHeaders")
            .ok_or("no SignedHeaders")?
            .split(';')
            .collect();
        for required in ["host", "x-amz-date"] {
            if !signed_names.contains(&required) {
                return Err(format!("{required} is not signed"));
            }
        }
        let token = headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if token.is_some() != signed_names.contains(&"x-amz-security-token") {
            return Err("the session token must be sent and signed together".to_owned());
        }
        let mut to_sign: Vec<(String, String)> = Vec::new();
        for name in &signed_names {
            if matches!(*name, "x-amz-date" | "x-amz-security-token") {
                continue;
            }
            for value in headers.get_all(*name) {
                to_sign.push((
                    (*name).to_owned(),
                    value.to_str().map_err(|e| e.to_string())?.to_owned(),
                ));
            }
        }
        let to_sign_ref: Vec<(&str, &str)> = to_sign
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let host = header("host")?;
        let url = Url::parse(&format!("http://{host}{uri}")).map_err(|e| e.to_string())?;
        let creds = AwsCredentials {
            access_key_id: akid.to_owned(),
            secret_access_key: Sensitive::new(secret.clone()),
            session_token: token.map(Sensitive::new),
        };
        let expected = sigv4::sign(
            &SignableRequest {
                method: "POST",
                url: &url,
                headers: &to_sign_ref,
                body,
            },
            &SigningParams {
                credentials: &creds,
                region,
                service,
                time,
            },
        )
        .map_err(|e| e.to_string())?;
        if expected.authorization() == authorization {
            Ok(())
        } else {
            Err("signature mismatch".to_owned())
        }
    }

    async fn start_sts() -> (String, Arc<FakeSts>) {
        let sts = Arc::new(FakeSts {
            secrets: HashMap::from([("AKIDEXAMPLE".to_owned(), SECRET_KEY.to_owned())]),
            calls: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/", post(fake_sts))
            .with_state(sts.clone());
        (format!("{}/", serve(router).await), sts)
    }

    /// Does what Vault does with an IAM login body: decode it, and replay the request to STS.
    async fn replay_like_vault(body: &Value) -> (u16, String, HashMap<String, Vec<String>>) {
        let field = |name: &str| {
            let b64 = body[name]
                .as_str()
                .unwrap_or_else(|| panic!("{name} is a string"));
            String::from_utf8(BASE64.decode(b64).expect("valid base64")).expect("utf-8")
        };
        assert_eq!(body["iam_http_request_method"], "POST");
        let url = field("iam_request_url");
        let req_body = field("iam_request_body");
        let headers: HashMap<String, Vec<String>> =
            serde_json::from_str(&field("iam_request_headers"))
                .expect("headers are JSON name -> [values]");
        let mut request = http().post(&url).body(req_body);
        for (name, values) in &headers {
            for value in values {
                request = request.header(name, value);
            }
        }
        let response = request.send().await.expect("fake STS answers");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"), headers)
    }

    // --- fake IMDS --------------------------------------------------------------------------

    #[derive(Default)]
    struct FakeImds {
        calls: AtomicUsize,
        no_role: bool,
    }

    fn check_token(headers: &HeaderMap) -> Result<(), (StatusCode, String)> {
        match headers
            .get("x-aws-ec2-metadata-token")
            .and_then(|v| v.to_str().ok())
        {
            Some(IMDS_TOKEN) => Ok(()),
            _ => Err((StatusCode::UNAUTHORIZED, String::new())),
        }
    }

    async fn start_imds(no_role: bool) -> (String, Arc<FakeImds>) {
        let imds = Arc::new(FakeImds {
            calls: AtomicUsize::new(0),
            no_role,
        });
        let router = Router::new()
            .route(
                "/latest/api/token",
                put(
                    |State(imds): State<Arc<FakeImds>>, headers: HeaderMap| async move {
                        imds.calls.fetch_add(1, Ordering::SeqCst);
                        match headers
                            .get("x-aws-ec2-metadata-token-ttl-seconds")
                            .and_then(|v| v.to_str().ok())
                        {
                            Some("21600") => (StatusCode::OK, IMDS_TOKEN.to_owned()),
                            _ => (StatusCode::BAD_REQUEST, "missing ttl".to_owned()),
                        }
                    },
                ),
            )
            .route(
                "/latest/meta-data/iam/security-credentials/",
                get(
                    |State(imds): State<Arc<FakeImds>>, headers: HeaderMap| async move {
                        imds.calls.fetch_add(1, Ordering::SeqCst);
                        check_token(&headers)?;
                        if imds.no_role {
                            return Err((StatusCode::NOT_FOUND, "Not Found".to_owned()));
                        }
                        Ok::<_, (StatusCode, String)>("mosaic-node-role\n".to_owned())
                    },
                ),
            )
            .route(
                "/latest/meta-data/iam/security-credentials/{role}",
                get(
                    |State(imds): State<Arc<FakeImds>>,
                     Path(role): Path<String>,
                     headers: HeaderMap| async move {
                        imds.calls.fetch_add(1, Ordering::SeqCst);
                        check_token(&headers)?;
                        if role != "mosaic-node-role" {
                            return Err((StatusCode::NOT_FOUND, String::new()));
                        }
                        Ok::<_, (StatusCode, String)>(
                            r#"{
  "Code" : "Success",
  "LastUpdated" : "2031-01-01T00:00:00Z",
  "Type" : "AWS-HMAC",
  "AccessKeyId" : "ASIAIMDSEXAMPLE",
  "SecretAccessKey" : "imdsSecretKeyEXAMPLE",
  "Token" : "IQoJb3JpZ2luX2VjIMDS+token/==",
  "Expiration" : "2031-01-01T06:00:00Z"
}"#
                            .to_owned(),
                        )
                    },
                ),
            )
            .route(
                "/latest/dynamic/instance-identity/pkcs7",
                get(
                    |State(imds): State<Arc<FakeImds>>, headers: HeaderMap| async move {
                        imds.calls.fetch_add(1, Ordering::SeqCst);
                        check_token(&headers)?;
                        Ok::<_, (StatusCode, String)>(PKCS7.to_owned())
                    },
                ),
            )
            .with_state(imds.clone());
        (serve(router).await, imds)
    }

    fn endpoints(sts_url: &str, imds_base: &str) -> AwsEndpoints {
        AwsEndpoints {
            sts_url: sts_url.to_owned(),
            imds_base: imds_base.to_owned(),
            imds_timeout: Duration::from_secs(2),
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    // --- IAM login --------------------------------------------------------------------------

    #[tokio::test]
    async fn iam_login_body_replays_to_a_verifying_sts() {
        let (sts_url, _sts) = start_sts().await;
        let creds = static_creds(Some("FwoGZXIvYXdzEXAMPLEsessiontoken"));
        let body = iam_login_body(
            &creds,
            Some("mosaic-cp"),
            Some("vault.example.com"),
            "us-east-1",
            &sts_url,
            now(),
        )
        .expect("login body");

        let object = body.as_object().expect("an object");
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "iam_http_request_method",
                "iam_request_body",
                "iam_request_headers",
                "iam_request_url",
                "role"
            ]
        );
        assert_eq!(body["role"], "mosaic-cp");
        assert_eq!(
            body["iam_request_body"],
            BASE64.encode("Action=GetCallerIdentity&Version=2011-06-15")
        );
        assert_eq!(body["iam_request_url"], BASE64.encode(&sts_url));

        let (status, answer, headers) = replay_like_vault(&body).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer.contains("<Arn>arn:aws:iam::123456789012:user/mosaic</Arn>"));
        // The shape Vault parses, and the server-id header signed as Vault requires.
        assert_eq!(
            headers["Content-Type"],
            ["application/x-www-form-urlencoded; charset=utf-8"]
        );
        assert_eq!(headers["X-Vault-Aws-Iam-Server-Id"], ["vault.example.com"]);
        assert_eq!(
            headers["X-Amz-Security-Token"],
            ["FwoGZXIvYXdzEXAMPLEsessiontoken"]
        );
        assert!(headers.contains_key("X-Amz-Date"));
        let authorization = &headers["Authorization"][0];
        assert!(
            authorization.contains("/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-vault-aws-iam-server-id, "),
            "{authorization}"
        );
    }

    #[tokio::test]
    async fn iam_login_body_without_role_or_server_id_and_tampering_is_caught() {
        let (sts_url, sts) = start_sts().await;
        let body = iam_login_body(
            &static_creds(None),
            None,
            None,
            "us-east-1",
            &sts_url,
            now(),
        )
        .expect("login body");
        assert!(body.get("role").is_none(), "role is omitted when not given");
        let (status, answer, headers) = replay_like_vault(&body).await;
        assert_eq!(status, 200, "{answer}");
        assert!(!headers.contains_key("X-Vault-Aws-Iam-Server-Id"));
        assert!(!headers.contains_key("X-Amz-Security-Token"));

        // Another Vault's server id swapped in after signing: STS must refuse.
        let signed = iam_login_body(
            &static_creds(None),
            None,
            Some("vault.example.com"),
            "us-east-1",
            &sts_url,
            now(),
        )
        .expect("login body");
        let (_, _, mut signed_headers) = replay_like_vault(&signed).await;
        signed_headers.insert(
            "X-Vault-Aws-Iam-Server-Id".to_owned(),
            vec!["evil".to_owned()],
        );
        let mut tampered = signed.clone();
        tampered["iam_request_headers"] =
            Value::from(BASE64.encode(serde_json::to_vec(&signed_headers).expect("json")));
        let (status, answer, _) = replay_like_vault(&tampered).await;
        assert_eq!(status, 403, "{answer}");
        assert!(answer.contains("SignatureDoesNotMatch"));
        assert_eq!(sts.calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn iam_login_body_rejects_a_bad_sts_url() {
        let err = iam_login_body(
            &static_creds(None),
            None,
            None,
            "us-east-1",
            "not a url",
            now(),
        )
        .expect_err("bad URL");
        assert!(
            err.to_string().contains("invalid STS URL `not a url`"),
            "{err}"
        );
    }

    // --- credential chain -------------------------------------------------------------------

    #[tokio::test]
    async fn chain_prefers_the_environment() {
        let (sts_url, sts) = start_sts().await;
        let (imds_base, imds) = start_imds(false).await;
        let env = env(&[
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "envSecret"),
            ("AWS_SESSION_TOKEN", "envToken"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent"),
            ("AWS_ROLE_ARN", ROLE_ARN),
        ]);
        let resolved = resolve_credentials(&http(), &env, &endpoints(&sts_url, &imds_base))
            .await
            .expect("credentials");
        assert_eq!(resolved.source, CredentialSource::Environment);
        assert_eq!(resolved.credentials.access_key_id, "AKIDENV");
        assert_eq!(resolved.credentials.secret_access_key.expose(), "envSecret");
        assert_eq!(
            resolved
                .credentials
                .session_token
                .as_ref()
                .map(|t| t.expose().as_str()),
            Some("envToken")
        );
        assert_eq!(resolved.expires_at, None);
        assert_eq!(sts.calls.load(Ordering::SeqCst), 0);
        assert_eq!(imds.calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn chain_uses_irsa_before_imds() {
        let (sts_url, sts) = start_sts().await;
        let (imds_base, imds) = start_imds(false).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, format!("{IRSA_JWT}\n")).expect("write token");
        let env = env(&[
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                token_file.to_str().expect("utf-8 path"),
            ),
            ("AWS_ROLE_ARN", ROLE_ARN),
            ("AWS_ROLE_SESSION_NAME", "zone-1"),
            ("AWS_ACCESS_KEY_ID", ""),
        ]);
        let resolved = resolve_credentials(&http(), &env, &endpoints(&sts_url, &imds_base))
            .await
            .expect("credentials");
        assert_eq!(resolved.source, CredentialSource::WebIdentity);
        assert_eq!(resolved.credentials.access_key_id, "ASIAIRSAEXAMPLE");
        assert_eq!(
            resolved.credentials.secret_access_key.expose(),
            "irsa&Secret/Key+EXAMPLE"
        );
        assert_eq!(
            resolved
                .credentials
                .session_token
                .as_ref()
                .map(|t| t.expose().as_str()),
            Some("IQoJb3JpZ2luX2VjEIRSA+token/==")
        );
        assert_eq!(
            resolved.expires_at,
            Some(OffsetDateTime::parse("2031-10-24T23:00:23Z", &Rfc3339).expect("time"))
        );
        assert_eq!(sts.calls.load(Ordering::SeqCst), 1);
        assert_eq!(imds.calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn irsa_failure_is_an_error_not_a_fall_through() {
        let (sts_url, _sts) = start_sts().await;
        let (imds_base, imds) = start_imds(false).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "not-the-right-jwt").expect("write token");
        let env = env(&[
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                token_file.to_str().expect("utf-8 path"),
            ),
            ("AWS_ROLE_ARN", ROLE_ARN),
            ("AWS_ROLE_SESSION_NAME", "zone-1"),
        ]);
        let err = resolve_credentials(&http(), &env, &endpoints(&sts_url, &imds_base))
            .await
            .expect_err("rejected token");
        match &err {
            AwsError::StsRejected {
                status,
                code,
                message,
                ..
            } => {
                assert_eq!(*status, 400);
                assert_eq!(code, "InvalidIdentityToken");
                assert_eq!(message, "Couldn't retrieve verification key");
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert!(!err.to_string().contains("not-the-right-jwt"));
        assert_eq!(imds.calls.load(Ordering::SeqCst), 0);

        // A missing token file names the path and the variable.
        let env = AwsEnvironment {
            web_identity_token_file: Some(dir.path().join("missing")),
            role_arn: Some(ROLE_ARN.to_owned()),
            ..AwsEnvironment::default()
        };
        let err = resolve_credentials(&http(), &env, &endpoints(&sts_url, &imds_base))
            .await
            .expect_err("missing file");
        assert!(
            err.to_string().contains("AWS_WEB_IDENTITY_TOKEN_FILE"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn chain_falls_back_to_imds_v2() {
        let (sts_url, sts) = start_sts().await;
        let (imds_base, imds) = start_imds(false).await;
        let resolved = resolve_credentials(&http(), &env(&[]), &endpoints(&sts_url, &imds_base))
            .await
            .expect("credentials");
        assert_eq!(resolved.source, CredentialSource::InstanceProfile);
        assert_eq!(resolved.credentials.access_key_id, "ASIAIMDSEXAMPLE");
        assert_eq!(
            resolved.credentials.secret_access_key.expose(),
            "imdsSecretKeyEXAMPLE"
        );
        assert_eq!(
            resolved
                .credentials
                .session_token
                .as_ref()
                .map(|t| t.expose().as_str()),
            Some("IQoJb3JpZ2luX2VjIMDS+token/==")
        );
        assert_eq!(
            resolved.expires_at,
            Some(OffsetDateTime::parse("2031-01-01T06:00:00Z", &Rfc3339).expect("time"))
        );
        // token, role listing, role credentials.
        assert_eq!(imds.calls.load(Ordering::SeqCst), 3);
        assert_eq!(sts.calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn imds_without_a_role_or_unreachable_explains_the_whole_chain() {
        let (imds_base, _imds) = start_imds(true).await;
        let err = resolve_credentials(&http(), &env(&[]), &endpoints(DEFAULT_STS_URL, &imds_base))
            .await
            .expect_err("no role");
        let message = err.to_string();
        assert!(message.contains("no AWS credentials found"), "{message}");
        assert!(message.contains("attach an instance profile"), "{message}");

        // A port nobody listens on.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let dead = format!("http://{}", listener.local_addr().expect("addr"));
        drop(listener);
        let err = resolve_credentials(&http(), &env(&[]), &endpoints(DEFAULT_STS_URL, &dead))
            .await
            .expect_err("unreachable");
        assert!(matches!(err, AwsError::NoCredentials { .. }), "{err:?}");
        assert!(err.to_string().contains("IMDSv2 token request"), "{err}");
    }

    #[tokio::test]
    async fn incomplete_environment_is_an_error() {
        for (vars, want) in [
            (
                &[("AWS_ACCESS_KEY_ID", "AKID")][..],
                "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
            ),
            (
                &[("AWS_SECRET_ACCESS_KEY", "s")][..],
                "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not",
            ),
            (
                &[("AWS_ROLE_ARN", ROLE_ARN)][..],
                "AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not",
            ),
            (
                &[("AWS_WEB_IDENTITY_TOKEN_FILE", "/t")][..],
                "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not",
            ),
        ] {
            let err = resolve_credentials(
                &http(),
                &env(vars),
                &endpoints(DEFAULT_STS_URL, "http://127.0.0.1:9"),
            )
            .await
            .expect_err("incomplete");
            assert!(err.to_string().contains(want), "{err}");
        }
    }

    #[test]
    fn environment_from_lookup() {
        let e = env(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "  "),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ROLE_SESSION_NAME", "s"),
        ]);
        assert_eq!(e.access_key_id.as_deref(), Some("AKID"));
        assert_eq!(
            e.secret_access_key.as_ref().map(|s| s.expose().as_str()),
            Some("secret")
        );
        assert_eq!(e.session_token, None, "blank counts as unset");
        assert_eq!(e.region.as_deref(), Some("eu-west-1"));
        assert_eq!(e.role_session_name.as_deref(), Some("s"));
        let e = env(&[
            ("AWS_REGION", "us-west-2"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
        ]);
        assert_eq!(e.region.as_deref(), Some("us-west-2"));
        let _ = AwsEnvironment::from_process_env();
    }

    // --- EC2 login --------------------------------------------------------------------------

    #[tokio::test]
    async fn ec2_login_body_from_imds_v2() {
        let (imds_base, imds) = start_imds(false).await;
        let body = ec2_login_body(
            &http(),
            &imds_base,
            Some("mosaic-ec2"),
            Some("5defbf9e-a8f9-3063-bdfc-54b7a42a1f95"),
        )
        .await
        .expect("login body");
        assert_eq!(
            body,
            json!({
                "role": "mosaic-ec2",
                "pkcs7": PKCS7.replace('\n', ""),
                "nonce": "5defbf9e-a8f9-3063-bdfc-54b7a42a1f95",
            })
        );
        assert_eq!(imds.calls.load(Ordering::SeqCst), 2);
        let body = ec2_login_body(&http(), &imds_base, None, None)
            .await
            .expect("login body");
        assert_eq!(body, json!({ "pkcs7": PKCS7.replace('\n', "") }));
    }

    // --- redaction --------------------------------------------------------------------------

    #[tokio::test]
    async fn debug_never_shows_secrets() {
        let creds = static_creds(Some("SessionTokenEXAMPLE"));
        let debug = format!("{creds:?}");
        assert!(!debug.contains(SECRET_KEY), "{debug}");
        assert!(!debug.contains("SessionTokenEXAMPLE"), "{debug}");
        let resolved = ResolvedCredentials {
            credentials: creds.clone(),
            source: CredentialSource::Environment,
            expires_at: None,
        };
        assert!(!format!("{resolved:?}").contains(SECRET_KEY));
        let e = env(&[
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_SESSION_TOKEN", "SessionTokenEXAMPLE"),
        ]);
        let debug = format!("{e:?}");
        assert!(
            !debug.contains(SECRET_KEY) && !debug.contains("SessionTokenEXAMPLE"),
            "{debug}"
        );

        // The login body never carries the secret key, in clear or base64-encoded.
        let body = iam_login_body(
            &creds,
            Some("r"),
            Some("v"),
            "us-east-1",
            DEFAULT_STS_URL,
            now(),
        )
        .expect("login body");
        let rendered = format!("{body:?} {body}");
        assert!(!rendered.contains(SECRET_KEY), "{rendered}");
        for field in ["iam_request_url", "iam_request_body", "iam_request_headers"] {
            let decoded = BASE64
                .decode(body[field].as_str().expect("string"))
                .expect("base64");
            assert!(!String::from_utf8_lossy(&decoded).contains(SECRET_KEY));
        }
    }

    // --- XML --------------------------------------------------------------------------------

    #[test]
    fn xml_helpers() {
        let doc = "<a><CredentialsX>no</CredentialsX><Credentials xmlns:x=\"y\">\n <B> 1 &lt;2&gt; &#65;&#x42; &bogus; & </B><C/><D><![CDATA[<raw>&amp;]]></D></Credentials></a>";
        let creds = xml_element(doc, "Credentials").expect("found");
        assert!(creds.starts_with("\n <B>"));
        assert_eq!(xml_field(creds, "B").as_deref(), Some("1 <2> AB &bogus; &"));
        assert_eq!(xml_field(creds, "C").as_deref(), Some(""));
        assert_eq!(xml_field(creds, "D").as_deref(), Some("<raw>&amp;"));
        assert_eq!(xml_field(doc, "Missing"), None);
        assert_eq!(xml_field("<Open>never closed", "Open"), None);

        let url = Url::parse(DEFAULT_STS_URL).expect("url");
        let err = sts_error(
            "AssumeRoleWithWebIdentity",
            "STS",
            &url,
            403,
            &sts_error_xml("AccessDenied", "Not authorized"),
        );
        assert!(matches!(err, AwsError::StsRejected { ref code, .. } if code == "AccessDenied"));
        let err = sts_error(
            "AssumeRoleWithWebIdentity",
            "STS",
            &url,
            502,
            &"x".repeat(1000),
        );
        match err {
            AwsError::HttpStatus { status, body, .. } => {
                assert_eq!(status, 502);
                assert!(body.len() < 300);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
