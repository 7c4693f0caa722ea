//! `mailzone token`: the HTTP API's bearer tokens, managed on the state database directly,
//! so access can be recovered without a working token (for instance when the first-start
//! admin token was lost).

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use mailzone_engine::clock;
use mailzone_server::auth::{new_token, token_hash};
use serde_json::json;

use crate::args::{Format, StoreArgs};

#[derive(Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Make a new API token and print it once (only its hash is stored).
    Create(CreateArgs),
    /// List the tokens: id, name, creation time (never a token).
    List(ListArgs),
    /// Revoke a token by its id: requests with it are refused at once.
    Revoke(RevokeArgs),
}

#[derive(Args)]
struct CreateArgs {
    /// A name saying who or what uses the token.
    #[arg(long, default_value = "admin")]
    name: String,
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Args)]
struct ListArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Args)]
struct RevokeArgs {
    /// The token's id, as `mailzone token list` shows it.
    id: String,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(args: TokenArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        TokenCommand::Create(args) => create(args).await,
        TokenCommand::List(args) => list(args).await,
        TokenCommand::Revoke(args) => revoke(args).await,
    }
}

async fn create(args: CreateArgs) -> anyhow::Result<ExitCode> {
    let name = args.name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        anyhow::bail!("--name must be 1 to 100 printable characters");
    }
    let store = args.store.open().await?;
    let token = new_token();
    let id = store
        .add_api_token(name, &token_hash(&token), clock::unix_now())
        .await?;
    store.close().await;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(out, "{}", json!({ "id": id, "name": name, "token": token }))?,
        Format::Text => {
            writeln!(out, "{token}")?;
            if !crate::quiet() {
                eprintln!(
                    "mailzone: API token {id} ({name}) created; it is shown only now \
                     (use it as `Authorization: Bearer <token>`)"
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open().await?;
    let tokens = store.api_tokens().await?;
    store.close().await;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let tokens: Vec<_> = tokens
                .iter()
                .map(|t| json!({ "id": t.id, "name": t.name, "createdAt": clock::rfc3339(t.created_at) }))
                .collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&tokens)?)?;
        }
        Format::Text if tokens.is_empty() => {
            writeln!(out, "no API tokens (`mailzone token create` makes one)")?;
        }
        Format::Text => {
            writeln!(out, "{:<32}  {:<20}  NAME", "ID", "CREATED")?;
            for t in &tokens {
                writeln!(
                    out,
                    "{:<32}  {:<20}  {}",
                    t.id,
                    clock::rfc3339(t.created_at),
                    t.name
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn revoke(args: RevokeArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open().await?;
    let revoked = store.revoke_api_token(&args.id).await?;
    let left = store.api_token_count().await?;
    store.close().await;
    if !revoked {
        anyhow::bail!(
            "no API token with id {} (see `mailzone token list`)",
            args.id
        );
    }
    if !crate::quiet() {
        eprintln!("mailzone: API token {} revoked; {left} left", args.id);
    }
    Ok(ExitCode::SUCCESS)
}
