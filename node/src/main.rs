//! `idem-node`: parse flags, set up logging, run until SIGTERM or Ctrl-C.
//! `idem-node certs` and `idem-node token` make TLS material and tokens;
//! `idem-node restore` seeds a new node from a backup.

use std::process::ExitCode;

use clap::Parser;
use idem_node::certs::{certs, token, CertsArgs, TokenArgs};
use idem_node::config::Config;
use idem_node::restore::{restore, RestoreArgs};
use tokio::signal::unix::{signal, SignalKind};

/// See the workspace manifest for why the node does not use the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn shutdown_signal() {
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutdown requested");
}

fn node() -> anyhow::Result<()> {
    let config = Config::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = config.worker_threads {
        runtime.worker_threads(n.into());
    }
    let runtime = runtime.enable_all().build()?;
    let result = runtime.block_on(async {
        idem_node::telemetry::init_logging(config.log_format, &config.log);
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        idem_node::run(config, listener, shutdown_signal()).await?;
        Ok(())
    });
    // Waits for blocking tasks (a snapshot being built or installed) to end.
    let stopping = std::time::Instant::now();
    drop(runtime);
    tracing::info!(runtime_took_ms = stopping.elapsed().as_millis() as u64, "stopped");
    result
}

/// A one-shot command's result as an exit status, its error on stderr.
fn one_shot(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("idem-node: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    match args.nth(1).as_ref().and_then(|a| a.to_str()) {
        Some("certs") => one_shot(certs(&CertsArgs::parse_from(std::env::args_os().skip(1)))),
        Some("token") => one_shot(token(&TokenArgs::parse_from(std::env::args_os().skip(1)))),
        Some("restore") => one_shot(restore(&RestoreArgs::parse_from(std::env::args_os().skip(1)))),
        _ => match node() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("idem-node: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
