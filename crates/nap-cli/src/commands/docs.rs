//! `nap completions SHELL` and `nap man`: the command tree as a shell
//! completion script (`clap_complete`) and as man pages (`clap_mangen`).

use std::io::Write as _;
use std::path::PathBuf;

use clap::Args;
use clap_complete::Shell;

use super::stdout_failed;
use crate::failure::{Failure, Status};

/// Arguments of `nap completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell
    shell: Shell,
}

/// Arguments of `nap man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write nap.1 and one page per command (nap-prompt.1, …) into this
    /// directory instead of printing nap.1
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell`.
pub fn completions(mut command: clap::Command, args: CompletionsArgs) -> Result<(), Failure> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "nap", &mut out);
    std::io::stdout()
        .lock()
        .write_all(&out)
        .map_err(stdout_failed)
}

/// Prints `nap.1`, or writes every page into `args.dir`.
pub fn man(command: clap::Command, args: ManArgs) -> Result<(), Failure> {
    let failed = |e: std::io::Error, what: String| {
        Failure::new(Status::Usage, anyhow::Error::new(e).context(what))
    };
    match args.dir {
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut out)
                .map_err(|e| failed(e, "cannot render the man page".into()))?;
            std::io::stdout()
                .lock()
                .write_all(&out)
                .map_err(stdout_failed)
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| failed(e, format!("cannot create {}", dir.display())))?;
            clap_mangen::generate_to(command, &dir)
                .map_err(|e| failed(e, format!("cannot write man pages to {}", dir.display())))?;
            eprintln!("man pages written to {}", dir.display());
            Ok(())
        }
    }
}
