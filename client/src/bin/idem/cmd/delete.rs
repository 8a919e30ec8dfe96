use idem_client::{Client, Error};
use serde_json::json;

use super::Target;
use crate::exit;
use crate::output::Output;

pub async fn run(client: &Client, out: &Output, t: Target) -> Result<u8, Error> {
    client.delete(&t.ns, &t.key).await?;
    out.print(&json!({"deleted": true}), || format!("deleted {}/{}", t.ns, t.key));
    Ok(exit::OK)
}
