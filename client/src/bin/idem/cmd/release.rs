use idem_client::{Client, Error};
use serde_json::json;

use super::Held;
use crate::exit;
use crate::output::Output;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    held: Held,
}

pub async fn run(client: &Client, out: &Output, a: Args) -> Result<u8, Error> {
    client.release(&a.held.target.ns, &a.held.target.key, a.held.token).await?;
    out.print(&json!({"released": true}), || format!("released {}/{}", a.held.target.ns, a.held.target.key));
    Ok(exit::OK)
}
