//! Mutual TLS on the controller listener (`controller-tls-cert`,
//! `controller-tls-key`, `controller-tls-ca`): every voter and broker of
//! the cluster presents a certificate the cluster's CA signed, and talks
//! only to peers that do. The controller listener carries raft's messages
//! and requests that change everything (topics, ACLs, credentials), and its
//! replies carry the image (credentials' salted keys included), so a
//! cluster reachable by others needs both: encryption, and no peer that
//! the CA did not admit. A voter checks the certificate of whoever
//! connects; a connecting node checks the voter's against the host it was
//! named by in `--controllers`.
//!
//! Without these keys the listener is plaintext and open, as before: for a
//! private network, or one host.

use super::transport::{BoxRead, BoxWrite};
use crate::config::Controller;
use crate::net::tls::{certificates, TlsFileError, TlsFiles};
use rustls::pki_types::{PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// How long a TLS handshake may take before the connection is dropped
/// (one that never completes must not hold a task forever).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The three PEM files, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerTlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// Both sides of the controller listener's TLS.
pub struct ControllerTls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    /// Each voter's name in `--controllers`, which its certificate must hold.
    names: BTreeMap<u64, ServerName<'static>>,
}

/// A file problem, named by its `controller-` key.
fn controller_key(e: TlsFileError) -> TlsFileError {
    let field = match e.field {
        "tls-cert" => "controller-tls-cert",
        "tls-key" => "controller-tls-key",
        _ => "controller-tls-ca",
    };
    TlsFileError { field, problem: e.problem }
}

impl ControllerTls {
    /// Reads the files; `voters` names the hosts voters' certificates are
    /// checked against.
    pub fn load(files: &ControllerTlsFiles, voters: &[Controller]) -> Result<ControllerTls, TlsFileError> {
        let listener =
            TlsFiles { cert: files.cert.clone(), key: files.key.clone(), client_ca: Some(files.ca.clone()) };
        let acceptor = TlsAcceptor::from(Arc::new(listener.server_config().map_err(controller_key)?));
        let mut roots = RootCertStore::empty();
        for cert in certificates("controller-tls-ca", &files.ca)? {
            roots.add(cert).map_err(|e| TlsFileError {
                field: "controller-tls-ca",
                problem: format!("{}: {e}", files.ca.display()),
            })?;
        }
        let chain = certificates("controller-tls-cert", &files.cert)?;
        let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsFileError {
            field: "controller-tls-key",
            problem: format!("{}: {e}", files.key.display()),
        })?;
        // ring, as the listeners use (net/tls.rs says why).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsFileError { field: "controller-tls-cert", problem: e.to_string() })?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| TlsFileError {
                field: "controller-tls-key",
                problem: format!("{} does not go with {}: {e}", files.key.display(), files.cert.display()),
            })?;
        let mut names = BTreeMap::new();
        for v in voters {
            let host = v.address.host.trim_start_matches('[').trim_end_matches(']').to_string();
            let name = ServerName::try_from(host).map_err(|e| TlsFileError {
                field: "controllers",
                problem: format!(
                    "voter {}'s host {} is no name a certificate can hold: {e}",
                    v.node_id, v.address
                ),
            })?;
            names.insert(v.node_id as u64, name);
        }
        Ok(ControllerTls { acceptor, connector: TlsConnector::from(Arc::new(client)), names })
    }

    /// The handshake as the side that connected to voter `voter`.
    pub async fn connect(&self, voter: u64, stream: TcpStream) -> io::Result<(BoxRead, BoxWrite)> {
        let name = self.names.get(&voter).cloned().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("voter {voter} is not among the controllers"))
        })?;
        let handshake = self.connector.connect(name, stream);
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await.map_err(timed_out)??;
        let (read, write) = tokio::io::split(stream);
        Ok((Box::new(read), Box::new(write)))
    }

    /// The handshake as the voter that accepted.
    pub async fn accept(&self, stream: TcpStream) -> io::Result<(BoxRead, BoxWrite)> {
        let handshake = self.acceptor.accept(stream);
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await.map_err(timed_out)??;
        let (read, write) = tokio::io::split(stream);
        Ok((Box::new(read), Box::new(write)))
    }
}

fn timed_out(_: tokio::time::error::Elapsed) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")
}
