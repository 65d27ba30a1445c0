//! Certificates made at test time: a CA and a `localhost` certificate signed by it,
//! written to a temporary folder. No key is ever committed.

use std::path::PathBuf;

use super::mosquitto::TempDir;

/// PEM files for a TLS listener and the CA that clients should trust.
pub struct Certificates {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca_pem: String,
    _dir: TempDir,
}

/// A fresh CA and a certificate for `localhost` and `127.0.0.1` signed by it.
pub fn make() -> Certificates {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};

    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "wren-mqtt broker test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");

    let key = KeyPair::generate().expect("server key");
    let mut params =
        CertificateParams::new(vec!["localhost".to_string()]).expect("server parameters");
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .expect("server certificate");

    let dir = TempDir::new("certs");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write a PEM file");
        path
    };
    Certificates {
        ca: write("ca.pem", &ca.pem()),
        cert: write("cert.pem", &cert.pem()),
        key: write("key.pem", &key.serialize_pem()),
        ca_pem: ca.pem(),
        _dir: dir,
    }
}
