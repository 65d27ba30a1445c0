//! Certificates made at test time: a CA and a certificate for `localhost` and
//! `127.0.0.1` signed by it. No key is ever committed.
//!
//! Shared by every test tree: `tests/common` has it as `common::certs`, and the
//! client, tool and transport tests include this file with `#[path]`.
#![allow(dead_code)] // each test tree uses its own part

use std::path::{Path, PathBuf};

/// A CA and a server certificate with its key, as PEM text.
pub struct Pem {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

/// A fresh CA and a certificate for `localhost` and `127.0.0.1` signed by it.
pub fn pem() -> Pem {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};

    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "wren-mqtt test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");

    let key = KeyPair::generate().expect("server key");
    let mut params =
        CertificateParams::new(vec!["localhost".to_string()]).expect("server parameters");
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    // A subject of its own: with the CA's default one, the leaf would look
    // self-signed to OpenSSL.
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .expect("server certificate");
    Pem {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

/// Writes `pem` as `ca.pem`, `cert.pem` and `key.pem` into `dir`; returns their paths
/// in that order.
pub fn write(pem: &Pem, dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write a PEM file");
        path
    };
    (
        write("ca.pem", &pem.ca),
        write("cert.pem", &pem.cert),
        write("key.pem", &pem.key),
    )
}

/// PEM files for a TLS listener and the CA clients should trust, in a temporary
/// folder removed on drop.
pub struct Certificates {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca_pem: String,
    _dir: tempfile::TempDir,
}

/// A fresh [`pem`], written to a temporary folder.
pub fn make() -> Certificates {
    let pem = pem();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (ca, cert, key) = write(&pem, dir.path());
    Certificates {
        ca,
        cert,
        key,
        ca_pem: pem.ca,
        _dir: dir,
    }
}
