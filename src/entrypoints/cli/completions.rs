//! `tf-lock-reaper completions <shell>`: a shell completion script.

use std::io::Write as _;

use crate::entrypoints::cli::{Cli, CliError, Status};

pub(super) const EXAMPLES: &str = "Examples:
  tf-lock-reaper completions bash > /etc/bash_completion.d/tf-lock-reaper
  tf-lock-reaper completions zsh > \"${fpath[1]}/_tf-lock-reaper\"
  tf-lock-reaper completions fish > ~/.config/fish/completions/tf-lock-reaper.fish";

#[derive(clap::Args)]
pub(super) struct CompletionsArgs {
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

impl CompletionsArgs {
    pub(super) fn run(self) -> Result<Status, CliError> {
        let mut command = <Cli as clap::CommandFactory>::command();
        let mut script = Vec::new();
        clap_complete::generate(self.shell, &mut command, "tf-lock-reaper", &mut script);
        match std::io::stdout().lock().write_all(&script) {
            // A reader that stopped early (`| head`) is not an error.
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
            _ => Ok(Status::Clean),
        }
    }
}
