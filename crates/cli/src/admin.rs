//! `mailzone admin`: the web UI's local admin account, managed on the state database
//! directly (like `mailzone token`), so access can be set up or recovered without a
//! running service.

use std::io::{BufRead as _, IsTerminal as _};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use mailzone_engine::clock;
use mailzone_server::ui::session::hash_password;
use zeroize::Zeroizing;

use crate::args::StoreArgs;

/// Shorter passwords are refused: the UI has no second factor, and OWASP asks for at
/// least 15 characters then; 12 is the floor we enforce, the hint asks for more.
const MIN_PASSWORD_CHARS: usize = 12;

#[derive(Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Set the password of the web UI's `admin` account (asked twice on a terminal, or
    /// read from the first line of stdin). Only an Argon2id hash is stored; the admin's
    /// open sessions end.
    SetPassword(SetPasswordArgs),
}

#[derive(Args)]
struct SetPasswordArgs {
    /// Read the password from the first line of stdin even on a terminal (for scripts).
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(args: AdminArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AdminCommand::SetPassword(args) => set_password(args).await,
    }
}

async fn set_password(args: SetPasswordArgs) -> anyhow::Result<ExitCode> {
    let password = if args.password_stdin || !std::io::stdin().is_terminal() {
        read_stdin_line()?
    } else {
        ask_twice()?
    };
    if password.chars().count() < MIN_PASSWORD_CHARS {
        anyhow::bail!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters (a passphrase of \
             several words is best)"
        );
    }
    let hash = hash_password(&password).map_err(anyhow::Error::msg)?;
    let store = args.store.open().await?;
    store
        .set_admin_password_hash(&hash, clock::unix_now())
        .await?;
    let ended = store.delete_web_sessions_of("admin").await?;
    store.close().await;
    if !crate::quiet() {
        eprintln!(
            "mailzone: admin password set; sign in at /ui/ of `mailzone serve`{}",
            if ended > 0 {
                format!(" ({ended} open admin session(s) ended)")
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The first line of stdin, without its line ending.
fn read_stdin_line() -> anyhow::Result<Zeroizing<String>> {
    let mut line = Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line)?;
    let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string());
    if trimmed.is_empty() {
        anyhow::bail!("no password on stdin (give it on the first line)");
    }
    Ok(trimmed)
}

/// The password typed twice without echo.
fn ask_twice() -> anyhow::Result<Zeroizing<String>> {
    let first = Zeroizing::new(rpassword::prompt_password("New admin password: ")?);
    let second = Zeroizing::new(rpassword::prompt_password("Again: ")?);
    if first != second {
        anyhow::bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}
