//! The backup file: what `GET /v1/admin/snapshot` streams, `idem snapshot
//! save` keeps and `idem-node restore` reads. A fixed header (magic, the
//! length and SHA-256 of what follows) before a node's snapshot, so a backup
//! that was cut short or damaged is refused before anything is restored from
//! it, as `etcdctl snapshot restore` checks its hash.
//!
//! ```text
//! b"IDEMBAK1" | length: u64 LE | sha256: [u8; 32] | snapshot (length bytes)
//! ```

use std::fmt;
use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// The first bytes of every backup file; the digit is the format's version.
pub const MAGIC: &[u8; 8] = b"IDEMBAK1";
/// Magic, length and digest.
pub const HEADER_LEN: usize = 8 + 8 + 32;
/// The media type of a backup stream.
pub const CONTENT_TYPE: &str = "application/vnd.idem.backup";

/// What the header says of the snapshot that follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub len: u64,
    pub sha256: [u8; 32],
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(MAGIC);
        out[8..16].copy_from_slice(&self.len.to_le_bytes());
        out[16..].copy_from_slice(&self.sha256);
        out
    }

    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Result<Header, BackupError> {
        if &bytes[..8] != MAGIC {
            return Err(BackupError::NotABackup);
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&bytes[8..16]);
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&bytes[16..]);
        Ok(Header { len: u64::from_le_bytes(len), sha256 })
    }

    /// Read the header from the start of `input`.
    pub fn read_from(input: &mut impl Read) -> Result<Header, BackupError> {
        let mut bytes = [0u8; HEADER_LEN];
        input.read_exact(&mut bytes).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => BackupError::NotABackup,
            _ => BackupError::Io(e),
        })?;
        Header::decode(&bytes)
    }
}

/// Why a backup was refused.
#[derive(Debug)]
pub enum BackupError {
    /// The file does not start with [`MAGIC`].
    NotABackup,
    /// Fewer or more bytes than the header announces.
    Length {
        expected: u64,
        found: u64,
    },
    /// The bytes are all there but are not the ones that were saved.
    Checksum,
    Io(io::Error),
}

impl fmt::Display for BackupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackupError::NotABackup => write!(f, "not an idem backup (no IDEMBAK1 header)"),
            BackupError::Length { expected, found } => {
                write!(
                    f,
                    "the backup is truncated or has trailing bytes: {found} snapshot bytes, header says {expected}"
                )
            }
            BackupError::Checksum => write!(f, "the backup is corrupt: its SHA-256 does not match its header"),
            BackupError::Io(e) => write!(f, "reading the backup: {e}"),
        }
    }
}

impl std::error::Error for BackupError {}

impl From<io::Error> for BackupError {
    fn from(e: io::Error) -> Self {
        BackupError::Io(e)
    }
}

/// Hashes a snapshot as it streams by and checks it against a header at the end.
#[derive(Default)]
pub struct Check {
    hasher: Sha256,
    len: u64,
}

impl Check {
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// The header these bytes deserve.
    pub fn header(self) -> Header {
        Header { len: self.len, sha256: self.hasher.finalize().into() }
    }

    /// Whether the bytes seen are exactly those `expected` describes.
    pub fn verify(self, expected: &Header) -> Result<(), BackupError> {
        let found = self.header();
        if found.len != expected.len {
            return Err(BackupError::Length { expected: expected.len, found: found.len });
        }
        if found.sha256 != expected.sha256 {
            return Err(BackupError::Checksum);
        }
        Ok(())
    }
}

/// Hash `input` (a snapshot, without header) to its end.
fn check_of(input: &mut impl Read) -> io::Result<Check> {
    let mut check = Check::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match input.read(&mut buf)? {
            0 => return Ok(check),
            n => check.update(&buf[..n]),
        }
    }
}

/// Read `input` (a snapshot, without header) to its end and return its header.
pub fn header_of(input: &mut impl Read) -> io::Result<Header> {
    Ok(check_of(input)?.header())
}

/// Check a whole backup read from `input`: header, length and digest.
pub fn verify(input: &mut impl Read) -> Result<Header, BackupError> {
    let header = Header::read_from(input)?;
    check_of(input)?.verify(&header)?;
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(snapshot: &[u8]) -> Vec<u8> {
        let mut out = header_of(&mut &snapshot[..]).unwrap().encode().to_vec();
        out.extend_from_slice(snapshot);
        out
    }

    #[test]
    fn a_whole_backup_verifies() {
        let file = backup(b"snapshot bytes");
        let header = verify(&mut &file[..]).unwrap();
        assert_eq!(header.len, 14);
    }

    #[test]
    fn truncated_corrupt_and_foreign_files_are_refused() {
        let file = backup(b"snapshot bytes");
        assert!(matches!(verify(&mut &file[..file.len() - 1]), Err(BackupError::Length { expected: 14, found: 13 })));
        let mut flipped = file.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(verify(&mut &flipped[..]), Err(BackupError::Checksum)));
        assert!(matches!(verify(&mut &b"{\"not\":\"a backup\"}"[..]), Err(BackupError::NotABackup)));
        assert!(matches!(verify(&mut &file[..10]), Err(BackupError::NotABackup)));
    }
}
