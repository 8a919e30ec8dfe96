//! `idem-node certs` and `idem-node token`: the TLS material and bearer
//! tokens a secure cluster needs, made by the node itself (rcgen on ring; no
//! openssl, no network), for `IDEM_SECURE=1 scripts/cluster.sh start`, the
//! tests, and operators without a PKI of their own.
//!
//! `certs` writes a cluster CA (`ca.pem`, `ca.key`) and, for each node I,
//! `node-I.pem` and `node-I.key`: valid for every `--host` and usable as
//! server and client certificate (nodes present it to each other). Given an
//! existing CA in `--out`, it issues node certificates from it instead, for
//! adding a node or renewing one.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::json;

use crate::auth::digest_of;

/// Make a cluster CA and node certificates (or issue node certificates from
/// the CA already in --out).
#[derive(Debug, Parser)]
#[command(name = "idem-node certs")]
pub struct CertsArgs {
    /// Directory to write `ca.pem`, `ca.key`, `node-I.pem`, `node-I.key` into.
    #[arg(long, env = "IDEM_CERTS_OUT")]
    out: PathBuf,
    /// Node ids to issue certificates for: `3` means 1, 2 and 3; `4-5` means 4 and 5.
    #[arg(long, default_value = "3")]
    nodes: String,
    /// Names and addresses the node certificates are valid for (repeat, or comma-separate).
    #[arg(long = "host", value_delimiter = ',', default_value = "127.0.0.1,localhost")]
    hosts: Vec<String>,
    /// How long the certificates are valid, in days.
    #[arg(long, default_value_t = 825)]
    days: u32,
}

/// Make a bearer token: the token goes to --token-out (or stdout), its entry
/// for the token file (with only the token's SHA-256) to stdout.
#[derive(Debug, Parser)]
#[command(name = "idem-node token")]
pub struct TokenArgs {
    /// The token's name in the file and in logs.
    #[arg(long)]
    name: String,
    /// Everything: every namespace, membership changes, snapshots, metrics.
    #[arg(long)]
    admin: bool,
    /// A grant `NS=PERMS` for one namespace or `NS*=PERMS` for a prefix, PERMS
    /// from read,write,delete (repeat for several), e.g. `payments=read,write`.
    #[arg(long = "grant")]
    grants: Vec<String>,
    /// Write the token here (mode 0600) instead of printing it.
    #[arg(long)]
    token_out: Option<PathBuf>,
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())
}

/// Node ids from `3` (1..=3) or `4-5`.
fn node_ids(spec: &str) -> Result<Vec<u64>, String> {
    let bad = || format!("--nodes takes N or A-B, not {spec:?}");
    let (from, to) = match spec.split_once('-') {
        Some((a, b)) => (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?),
        None => (1, spec.trim().parse().map_err(|_| bad())?),
    };
    if from == 0 || from > to {
        return Err(bad());
    }
    Ok((from..=to).collect())
}

fn validity(params: &mut CertificateParams, days: u32) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let now = rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(now);
    params.not_before = now - std::time::Duration::from_secs(3600);
    params.not_after = now + std::time::Duration::from_secs(u64::from(days) * 86_400);
}

/// The CA in `out`, or a new one written there.
fn ca(out: &Path, days: u32) -> Result<(Certificate, KeyPair), String> {
    let (cert_path, key_path) = (out.join("ca.pem"), out.join("ca.key"));
    if cert_path.exists() {
        let read = |p: &Path| fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()));
        let key = KeyPair::from_pem(&read(&key_path)?).map_err(|e| format!("{}: {e}", key_path.display()))?;
        let params = CertificateParams::from_ca_cert_pem(&read(&cert_path)?)
            .map_err(|e| format!("{}: {e}", cert_path.display()))?;
        // Re-signing the parsed CA gives an issuer with its name and key;
        // certificates it signs chain to the CA file as it is.
        let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
        return Ok((cert, key));
    }
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "idem cluster CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, days.saturating_mul(2));
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    fs::write(&cert_path, cert.pem()).map_err(|e| format!("writing {}: {e}", cert_path.display()))?;
    write_private(&key_path, &key.serialize_pem()).map_err(|e| format!("writing {}: {e}", key_path.display()))?;
    Ok((cert, key))
}

