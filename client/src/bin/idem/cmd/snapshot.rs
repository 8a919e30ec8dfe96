//! `idem snapshot save FILE`: a backup of the cluster, as `etcdctl snapshot save`.

use std::io::Write;
use std::path::{Path, PathBuf};

use idem_client::backup;
use idem_client::{Client, Error};
use serde::Serialize;

use crate::exit;
use crate::output::Output;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Save a consistent backup from the leader to FILE (admin token when
    /// tokens are on); `idem-node restore --from FILE` seeds a new cluster.
    Save { file: PathBuf },
}

#[derive(Serialize)]
struct Saved {
    file: String,
    bytes: u64,
    sha256: String,
}

pub async fn run(client: &Client, out: &Output, c: Command) -> Result<u8, Error> {
    let Command::Save { file } = c;
    let bytes = client.backup().await?;
    let header = backup::Header::read_from(&mut &bytes[..])
        .map_err(|e| Error::Unexpected { status: 200, message: e.to_string() })?;
    write_durably(&file, &bytes)
        .map_err(|e| Error::BadRequest(format!("cannot write the backup to {}: {e}", file.display())))?;
    let saved = Saved {
        file: file.display().to_string(),
        bytes: bytes.len() as u64,
        sha256: header.sha256.iter().map(|b| format!("{b:02x}")).collect(),
    };
    out.print(&saved, || format!("saved {} ({} bytes, sha256 {})", saved.file, saved.bytes, saved.sha256));
    Ok(exit::OK)
}

/// Write through a temporary file renamed into place once synced, so FILE
/// is either the whole backup or not there.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("part");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
