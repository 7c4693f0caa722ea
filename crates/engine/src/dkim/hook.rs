//! `onKeyChange`: the command run after keys became `Active` or were withdrawn, e.g. to
//! re-export the keys and reload the MTA.

use std::path::Path;

use mailzone_records::DkimManagement;

use crate::{EngineError, LoadedConfig};

use super::*;

/// How long an `onKeyChange` command may run before it is killed and reported as failed.
pub const ON_KEY_CHANGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs the domain's `onKeyChange` command once per change, without a shell, with the
/// change in its environment:
/// `MAILZONE_DKIM_DOMAIN`, `MAILZONE_DKIM_SELECTOR`, `MAILZONE_DKIM_ALGORITHM`,
/// `MAILZONE_DKIM_STAGE` (`Active` or `Retired`), `MAILZONE_DKIM_REPLACES` (space-separated
/// selectors now `Retiring`, for `Active`), and `MAILZONE_CONFIG` / `MAILZONE_STATE_DIR`
/// (so that `mailzone dkim export` in the command reads the same keys). Stdin is empty,
/// stdout is discarded, stderr is kept for the error; after [`ON_KEY_CHANGE_TIMEOUT`] the
/// command is killed. A failure is returned as [`EngineError::OnKeyChange`]; the key
/// changes themselves stand (they are stored before the command runs).
pub(crate) async fn run_on_key_change(
    loaded: &LoadedConfig,
    state_dir: &Path,
    domain: &mailzone_records::Domain,
    changes: &[KeyChange],
) -> Result<(), EngineError> {
    let DkimManagement::Automatic { on_key_change, .. } = &domain.dkim_management else {
        return Ok(());
    };
    let Some((program, args)) = on_key_change.split_first() else {
        return Ok(());
    };
    let mut failures = Vec::new();
    for change in changes {
        let mut command = std::process::Command::new(program);
        command
            .args(args)
            .env("MAILZONE_DKIM_DOMAIN", domain.name.as_str())
            .env("MAILZONE_DKIM_SELECTOR", &change.selector)
            .env("MAILZONE_DKIM_ALGORITHM", change.algorithm.as_str())
            .env("MAILZONE_DKIM_STAGE", change.stage.as_str())
            .env("MAILZONE_DKIM_REPLACES", change.replaces.join(" "))
            .env("MAILZONE_CONFIG", &loaded.path)
            .env("MAILZONE_STATE_DIR", state_dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let what = format!(
            "onKeyChange `{program}` for {} ({} now {})",
            domain.name,
            change.selector,
            change.stage.as_str()
        );
        let outcome =
            tokio::task::spawn_blocking(move || run_command(command, ON_KEY_CHANGE_TIMEOUT))
                .await
                .unwrap_or_else(|e| Err(format!("could not be run: {e}")));
        match outcome {
            Ok(()) => tracing::info!(domain = domain.name.as_str(), "{what}: done"),
            Err(reason) => {
                tracing::warn!(domain = domain.name.as_str(), "{what}: {reason}");
                failures.push(format!("{what} {reason}"));
            }
        }
    }
    match failures.len() {
        0 => Ok(()),
        n => Err(EngineError::OnKeyChange(format!(
            "{}{}; the key change stands",
            failures[0],
            if n > 1 {
                format!(" (and {} more onKeyChange failures)", n - 1)
            } else {
                String::new()
            }
        ))),
    }
}

/// Runs `command` to its end or until `timeout` (then kills it); `Err` says why it failed,
/// with the last line it wrote to stderr.
pub(crate) fn run_command(
    mut command: std::process::Command,
    timeout: std::time::Duration,
) -> Result<(), String> {
    use std::io::Read as _;
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot be started: {e}"))?;
    // Read stderr beside the wait, so a chatty command never blocks on a full pipe.
    let (sender, stderr_text) = std::sync::mpsc::channel();
    if let Some(mut stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf);
            let _ = sender.send(buf);
        });
    }
    let deadline = crate::clock::deadline(timeout);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "did not finish within {}s and was killed",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(e) => return Err(format!("could not be waited for: {e}")),
        }
    };
    if status.success() {
        return Ok(());
    }
    // A child it left running may hold stderr open: do not wait for it long.
    let stderr = stderr_text
        .recv_timeout(std::time::Duration::from_secs(1))
        .unwrap_or_default();
    let stderr = String::from_utf8_lossy(&stderr);
    Err(match stderr.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(line) => format!(
            "{status}: {}",
            line.trim().chars().take(300).collect::<String>()
        ),
        None => status.to_string(),
    })
}
