//! `mailzone completions` and `mailzone man`: shell completions and man pages generated from
//! the clap definitions, so they always list every command and option the binary has.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, CommandFactory as _};
use clap_complete::Shell;

use crate::Cli;

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    shell: Shell,
}

#[derive(Args)]
pub struct ManArgs {
    /// Write every page (mailzone.1, mailzone-<command>.1, mailzone-<command>-<sub>.1)
    /// into this directory (created if missing). Without it, the main page goes to stdout.
    dir: Option<PathBuf>,
}

pub fn completions(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "mailzone", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

pub fn man(args: ManArgs) -> anyhow::Result<ExitCode> {
    let command = Cli::command();
    let Some(dir) = args.dir else {
        clap_mangen::Man::new(command).render(&mut std::io::stdout())?;
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let written = write_pages(&dir, command)?;
    if !crate::quiet() {
        eprintln!("mailzone: {written} man pages written to {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the page of `command` and, recursively, of each subcommand; returns the count.
fn write_pages(dir: &Path, command: clap::Command) -> anyhow::Result<usize> {
    // clap_mangen names a subcommand's page after its own name; give it the full
    // `mailzone-dkim-list` form so that pages of nested commands do not collide.
    let command = command.disable_help_subcommand(true);
    let mut written = 0;
    let mut stack = vec![(command.get_name().to_string(), command)];
    while let Some((page, command)) = stack.pop() {
        let path = dir.join(format!("{page}.1"));
        let mut file = std::fs::File::create(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        clap_mangen::Man::new(command.clone().name(page.clone())).render(&mut file)?;
        written += 1;
        for sub in command.get_subcommands() {
            if sub.get_name() != "help" {
                stack.push((format!("{page}-{}", sub.get_name()), sub.clone()));
            }
        }
    }
    Ok(written)
}
