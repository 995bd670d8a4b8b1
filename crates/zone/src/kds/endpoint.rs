//! The global's KDS addresses: `global.address` holds one URL or a comma-separated list
//! (`grpcs://g1:5685,grpcs://g2:5685`); the zone fails over between them in order.
//!
//! `grpcs://` (or `https://`) is TLS, verified with the CA in `global.ca_cert` and the URL's
//! host as the server name. `grpc://` (or `http://`) is plain text, for tests and development
//! only (logged as a warning). The port defaults to 5685.

use std::{path::PathBuf, time::Duration};

use crate::config::GlobalAddress;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// The KDS port when an address names none.
pub const DEFAULT_KDS_PORT: u16 = 5685;

/// One global address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalEndpoint {
    /// The address as configured (for logs).
    pub url: String,
    /// Whether the connection uses TLS.
    pub tls: bool,
    /// Host name or IP (the TLS server name).
    pub host: String,
    /// Port.
    pub port: u16,
}

/// Why the `[global]` settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// An entry of `global.address` is not a valid URL.
    #[error("invalid `global.address` entry {entry:?}: {reason}")]
    BadAddress {
        /// The entry.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// `global.address` is empty.
    #[error("`global.address` is empty: set it to the global's KDS URL, e.g. grpcs://global:5685")]
    Empty,
    /// TLS without `global.ca_cert`.
    #[error(
        "`global.address` {url} uses TLS but `global.ca_cert` is not set: set it to the PEM file of the CA that signs the global's KDS certificate (the global writes kds-ca.pem into its data_dir)"
    )]
    MissingCa {
        /// The TLS address.
        url: String,
    },
    /// `global.ca_cert` cannot be read.
    #[error("cannot read `global.ca_cert` {path:?}: {source}")]
    ReadCa {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `global.ca_cert` holds no certificate.
    #[error(
        "`global.ca_cert` {path:?} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)"
    )]
    NotPem {
        /// The file.
        path: PathBuf,
    },
    /// tonic refused the endpoint settings.
    #[error("cannot set up the connection to {url}: {reason}")]
    Transport {
        /// The address.
        url: String,
        /// tonic's message.
        reason: String,
    },
}

/// HTTP/2 and timeout settings of the KDS channel.
#[derive(Clone, Copy, Debug)]
pub struct ChannelSettings {
    /// TCP connect (and TLS handshake) timeout.
    pub connect_timeout: Duration,
    /// Interval of HTTP/2 keepalive pings (sent while idle too).
    pub keepalive_interval: Duration,
    /// A ping unanswered this long closes the connection (dead-stream detection).
    pub keepalive_timeout: Duration,
}

// === impl GlobalEndpoint ===

impl GlobalEndpoint {
    /// Parses `global.address`: one URL or a comma-separated list.
    pub fn parse_list(list: &str) -> Result<Vec<GlobalEndpoint>, EndpointError> {
        let out = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(GlobalEndpoint::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if out.is_empty() {
            return Err(EndpointError::Empty);
        }
        Ok(out)
    }

    /// Parses one URL.
    pub fn parse(entry: &str) -> Result<GlobalEndpoint, EndpointError> {
        let address: GlobalAddress = entry.parse().map_err(|reason| EndpointError::BadAddress {
            entry: entry.to_string(),
            reason,
        })?;
        Ok(GlobalEndpoint {
            url: address.as_str().to_string(),
            tls: address.is_tls(),
            host: address.host().to_string(),
            port: address.port().unwrap_or(DEFAULT_KDS_PORT),
        })
    }

    /// The tonic endpoint: `https://` with the CA and server name for TLS, `http://` otherwise.
    pub fn endpoint(
        &self,
        ca_pem: Option<&[u8]>,
        settings: &ChannelSettings,
    ) -> Result<Endpoint, EndpointError> {
        let transport = |e: tonic::transport::Error| EndpointError::Transport {
            url: self.url.clone(),
            reason: e.to_string(),
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let scheme = if self.tls { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{host}:{}", self.port))
            .map_err(transport)?
            .connect_timeout(settings.connect_timeout)
            .http2_keep_alive_interval(settings.keepalive_interval)
            .keep_alive_timeout(settings.keepalive_timeout)
            .keep_alive_while_idle(true)
            .tcp_nodelay(true);
        if self.tls {
            let ca = ca_pem.ok_or_else(|| EndpointError::MissingCa {
                url: self.url.clone(),
            })?;
            let tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .domain_name(self.host.clone());
            endpoint = endpoint.tls_config(tls).map_err(transport)?;
        }
        Ok(endpoint)
    }
}

impl std::fmt::Display for GlobalEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_defaults() {
        let eps =
            GlobalEndpoint::parse_list("grpcs://g1.example:5685, grpc://10.0.0.2 ,https://[::1]:9")
                .unwrap();
        assert_eq!(eps.len(), 3);
        assert_eq!(
            (eps[0].tls, eps[0].host.as_str(), eps[0].port),
            (true, "g1.example", 5685)
        );
        assert_eq!(
            (eps[1].tls, eps[1].host.as_str(), eps[1].port),
            (false, "10.0.0.2", DEFAULT_KDS_PORT)
        );
        assert_eq!((eps[2].host.as_str(), eps[2].port), ("::1", 9));
        assert!(matches!(
            GlobalEndpoint::parse_list(" , "),
            Err(EndpointError::Empty)
        ));
        let err = GlobalEndpoint::parse_list("grpcs://a:1,ftp://b").unwrap_err();
        assert!(err.to_string().contains("ftp://b"), "{err}");
    }

    #[test]
    fn tls_needs_a_ca() {
        let settings = ChannelSettings {
            connect_timeout: Duration::from_secs(1),
            keepalive_interval: Duration::from_secs(1),
            keepalive_timeout: Duration::from_secs(1),
        };
        let ep = GlobalEndpoint::parse("grpcs://g:5685").unwrap();
        assert!(matches!(
            ep.endpoint(None, &settings),
            Err(EndpointError::MissingCa { .. })
        ));
        let plain = GlobalEndpoint::parse("grpc://[::1]:7").unwrap();
        let e = plain.endpoint(None, &settings).unwrap();
        assert_eq!(e.uri().to_string(), "http://[::1]:7/");
    }
}