pub fn certs(args: &CertsArgs) -> Result<(), String> {
    let ids = node_ids(&args.nodes)?;
    fs::create_dir_all(&args.out).map_err(|e| format!("creating {}: {e}", args.out.display()))?;
    let (ca_cert, ca_key) = ca(&args.out, args.days)?;
    for id in ids {
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params = CertificateParams::new(args.hosts.clone()).map_err(|e| format!("--host: {e}"))?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, format!("idem node {id}"));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut params, args.days);
        let cert = params.signed_by(&key, &ca_cert, &ca_key).map_err(|e| e.to_string())?;
        let (cert_path, key_path) = (args.out.join(format!("node-{id}.pem")), args.out.join(format!("node-{id}.key")));
        fs::write(&cert_path, cert.pem()).map_err(|e| format!("writing {}: {e}", cert_path.display()))?;
        write_private(&key_path, &key.serialize_pem()).map_err(|e| format!("writing {}: {e}", key_path.display()))?;
        println!("{} {}", cert_path.display(), key_path.display());
    }
    Ok(())
}

/// A grant of `--grant` as the token file writes it.
fn grant(spec: &str) -> Result<serde_json::Value, String> {
    let (scope, perms) = spec.split_once('=').ok_or_else(|| format!("--grant {spec:?} is not NS=PERMS"))?;
    let perms: Vec<&str> = perms.split(',').map(str::trim).collect();
    if let Some(p) = perms.iter().find(|p| !matches!(**p, "read" | "write" | "delete")) {
        return Err(format!("--grant {spec:?}: {p:?} is not one of read, write, delete"));
    }
    Ok(match scope.strip_suffix('*') {
        Some(prefix) => json!({"ns_prefix": prefix, "perms": perms}),
        None => json!({"ns": scope, "perms": perms}),
    })
}

pub fn token(args: &TokenArgs) -> Result<(), String> {
    let grants = args.grants.iter().map(|g| grant(g)).collect::<Result<Vec<_>, _>>()?;
    let secret: [u8; 32] = rand::random();
    let token = format!("idem_{}", hex::encode(secret));
    let entry = json!({
        "name": args.name,
        "sha256": hex::encode(digest_of(&token)),
        "grants": grants,
        "admin": args.admin,
    });
    match &args.token_out {
        Some(path) => write_private(path, &token).map_err(|e| format!("writing {}: {e}", path.display()))?,
        None => eprintln!("{token}"),
    }
    println!("{entry}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ranges_and_grants_parse() {
        assert_eq!(node_ids("3").unwrap(), vec![1, 2, 3]);
        assert_eq!(node_ids("4-5").unwrap(), vec![4, 5]);
        assert!(node_ids("0").is_err() && node_ids("5-4").is_err() && node_ids("x").is_err());
        assert_eq!(grant("payments=read,write").unwrap(), json!({"ns": "payments", "perms": ["read", "write"]}));
        assert_eq!(grant("orders-*=read").unwrap(), json!({"ns_prefix": "orders-", "perms": ["read"]}));
        assert!(grant("payments").is_err() && grant("p=fly").is_err());
    }

    #[test]
    fn issued_certificates_load_as_a_node_identity_and_a_reissue_keeps_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let args = |nodes: &str| CertsArgs {
            out: dir.path().to_owned(),
            nodes: nodes.into(),
            hosts: vec!["127.0.0.1".into(), "localhost".into()],
            days: 30,
        };
        certs(&args("2")).unwrap();
        let ca = fs::read(dir.path().join("ca.pem")).unwrap();
        certs(&args("3-3")).unwrap();
        assert_eq!(fs::read(dir.path().join("ca.pem")).unwrap(), ca, "the CA is reused, not replaced");
        for id in 1..=3 {
            let (cert, key) = (dir.path().join(format!("node-{id}.pem")), dir.path().join(format!("node-{id}.key")));
            crate::tls::Tls::load(&cert, &key, &dir.path().join("ca.pem")).unwrap_or_else(|e| panic!("node {id}: {e}"));
        }
    }
}
