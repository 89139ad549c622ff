//! TLS for SSL listeners: rustls with ring's cryptography, TLS 1.2 and 1.3
//! with rustls's safe defaults, the certificate chain and private key (and
//! the CA that signs client certificates, when clients must present one)
//! read from PEM files. SIGHUP reads the files again: new connections use
//! the new certificate, open ones keep theirs; a reload that fails keeps
//! the old one and says why.

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio_rustls::TlsAcceptor;

/// Where an SSL listener's PEM files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Clients must present a certificate this CA signed.
    pub client_ca: Option<PathBuf>,
}

/// Why the files make no TLS configuration, and which config key to blame.
#[derive(Debug)]
pub struct TlsFileError {
    pub field: &'static str,
    pub problem: String,
}

pub(crate) fn certificates(
    field: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let error = |problem: String| TlsFileError { field, problem: format!("{}: {problem}", path.display()) };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(e.to_string()))?;
    if certs.is_empty() {
        return Err(error("holds no PEM certificate".into()));
    }
    Ok(certs)
}

impl TlsFiles {
    /// Reads the files into a rustls server configuration.
    pub fn server_config(&self) -> Result<ServerConfig, TlsFileError> {
        // rustls deprecates its ring provider for lacking post-quantum key
        // exchange (X25519MLKEM768); aws-lc-rs has it but needs cmake to
        // build, which a machine with only the Rust toolchain lacks.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = certificates("tls-cert", &self.cert)?;
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| TlsFileError {
            field: "tls-key",
            problem: format!("{}: {e}", self.key.display()),
        })?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsFileError { field: "tls-cert", problem: e.to_string() })?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in certificates("tls-client-ca", ca)? {
                    roots.add(cert).map_err(|e| TlsFileError {
                        field: "tls-client-ca",
                        problem: format!("{}: {e}", ca.display()),
                    })?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| TlsFileError { field: "tls-client-ca", problem: e.to_string() })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        builder.with_single_cert(chain, key).map_err(|e| TlsFileError {
            field: "tls-key",
            problem: format!("{} does not go with {}: {e}", self.key.display(), self.cert.display()),
        })
    }
}

/// An SSL listener's TLS configuration, replaced whole by a reload.
pub struct ListenerTls {
    files: TlsFiles,
    current: RwLock<TlsAcceptor>,
}

impl ListenerTls {
    pub fn load(files: TlsFiles) -> Result<ListenerTls, TlsFileError> {
        let acceptor = TlsAcceptor::from(Arc::new(files.server_config()?));
        Ok(ListenerTls { files, current: RwLock::new(acceptor) })
    }

    /// The configuration new connections are accepted with.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the files again; on failure the old configuration stays.
    pub fn reload(&self) -> Result<(), TlsFileError> {
        let acceptor = TlsAcceptor::from(Arc::new(self.files.server_config()?));
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = acceptor;
        Ok(())
    }
}
