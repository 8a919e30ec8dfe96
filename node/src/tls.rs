//! TLS on the node's port, with rustls and ring (the one crypto provider of
//! the whole tree), from the PEM files of `--tls-cert`, `--tls-key` and
//! `--tls-ca`.
//!
//! One port serves clients and peers, so the server asks every connection for
//! a certificate but does not require one: clients need none, and a peer's is
//! verified against the cluster CA. The API then lets only connections with a
//! verified certificate reach Raft RPC and forwarded requests
//! ([`PeerCert`]). Towards its peers a node presents its own certificate and
//! trusts only the cluster CA, over `https` always: there is no fallback to
//! clear text.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Whether the connection a request came on presented a certificate signed
/// by the cluster CA: the mark of a peer node. Set on every request by the
/// server loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCert(pub bool);

/// The node's TLS material, loaded and checked at start.
pub struct Tls {
    pub server: Arc<ServerConfig>,
    /// For connections to peers: this node's certificate, the CA as the only root.
    pub client: ClientConfig,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("reading certificates from {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    Ok(certs)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("reading a private key from {}: {e}", path.display()))
}

impl Tls {
    /// Load the node's certificate chain and key and the cluster CA.
    pub fn load(cert: &Path, key_path: &Path, ca: &Path) -> Result<Tls, String> {
        let (chain, key) = (certs(cert)?, key(key_path)?);
        let mut roots = RootCertStore::empty();
        for ca_cert in certs(ca)? {
            roots.add(ca_cert).map_err(|e| format!("{} is not a usable CA certificate: {e}", ca.display()))?;
        }
        let roots = Arc::new(roots);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| format!("client certificate verifier: {e}"))?;
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| format!("{} and {} do not make a server identity: {e}", cert.display(), key_path.display()))?;
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("{} and {} do not make a client identity: {e}", cert.display(), key_path.display()))?;
        Ok(Tls { server: Arc::new(server), client })
    }
}
