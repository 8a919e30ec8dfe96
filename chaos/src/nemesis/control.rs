//! The hands of the nemesis: node processes and the network between them are
//! driven through `scripts/chaos/ctl.sh`, which owns the network namespaces,
//! pids and iptables rules. Keeping that in one script means the same commands
//! work by hand when reproducing a failure.

use std::path::PathBuf;

use tokio::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("could not run {script}: {source}")]
    Spawn { script: String, source: std::io::Error },
    #[error("`ctl.sh {args}` failed ({status}): {stderr}")]
    Failed { args: String, status: std::process::ExitStatus, stderr: String },
}

/// `ctl.sh` and the commands it understands.
#[derive(Debug, Clone)]
pub struct Control {
    script: PathBuf,
}

impl Control {
    pub fn new(script: PathBuf) -> Control {
        Control { script }
    }

    async fn ctl(&self, args: &[String]) -> Result<(), ControlError> {
        let out = Command::new("bash")
            .arg(&self.script)
            .args(args)
            .output()
            .await
            .map_err(|source| ControlError::Spawn { script: self.script.display().to_string(), source })?;
        if out.status.success() {
            return Ok(());
        }
        Err(ControlError::Failed {
            args: args.join(" "),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }

    async fn on_node(&self, verb: &str, node: u32) -> Result<(), ControlError> {
        self.ctl(&[verb.to_owned(), node.to_string()]).await
    }

    /// SIGKILL: no clean shutdown, whatever was not fsynced is lost.
    pub async fn kill(&self, node: u32) -> Result<(), ControlError> {
        self.on_node("kill", node).await
    }

    /// Start the node again on its data; a no-op when it runs.
    pub async fn start(&self, node: u32) -> Result<(), ControlError> {
        self.on_node("start", node).await
    }

    /// SIGSTOP: the node freezes mid-whatever, timers and all.
    pub async fn pause(&self, node: u32) -> Result<(), ControlError> {
        self.on_node("pause", node).await
    }

    /// SIGCONT.
    pub async fn resume(&self, node: u32) -> Result<(), ControlError> {
        self.on_node("resume", node).await
    }

    /// Drop all traffic between nodes `a` and `b`, both ways; clients still reach both.
    pub async fn cut(&self, a: u32, b: u32) -> Result<(), ControlError> {
        self.ctl(&["cut".to_owned(), a.to_string(), b.to_string()]).await
    }

    /// Remove every cut.
    pub async fn heal_network(&self) -> Result<(), ControlError> {
        self.ctl(&["heal".to_owned()]).await
    }
}
