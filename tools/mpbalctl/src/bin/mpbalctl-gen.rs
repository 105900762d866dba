// SPDX-License-Identifier: GPL-2.0

//! `mpbalctl-gen DIR`: writes mpbalctl's man pages (section 8, one per
//! command, as `git-remote(1)` is per command) and its bash, zsh and fish
//! completions into DIR. `make install` runs it; it is not installed.
//!
//! It builds the clap `Command` from the tool's own cli.rs and grammar.rs,
//! so the pages and completions cannot drift from what mpbalctl parses.

// The tool reads the parsed fields; here only the definitions are used.
#[allow(dead_code)]
#[path = "../cli.rs"]
mod cli;
#[path = "../grammar.rs"]
mod grammar;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;

/// Section 8, like ip(8): mpbalctl changes the system's routes.
const SECTION: &str = "8";

/// `text` as written: the grammar and abbreviation tables are aligned in
/// columns, which roff's filling would spread out. The continuation lines
/// of a usage text are indented to follow "Usage: "; that goes.
fn preformatted(heading: &str, text: &str) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", [heading]).control("nf", []);
    for line in text.lines() {
        let line = line.strip_prefix("       ").unwrap_or(line);
        match line.strip_prefix("mpbalctl") {
            Some(rest) => roff.text([bold("mpbalctl"), roman(rest)]),
            None => roff.text([roman(line)]),
        };
    }
    roff.control("fi", []);
    roff
}

/// clap_mangen's page, but with the usage (mpbalctl's grammar) and the
/// after-help text preformatted, and one source line for every page.
fn man_page(cmd: &clap::Command, w: &mut dyn Write) -> io::Result<()> {
    let man = Man::new(cmd.clone())
        .section(SECTION)
        .source(concat!("mpbalctl ", env!("CARGO_PKG_VERSION")));
    man.render_title(w)?;
    man.render_name_section(w)?;
    match cmd.get_overridden_usage() {
        Some(usage) => preformatted("SYNOPSIS", &usage.to_string()).to_writer(w)?,
        None => man.render_synopsis_section(w)?,
    }
    man.render_description_section(w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(w)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(w)?;
    }
    if let Some(after) = cmd.get_after_help() {
        preformatted("NOTES", &after.to_string()).to_writer(w)?;
    }
    if cmd.get_version().is_some() {
        man.render_version_section(w)?;
    }
    Ok(())
}

/// One page for `cmd` and each visible subcommand below it, as
/// `clap_mangen::generate_to` does, but in `SECTION` (it always uses 1).
fn man_pages(cmd: &clap::Command, dir: &Path) -> io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, dir)?;
    }
    let name = cmd.get_display_name().unwrap_or_else(|| cmd.get_name());
    let mut file = BufWriter::new(File::create(dir.join(format!("{name}.{SECTION}")))?);
    man_page(cmd, &mut file)?;
    file.flush()
}

fn generate(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = cli::Cli::command();
    // Gives every subcommand its display name, mpbalctl-route, for the pages.
    cmd.build();
    man_pages(&cmd, dir)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd, "mpbalctl", dir)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: mpbalctl-gen DIR");
        return ExitCode::from(2);
    };
    let dir = PathBuf::from(dir);
    match generate(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mpbalctl-gen: {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
