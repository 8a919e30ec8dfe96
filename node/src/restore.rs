//! `idem-node restore`: seed a new node's data directory from a backup that
//! `GET /v1/admin/snapshot` (or `idem snapshot save`) made. Run it for every
//! node of the new cluster with the same backup and `--initial-cluster`, then
//! start the nodes as usual; see [`crate::store::restore`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;

use crate::config::parse_members;
use crate::types::{NodeAddr, NodeId};

#[derive(Debug, Parser)]
#[command(name = "idem-node restore", about = "Seed an empty data directory from a backup")]
pub struct RestoreArgs {
    /// The backup file (`idem snapshot save FILE`).
    #[arg(long, env = "IDEM_RESTORE_FROM")]
    pub from: PathBuf,
    /// The new node's data directory; must be empty or absent.
    #[arg(long, env = "IDEM_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The new node's id.
    #[arg(long, env = "IDEM_ID")]
    pub id: NodeId,
    /// Every member of the new cluster, `1=host:port,2=host:port,...`: the
    /// same on every node restored from this backup.
    #[arg(long, env = "IDEM_INITIAL_CLUSTER")]
    pub initial_cluster: String,
    /// Size of the storage engine's page cache while restoring, in MiB.
    #[arg(long, env = "IDEM_CACHE_MB", default_value_t = 256)]
    pub cache_mb: u64,
}

/// Run the restore; its summary goes to stdout.
pub fn restore(args: &RestoreArgs) -> Result<(), String> {
    let members: BTreeMap<NodeId, NodeAddr> =
        parse_members(&args.initial_cluster)?.into_iter().map(|(id, addr)| (id, NodeAddr { addr })).collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let restored = runtime.block_on(crate::store::restore(
        &args.from,
        &args.data_dir,
        args.id,
        members,
        args.cache_mb * 1024 * 1024,
    ))?;
    println!(
        "restored {} into {}: applied index {} (term {}), replicated clock {} ms; new tokens start above it",
        args.from.display(),
        args.data_dir.display(),
        restored.applied.index,
        restored.applied.leader_id.term,
        restored.clock_ms
    );
    Ok(())
}
