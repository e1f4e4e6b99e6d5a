//! Certificates made at test time: a CA and the leaf certificates it signs, or self-signed
//! ones. Files are PEM, in a temporary directory that lives as long as the value.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// A certificate authority for one test.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
    dir: tempfile::TempDir,
}

/// A leaf certificate and its key, as PEM files and in memory.
pub struct CertFiles {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub cert_pem: String,
    pub key_pem: String,
    /// The leaf certificate, DER: compare with `served_cert_der(&resp)`.
    pub cert_der: Vec<u8>,
    ca_pem: String,
    ca_path: PathBuf,
    dir: tempfile::TempDir,
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    pub fn new() -> Self {
        Self::with_params(CertificateParams::new(Vec::<String>::new()).unwrap())
    }

    /// A CA whose own certificate ends at midnight UTC on `(year, month, day)`.
    pub fn until((year, month, day): (i32, u8, u8)) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.not_after = rcgen::date_time_ymd(year, month, day);
        Self::with_params(params)
    }

    fn with_params(mut params: CertificateParams) -> Self {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(DnType::CommonName, "Rampart Test CA");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), cert.pem()).unwrap();
        TestCa { cert, key, dir }
    }

    pub fn ca_pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA certificate as a PEM file (e.g. for a pool's `tls.ca_file`).
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    pub fn ca_der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    /// A leaf certificate for `names` (DNS names, `*.wildcards` or IP addresses).
    pub fn issue(&self, names: &[&str]) -> CertFiles {
        self.issue_with(leaf_params(names))
    }

    /// A leaf certificate for `names` that expires at midnight UTC on `(year, month, day)`.
    pub fn issue_until(&self, names: &[&str], (year, month, day): (i32, u8, u8)) -> CertFiles {
        let mut params = leaf_params(names);
        params.not_after = rcgen::date_time_ymd(year, month, day);
        if year < 1975 {
            // rcgen's default start (1975) would come after the end.
            params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
        }
        self.issue_with(params)
    }

    fn issue_with(&self, params: CertificateParams) -> CertFiles {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        CertFiles::write(cert, key, Some((self.ca_pem(), self.ca_der())))
    }
}

impl CertFiles {
    /// A self-signed certificate for `names`; it is its own CA (`ca_pem`, `ca_path`).
    pub fn self_signed(names: &[&str]) -> CertFiles {
        let key = KeyPair::generate().unwrap();
        let cert = leaf_params(names).self_signed(&key).unwrap();
        CertFiles::write(cert, key, None)
    }

    fn write(cert: rcgen::Certificate, key: KeyPair, ca: Option<(String, Vec<u8>)>) -> CertFiles {
        let dir = tempfile::tempdir().unwrap();
        let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
        let ca_pem = ca.map_or_else(|| cert_pem.clone(), |(pem, _)| pem);
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&cert_path, &cert_pem).unwrap();
        std::fs::write(&key_path, &key_pem).unwrap();
        std::fs::write(&ca_path, &ca_pem).unwrap();
        CertFiles {
            cert_path,
            key_path,
            cert_pem,
            key_pem,
            cert_der: cert.der().to_vec(),
            ca_pem,
            ca_path,
            dir,
        }
    }

    /// `cert_path` as a string, for YAML.
    pub fn cert(&self) -> String {
        self.cert_path.display().to_string()
    }

    /// `key_path` as a string, for YAML.
    pub fn key(&self) -> String {
        self.key_path.display().to_string()
    }

    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// PEM of the issuing CA (the certificate itself when self-signed).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// Copies the certificate and key into `dir` as `STEM.crt` and `STEM.key` (e.g. next to
    /// a Rampart config) and returns both paths.
    pub fn copy_to(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let (c, k) = (
            dir.join(format!("{stem}.crt")),
            dir.join(format!("{stem}.key")),
        );
        std::fs::write(&c, &self.cert_pem).unwrap();
        std::fs::write(&k, &self.key_pem).unwrap();
        (c, k)
    }
}

/// Shorthand for `CertFiles::self_signed`.
pub fn self_signed(names: &[&str]) -> CertFiles {
    CertFiles::self_signed(names)
}

fn leaf_params(names: &[&str]) -> CertificateParams {
    assert!(!names.is_empty(), "a certificate needs at least one name");
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params
}
