//! Secure clusters for tests: a CA, node certificates and a token file made
//! by `idem-node certs` and `idem-node token` at test time, as an operator
//! would make them.
//!
//! Every `TestCluster` is secure when `IDEM_TEST_TLS_DIR` names such a
//! directory (`scripts/test-secure.sh` makes one and runs the suite so,
//! with `IDEM_CA` and `IDEM_TOKEN` set for the clients); a test may also
//! make its own with [`Security::make`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::node_binary;

/// A byte stream to a node, plain or TLS.
pub trait RawConn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> RawConn for T {}

/// Where a secure cluster's material is: `ca.pem`, `node-I.pem`/`.key`,
/// `tokens.json`, and one file per token (`<name>.token`) holding the token.
#[derive(Debug, Clone)]
pub struct Security {
    pub dir: PathBuf,
}

/// Node certificates a made directory holds (ids 1 to this), enough for
/// every test that adds nodes.
pub const NODES: u64 = 5;

impl Security {
    /// The directory `IDEM_TEST_TLS_DIR` names, if set.
    pub fn from_env() -> Option<Security> {
        std::env::var_os("IDEM_TEST_TLS_DIR").map(|d| Security { dir: PathBuf::from(d) })
    }

    /// Make a CA, certificates for nodes 1..=[`NODES`] and the tokens
    /// `(name, grants)` (a grant as `idem-node token --grant` takes it; an
    /// empty list makes an admin token) in `dir`.
    pub fn make(dir: &Path, tokens: &[(&str, &[&str])]) -> Security {
        let run = |args: &[&str]| {
            let out = Command::new(node_binary()).args(args).output().expect("running idem-node");
            assert!(out.status.success(), "idem-node {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).expect("utf-8")
        };
        let out = dir.to_str().expect("utf-8 path");
        run(&["certs", "--out", out, "--nodes", &NODES.to_string()]);
        let mut entries = Vec::new();
        for (name, grants) in tokens {
            let token_file = dir.join(format!("{name}.token"));
            let mut args = vec!["token", "--name", name, "--token-out", token_file.to_str().expect("utf-8 path")];
            if grants.is_empty() {
                args.push("--admin");
            }
            for g in *grants {
                args.extend(["--grant", g]);
            }
            entries.push(run(&args).trim().to_owned());
        }
        std::fs::write(dir.join("tokens.json"), format!(r#"{{"tokens":[{}]}}"#, entries.join(","))).expect("write");
        Security { dir: dir.to_owned() }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A TLS client connection over `tcp` that trusts the cluster's CA.
    pub async fn wrap(&self, tcp: TcpStream) -> tokio_rustls::client::TlsStream<TcpStream> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(self.ca()).expect("the CA file") {
            roots.add(cert.expect("a CA certificate")).expect("a usable CA");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from("127.0.0.1").expect("a server name");
        TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("a TLS handshake")
    }

    /// The token named `name`.
    pub fn token(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.token"))).expect("a made token")
    }

    /// The flags node `id` runs with.
    pub fn node_args(&self, id: u64) -> Vec<String> {
        let path = |f: String| self.dir.join(f).to_string_lossy().into_owned();
        vec![
            "--tls-cert".into(),
            path(format!("node-{id}.pem")),
            "--tls-key".into(),
            path(format!("node-{id}.key")),
            "--tls-ca".into(),
            path("ca.pem".into()),
            "--auth-file".into(),
            path("tokens.json".into()),
        ]
    }
}
