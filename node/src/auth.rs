//! Who may do what: the bearer tokens of `--auth-file` (API.md, Security).
//!
//! The file holds only SHA-256 digests of tokens, so a leaked file grants
//! nothing. A presented token is hashed and compared with every digest in
//! constant time, so timing says nothing about how close a guess was. The
//! file is reloaded on SIGHUP; a reload that fails to parse keeps the tokens
//! in force and says why. Knows nothing of HTTP: the API asks [`Caller`]s
//! whether they may act, and maps refusals to 401/403.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A SHA-256 digest of a bearer token: what the file stores, and what a
/// follower forwards to the leader to name a caller.
pub type TokenDigest = [u8; 32];

/// What a namespace grant allows (admin allows everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Perm {
    /// GET of a record, and listing.
    Read,
    /// Claim, checkpoint, complete, release.
    Write,
    /// DELETE of a record.
    Delete,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBody {
    tokens: Vec<FileToken>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToken {
    name: String,
    sha256: String,
    #[serde(default)]
    grants: Vec<FileGrant>,
    #[serde(default)]
    admin: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGrant {
    ns: Option<String>,
    ns_prefix: Option<String>,
    perms: Vec<Perm>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Exact(String),
    Prefix(String),
}

#[derive(Debug, Clone)]
struct Grant {
    scope: Scope,
    perms: Vec<Perm>,
}

/// One token's name and rights.
#[derive(Debug)]
pub struct Identity {
    pub name: String,
    admin: bool,
    grants: Vec<Grant>,
    digest: TokenDigest,
}

impl Identity {
    pub fn is_admin(&self) -> bool {
        self.admin
    }

    /// Whether this token may do `perm` in namespace `ns`.
    pub fn allows(&self, ns: &str, perm: Perm) -> bool {
        self.admin
            || self.grants.iter().any(|g| {
                let covers = match &g.scope {
                    Scope::Exact(n) => n == ns,
                    Scope::Prefix(p) => ns.starts_with(p.as_str()),
                };
                covers && g.perms.contains(&perm)
            })
    }

    pub fn digest(&self) -> TokenDigest {
        self.digest
    }
}

/// The parsed file: every token, in file order.
struct Table {
    tokens: Vec<Arc<Identity>>,
}

fn parse_digest(hex_text: &str) -> Option<TokenDigest> {
    let bytes = hex::decode(hex_text.trim()).ok()?;
    bytes.try_into().ok()
}

fn parse(text: &str) -> Result<Table, String> {
    let body: FileBody = serde_json::from_str(text).map_err(|e| format!("not a token file: {e}"))?;
    let (mut names, mut digests) = (BTreeSet::new(), BTreeSet::new());
    let mut tokens = Vec::with_capacity(body.tokens.len());
    for t in body.tokens {
        let digest = parse_digest(&t.sha256)
            .ok_or_else(|| format!("token {:?}: sha256 must be 64 hex digits (the token's SHA-256)", t.name))?;
        if !names.insert(t.name.clone()) {
            return Err(format!("token name {:?} appears twice", t.name));
        }
        if !digests.insert(digest) {
            return Err(format!("token {:?}: the same sha256 as another token", t.name));
        }
        let mut grants = Vec::with_capacity(t.grants.len());
        for g in t.grants {
            let scope = match (g.ns, g.ns_prefix) {
                (Some(ns), None) => Scope::Exact(ns),
                (None, Some(prefix)) => Scope::Prefix(prefix),
                _ => return Err(format!("token {:?}: each grant names exactly one of ns, ns_prefix", t.name)),
            };
            grants.push(Grant { scope, perms: g.perms });
        }
        tokens.push(Arc::new(Identity { name: t.name, admin: t.admin, grants, digest }));
    }
    Ok(Table { tokens })
}

/// The tokens in force, reloadable.
pub struct Tokens {
    path: PathBuf,
    table: RwLock<Arc<Table>>,
}

/// The SHA-256 of a presented token.
pub fn digest_of(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    /// Read and parse the token file at `path`.
    pub fn load(path: &Path) -> Result<Tokens, String> {
        let table = read(path)?;
        Ok(Tokens { path: path.to_owned(), table: RwLock::new(Arc::new(table)) })
    }

    /// Read the file again; on failure the tokens in force stay. Returns how
    /// many tokens are now in force.
    pub fn reload(&self) -> Result<usize, String> {
        let table = read(&self.path)?;
        let n = table.tokens.len();
        *self.table.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(table);
        Ok(n)
    }

    /// The identity whose digest is `digest`, compared with every entry in
    /// constant time (no early exit), so timing reveals nothing.
    pub fn by_digest(&self, digest: &TokenDigest) -> Option<Arc<Identity>> {
        let table = self.table.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut found = None;
        for t in &table.tokens {
            if bool::from(t.digest.ct_eq(digest)) {
                found = Some(t.clone());
            }
        }
        found
    }

    /// The identity a presented bearer token proves, if any.
    pub fn authenticate(&self, token: &str) -> Option<Arc<Identity>> {
        self.by_digest(&digest_of(token))
    }
}

fn read(path: &Path) -> Result<Table, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Who is calling, as far as the API is concerned.
#[derive(Debug, Clone)]
pub enum Caller {
    /// Tokens are off: everyone may do everything.
    Open,
    Token(Arc<Identity>),
}

impl Caller {
    pub fn allows(&self, ns: &str, perm: Perm) -> bool {
        match self {
            Caller::Open => true,
            Caller::Token(id) => id.allows(ns, perm),
        }
    }

    pub fn is_admin(&self) -> bool {
        match self {
            Caller::Open => true,
            Caller::Token(id) => id.is_admin(),
        }
    }

    /// What a follower sends the leader to name this caller.
    pub fn digest(&self) -> Option<TokenDigest> {
        match self {
            Caller::Open => None,
            Caller::Token(id) => Some(id.digest()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Caller::Open => "anyone",
            Caller::Token(id) => &id.name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(tokens: &str) -> String {
        format!(r#"{{"tokens":[{tokens}]}}"#)
    }

    fn entry(name: &str, token: &str, rest: &str) -> String {
        format!(r#"{{"name":"{name}","sha256":"{}"{rest}}}"#, hex::encode(digest_of(token)))
    }

    #[test]
    fn grants_cover_exact_namespaces_and_prefixes_with_their_perms_only() {
        let text = file(&[
            entry(
                "pay",
                "t-pay",
                r#","grants":[{"ns":"payments","perms":["read","write"]},{"ns_prefix":"orders-","perms":["read"]}]"#,
            ),
            entry("ops", "t-ops", r#","admin":true"#),
        ]
        .join(","));
        let table = parse(&text).unwrap();
        let tokens = Tokens { path: PathBuf::new(), table: RwLock::new(Arc::new(table)) };
        let pay = tokens.authenticate("t-pay").expect("known token");
        assert_eq!(pay.name, "pay");
        assert!(pay.allows("payments", Perm::Write) && pay.allows("payments", Perm::Read));
        assert!(!pay.allows("payments", Perm::Delete), "no delete grant");
        assert!(!pay.allows("payments-eu", Perm::Read), "ns is exact");
        assert!(pay.allows("orders-eu", Perm::Read) && !pay.allows("orders-eu", Perm::Write));
        assert!(!pay.allows("orders", Perm::Read), "the prefix is orders-");
        assert!(!pay.is_admin());
        let ops = tokens.authenticate("t-ops").unwrap();
        assert!(ops.is_admin() && ops.allows("anything", Perm::Delete));
        assert!(tokens.authenticate("t-pa").is_none() && tokens.authenticate("").is_none());
        assert_eq!(tokens.by_digest(&pay.digest()).unwrap().name, "pay");
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        for (text, why) in [
            ("{", "not a token file"),
            (&file(r#"{"name":"a","sha256":"abc"}"#), "64 hex digits"),
            (&file(&[entry("a", "x", ""), entry("a", "y", "")].join(",")), "appears twice"),
            (&file(&[entry("a", "x", ""), entry("b", "x", "")].join(",")), "same sha256"),
            (&file(&entry("a", "x", r#","grants":[{"perms":["read"]}]"#)), "exactly one of"),
            (&file(&entry("a", "x", r#","grants":[{"ns":"n","perms":["fly"]}]"#)), "not a token file"),
            (&file(&entry("a", "x", r#","extra":1"#)), "not a token file"),
        ] {
            let err = parse(text).err().unwrap_or_else(|| panic!("{text} parsed"));
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn a_reload_that_fails_keeps_the_tokens_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        std::fs::write(&path, file(&entry("a", "t-a", r#","admin":true"#))).unwrap();
        let tokens = Tokens::load(&path).unwrap();
        std::fs::write(&path, "{ broken").unwrap();
        assert!(tokens.reload().is_err());
        assert!(tokens.authenticate("t-a").is_some(), "the old file is still in force");
        std::fs::write(&path, file(&entry("b", "t-b", ""))).unwrap();
        assert_eq!(tokens.reload(), Ok(1));
        assert!(tokens.authenticate("t-a").is_none() && tokens.authenticate("t-b").is_some());
    }
}
