//! A pizza checkout behind [`IdempotencyLayer`]: the handler charges a fake
//! payment provider, checkpointing around the charge so that a takeover after
//! a crash resumes instead of charging twice.
//!
//! ```sh
//! scripts/cluster.sh start
//! cargo run -p idem-client --features layer --example checkout
//! curl -si -XPOST localhost:8080/orders/o1/checkout -H 'Idempotency-Key: k1' \
//!      -H 'content-type: application/json' -d '{"pizza":"margherita","amount":1200}'
//! curl -s localhost:8080/charges          # charges per order, for the tests
//! ```
//!
//! Environment: `IDEM_ENDPOINTS` (comma-separated), `CHECKOUT_LISTEN`
//! (default `127.0.0.1:8080`), `CHECKOUT_CHARGE_DELAY` (how long the provider
//! takes, default `500ms`), `CHECKOUT_LEASE` (default `5s`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use idem_client::{Client, Ctx, IdempotencyLayer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The fake payment provider: every charge is counted per order, which is
/// what the end-to-end test checks ("exactly one charge per order").
#[derive(Default)]
struct Provider {
    charges: Mutex<BTreeMap<String, Vec<String>>>,
    delay: Duration,
}

impl Provider {
    async fn charge(&self, order: &str, amount: u64) -> String {
        tokio::time::sleep(self.delay).await;
        let mut charges = self.charges.lock().unwrap();
        let list = charges.entry(order.to_owned()).or_default();
        let id = format!("ch_{order}_{}_{amount}", list.len() + 1);
        list.push(id.clone());
        id
    }

    /// What a real provider offers as "retrieve by reference": lets a
    /// resumed attempt learn whether the abandoned one's charge went through.
    fn find(&self, order: &str) -> Option<String> {
        self.charges.lock().unwrap().get(order).and_then(|l| l.first().cloned())
    }
}

#[derive(Serialize, Deserialize)]
struct Order {
    pizza: String,
    amount: u64,
}

async fn checkout(
    State(psp): State<Arc<Provider>>,
    Path(order): Path<String>,
    Extension(ctx): Extension<Ctx>,
    Json(req): Json<Order>,
) -> Result<(StatusCode, Json<Value>), (StatusCode, String)> {
    let unavailable = |e: idem_client::Error| (StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    let resumed = ctx.resume_from().map(|c| (c.stage.as_str(), c.data.clone()));
    // A charge an abandoned attempt made, learnt from its checkpoint or, if
    // it died mid-charge, from the provider.
    let earlier = match resumed {
        Some(("charged", data)) => data["charge_id"].as_str().map(str::to_owned),
        Some(("charging", _)) => psp.find(&order),
        _ => None,
    };
    let charge_id = match earlier {
        Some(id) => id,
        None => {
            ctx.checkpoint("charging", json!({"order": order})).await.map_err(unavailable)?;
            let id = psp.charge(&order, req.amount).await;
            ctx.checkpoint("charged", json!({"charge_id": id})).await.map_err(unavailable)?;
            id
        }
    };
    let body = json!({"order": order, "pizza": req.pizza, "amount": req.amount, "charge_id": charge_id});
    Ok((StatusCode::CREATED, Json(body)))
}

async fn charges(State(psp): State<Arc<Provider>>) -> Json<BTreeMap<String, Vec<String>>> {
    Json(psp.charges.lock().unwrap().clone())
}

fn env_duration(name: &str, default: &str) -> Duration {
    let text = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    humantime::parse_duration(&text).unwrap_or_else(|e| panic!("{name}={text}: {e}"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoints = std::env::var("IDEM_ENDPOINTS").unwrap_or_else(|_| idem_client::proto::LOCAL_ENDPOINTS.into());
    let listen = std::env::var("CHECKOUT_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let client = Client::new(endpoints.split(','))?;
    let psp = Arc::new(Provider { delay: env_duration("CHECKOUT_CHARGE_DELAY", "500ms"), ..Default::default() });
    let layer = IdempotencyLayer::new(client, "checkout").required(true).lease(env_duration("CHECKOUT_LEASE", "5s"));
    let app = Router::new()
        .route("/orders/{order}/checkout", post(checkout).layer(layer))
        .route("/charges", get(charges))
        .with_state(psp);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("checkout listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
