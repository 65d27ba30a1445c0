//! TLS settings for listening and dialling, read from PEM files.

use std::fs;
use std::path::{Path, PathBuf};

use native_tls::{Certificate, Identity, Protocol, TlsAcceptor, TlsConnector};

use super::Error;

/// Reads a file for TLS, naming it in the error.
fn read_pem(path: &Path, what: &'static str) -> Result<Vec<u8>, Error> {
    fs::read(path).map_err(|source| Error::TlsFile {
        path: path.to_owned(),
        what,
        source,
    })
}

/// Splits a PEM bundle into its certificates.
fn certificates(pem: &[u8], path: &Path) -> Result<Vec<Certificate>, Error> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = String::from_utf8_lossy(pem);
    let mut found = Vec::new();
    let mut rest = &text[..];
    while let Some(start) = rest.find(BEGIN) {
        let Some(end) = rest[start..].find(END) else {
            break;
        };
        let block = &rest[start..start + end + END.len()];
        found.push(
            Certificate::from_pem(block.as_bytes()).map_err(|source| Error::TlsSetup {
                context: format!("certificate in {}", path.display()),
                source,
            })?,
        );
        rest = &rest[start + end + END.len()..];
    }
    if found.is_empty() {
        return Err(Error::NoCertificate(path.to_owned()));
    }
    Ok(found)
}

/// A listener's TLS: its certificate chain and private key, in PEM files.
///
/// The key may be PKCS#8, PKCS#1 (RSA) or SEC1 (EC) PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// The certificate chain presented to clients, leaf first.
    pub certfile: PathBuf,
    /// The private key of the leaf certificate.
    pub keyfile: PathBuf,
}

impl ServerTls {
    /// Loads the files and builds the acceptor every connection of the listener uses.
    pub fn acceptor(&self) -> Result<TlsAcceptor, Error> {
        let chain = read_pem(&self.certfile, "certificate file")?;
        let key = read_pem(&self.keyfile, "key file")?;
        let identity = Identity::from_pkcs8(&chain, &key).map_err(|source| Error::TlsSetup {
            context: format!(
                "certificate {} with key {}",
                self.certfile.display(),
                self.keyfile.display()
            ),
            source,
        })?;
        TlsAcceptor::builder(identity)
            .min_protocol_version(Some(Protocol::Tlsv12))
            .build()
            .map_err(|source| Error::TlsSetup {
                context: "TLS acceptor".into(),
                source,
            })
    }
}

/// A client's TLS: whom to trust, who to be, and how strict to be.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// PEM file of CA certificates to trust besides the system's (`--cafile`).
    pub ca_file: Option<PathBuf>,
    /// PEM text of CA certificates to trust (hbmqtt's `--ca-data`).
    pub ca_data: Option<String>,
    /// Client certificate and key, PEM, for brokers that ask for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Skip certificate and host name checks. For tests only: it makes TLS useless
    /// against an attacker (`--insecure`).
    pub insecure: bool,
    /// The oldest TLS version accepted; TLS 1.2 when `None`.
    pub min_version: Option<Protocol>,
}

impl ClientTls {
    /// Builds the connector.
    pub fn connector(&self) -> Result<TlsConnector, Error> {
        let mut builder = TlsConnector::builder();
        builder.min_protocol_version(Some(self.min_version.unwrap_or(Protocol::Tlsv12)));
        if let Some(path) = &self.ca_file {
            for certificate in certificates(&read_pem(path, "CA file")?, path)? {
                builder.add_root_certificate(certificate);
            }
        }
        if let Some(pem) = &self.ca_data {
            for certificate in certificates(pem.as_bytes(), Path::new("<ca data>"))? {
                builder.add_root_certificate(certificate);
            }
        }
        if let Some((cert, key)) = &self.client_cert {
            let identity = Identity::from_pkcs8(
                &read_pem(cert, "client certificate")?,
                &read_pem(key, "client key")?,
            )
            .map_err(|source| Error::TlsSetup {
                context: format!("client certificate {}", cert.display()),
                source,
            })?;
            builder.identity(identity);
        }
        if self.insecure {
            builder.danger_accept_invalid_certs(true);
            builder.danger_accept_invalid_hostnames(true);
        }
        builder.build().map_err(|source| Error::TlsSetup {
            context: "TLS connector".into(),
            source,
        })
    }
}
