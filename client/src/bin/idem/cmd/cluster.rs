use idem_client::proto::ClusterStatus;
use idem_client::{Client, Error};

use crate::exit;
use crate::output::Output;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Leader, term, indexes and members, as the answering node sees them.
    Status,
    /// Add a started node as a learner (it replicates but does not vote).
    AddLearner {
        id: u64,
        /// Its advertised host:port.
        addr: String,
    },
    /// Set the voting members, e.g. `1,2,3,4`.
    Voters {
        #[arg(value_delimiter = ',', required = true)]
        ids: Vec<u64>,
    },
}

pub async fn run(client: &Client, out: &Output, c: Command) -> Result<u8, Error> {
    let status = match c {
        Command::Status => client.cluster_status().await?,
        Command::AddLearner { id, addr } => client.add_learner(id, &addr).await?,
        Command::Voters { ids } => client.change_voters(ids).await?,
    };
    out.print(&status, || summary(&status));
    Ok(exit::OK)
}

fn summary(s: &ClusterStatus) -> String {
    let leader = s.leader_id.map_or("none".to_owned(), |l| l.to_string());
    let mut text = format!(
        "node {} leader {leader} term {} committed {:?} applied {:?}",
        s.node_id, s.term, s.committed_index, s.applied_index
    );
    for m in &s.members {
        text.push_str(&format!("\n  {} {} {}", m.id, m.addr, if m.voter { "voter" } else { "learner" }));
    }
    text
}
