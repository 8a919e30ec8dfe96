//! `idem-node`: parse flags, set up logging, run until SIGTERM or Ctrl-C.

use clap::Parser;
use idem_node::config::Config;
use tokio::signal::unix::{signal, SignalKind};

async fn shutdown_signal() {
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutdown requested");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    idem_node::telemetry::init_logging(config.log_format, &config.log);
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    idem_node::run(config, listener, shutdown_signal()).await?;
    Ok(())
}
