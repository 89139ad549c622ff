//! Certificates for TLS tests, made per run (rcgen), and a rustls client.

use super::{Client, STEP_TIMEOUT};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A certificate authority and what it signs.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A signed certificate and its key, DER.
pub struct Signed {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    pem: (String, String),
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        Ca { cert: params.self_signed(&key).unwrap(), key }
    }

    pub fn sign(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> Signed {
        self.sign_for(names, None, purpose)
    }

    /// `sign`, the subject also naming an organization (before the common
    /// name, as certificates usually order them).
    pub fn sign_for(
        &self,
        names: &[&str],
        organization: Option<&str>,
        purpose: ExtendedKeyUsagePurpose,
    ) -> Signed {
        self.sign_with(names, organization, vec![purpose])
    }

    /// A certificate for a cluster peer, which both accepts connections
    /// and makes them (server and client authentication).
    pub fn sign_peer(&self, names: &[&str]) -> Signed {
        use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
        self.sign_with(names, None, vec![ServerAuth, ClientAuth])
    }

    fn sign_with(
        &self,
        names: &[&str],
        organization: Option<&str>,
        purposes: Vec<ExtendedKeyUsagePurpose>,
    ) -> Signed {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(organization) = organization {
            params.distinguished_name.push(DnType::OrganizationName, organization);
        }
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = purposes;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Signed {
            cert: cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            pem: (cert.pem(), key.serialize_pem()),
        }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }
}

/// Writes the server's certificate, key and (optionally) client CA files.
pub fn write_files(
    dir: &Path,
    server: &Signed,
    client_ca: Option<&Ca>,
) -> (PathBuf, PathBuf, Option<PathBuf>) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &server.pem.0).unwrap();
    std::fs::write(&key, &server.pem.1).unwrap();
    let ca = client_ca.map(|ca| {
        let path = dir.join("client-ca.pem");
        std::fs::write(&path, ca.pem()).unwrap();
        path
    });
    (cert, key, ca)
}

#[allow(deprecated)] // ring, as the server uses (see net/tls.rs)
pub fn connector(trusted: &Ca, client: Option<&Signed>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.cert.der().clone()).unwrap();
    let builder =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(c) => builder.with_client_auth_cert(vec![c.cert.clone()], c.key.clone_key()).unwrap(),
    };
    TlsConnector::from(Arc::new(config))
}

pub async fn tls_connect(
    addr: SocketAddr,
    connector: &TlsConnector,
) -> std::io::Result<Client<TlsStream<TcpStream>>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let stream =
        tokio::time::timeout(STEP_TIMEOUT, connector.connect(name, tcp)).await.expect("handshake in time")?;
    Ok(Client::over(stream))
}
