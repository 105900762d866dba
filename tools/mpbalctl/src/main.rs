// SPDX-License-Identifier: GPL-2.0

//! mpbalctl: userspace control for the mpbal multipath balancer.
//!
//! The command line (clap, see cli.rs), dispatch, and exit codes: 0 ok and
//! help, 1 operational failure, 2 bad arguments.

mod apply;
mod cli;
mod command;
mod config;
mod daemon;
mod error;
mod grammar;
mod help;
mod ipargs;
mod mpbal;
mod netns;
mod output;
mod probe;
mod procfs;
mod rate;
mod route;
mod routeargs;
mod rtnames;
mod rtnl;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches};

use crate::cli::Cli;
use crate::command::{Command, Request};
use crate::error::{warn, Error};
use crate::output::Printer;
use crate::procfs::Proc;
use crate::routeargs::Verb;
use crate::rtnames::RtNames;
use crate::rtnl::Rtnl;

fn execute(cmd: Command, p: &mut Printer) -> Result<(), Error> {
    let proc = Proc::from_env();
    match cmd {
        Command::Route(verb, spec) => {
            route::change(&mut Rtnl::open()?, verb, &spec)?;
            // The module acts on a new equalize route from its worker; return
            // once it does, so traffic sent next is balanced, or say why not.
            if verb != Verb::Del && spec.equalize {
                if let Some(w) = mpbal::steering_warning(&proc, Duration::from_secs(2)) {
                    warn(&w);
                }
            }
            Ok(())
        }
        Command::RouteShow(sel) => route::show(&mut Rtnl::open()?, sel, RtNames::system(), p),
        Command::StrategyShow => mpbal::strategy_show(&proc, p),
        Command::StrategySet(name) => mpbal::strategy_set(&proc, &name),
        Command::Stats => mpbal::stats(&proc, p),
        Command::LinkShow(dev) => mpbal::link_show(&proc, p, dev.as_deref()),
        Command::LinkSet(set) => mpbal::link_set(&proc, &set),
        Command::Apply { file, check } => apply_file(&proc, &file, check),
        Command::Daemon { file, state_dir } => {
            daemon::run(&proc, &daemon::Options { file, state_dir })
        }
    }
}

/// `apply [-f FILE] [--check]`: check everything, then change, printing
/// each change on stdout as soon as it is made, so that the lines record
/// what was done even if a later change fails. Text only, also with -j.
fn apply_file(proc: &Proc, file: &Path, check: bool) -> Result<(), Error> {
    let names = RtNames::system();
    let cfg = apply::load(file, names)?;
    let name = file.display().to_string();
    let mut out = std::io::stdout().lock();
    let mut say = |line: &str| {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    if check {
        say(&format!("{name}: ok"));
        return Ok(());
    }
    let mut rtnl = Rtnl::open()?;
    let links = rtnl.links()?;
    apply::check_system(&cfg, &name, proc, &links)?;
    let state = apply::read_state(&cfg, proc, &mut rtnl, &links)?;
    let changes = apply::diff(&cfg, &state, names, &name)?;
    if changes.is_empty() {
        say("no changes");
        return Ok(());
    }
    apply::execute(&changes, proc, &mut rtnl, names, &mut say)?;
    // As after route add: return once the module balances the routes.
    if changes
        .iter()
        .any(|c| matches!(c, apply::Change::Route { .. }))
    {
        if let Some(w) = mpbal::steering_warning(proc, Duration::from_secs(2)) {
            warn(&w);
        }
    }
    Ok(())
}

fn run(cmd: Command, cli: &Cli) -> Result<String, Error> {
    if let Some(ns) = &cli.netns {
        netns::enter(ns)?;
    }
    let mut p = Printer::new(cli.json, cli.pretty);
    execute(cmd, &mut p)?;
    Ok(p.finish())
}

/// One line on stderr; usage errors add the usage of what was named.
fn report(e: &Error, usage: &str) -> ExitCode {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "mpbalctl: {e}");
    if let Error::Usage(_) = e {
        let _ = write!(err, "{usage}");
    }
    ExitCode::from(e.exit_code())
}

fn print(out: &str) -> ExitCode {
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    ExitCode::SUCCESS
}

/// clap's own errors: help and version go to stdout (exit 0); anything
/// else is a usage error in our format, with the usage clap chose (that of
/// the subcommand it was parsing).
fn clap_error(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            // clap's rendering, with the one newline at the end ours have.
            let out = e.render().to_string();
            print(&format!("{}\n", out.trim_end()))
        }
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            report(&Error::usage("missing OBJECT"), &help::usage(&[]))
        }
        _ => {
            let (msg, usage) = split_clap_error(&e.render().to_string());
            report(&Error::usage(msg), &usage)
        }
    }
}

/// clap's rendered error: its message (the lines before the first blank
/// one, as one line, without "error: "), and its "Usage:" block (up to the
/// blank line after it), ending with a newline.
fn split_clap_error(rendered: &str) -> (String, String) {
    let msg = rendered
        .lines()
        .take_while(|l| !l.is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let usage: String = rendered
        .lines()
        .skip_while(|l| !l.starts_with("Usage:"))
        .take_while(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    let usage = if usage.is_empty() {
        help::usage(&[])
    } else {
        usage
    };
    (msg.trim_start_matches("error: ").to_string(), usage)
}

/// Run as `mpbald` (a link to mpbalctl), the arguments are the daemon's.
fn args() -> Vec<std::ffi::OsString> {
    let mut args: Vec<_> = std::env::args_os().collect();
    let name = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_os_string());
    if name.as_deref() == Some(std::ffi::OsStr::new("mpbald")) {
        args.insert(1, "daemon".into());
    }
    args
}

fn main() -> ExitCode {
    let args = ipargs::normalize(args());
    let matches = match Cli::command().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => return clap_error(&e),
    };
    let path = help::path_of(&matches);
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return clap_error(&e),
    };
    let object = std::mem::replace(&mut cli.object, cli::Object::Unknown(Vec::new()));
    match command::parse(object) {
        Ok(Request::Help(topic)) => print(&help::text(&topic)),
        Ok(Request::Run(cmd)) => match run(cmd, &cli) {
            Ok(out) => print(&out),
            Err(e) => report(&e, &help::usage(&path)),
        },
        Err(e) => report(&e, &help::usage(&path)),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn clap_errors_keep_message_and_usage() {
        let e = Cli::command()
            .try_get_matches_from(["mpbalctl", "stats", "-x"])
            .unwrap_err();
        let (msg, usage) = split_clap_error(&e.render().to_string());
        assert_eq!(msg, "unexpected argument '-x' found");
        assert_eq!(
            usage,
            "Usage: mpbalctl stats [show]\n       mpbalctl stats help [COMMAND]\n"
        );

        let e = Cli::command()
            .try_get_matches_from(["mpbalctl", "strategy", "set"])
            .unwrap_err();
        let (msg, usage) = split_clap_error(&e.render().to_string());
        assert_eq!(
            msg,
            "the following required arguments were not provided: <STRATEGY>"
        );
        assert!(
            usage.starts_with("Usage: mpbalctl strategy set STRATEGY\n  STRATEGY := route"),
            "{usage}"
        );
    }

    #[test]
    fn clap_parses_grouped_and_ip_style_options() {
        for s in [
            "-jn ns1 stats",
            "-nj ns1 stats",
            "-j -n ns1 stats",
            "-n ns1 -j stats",
            "-json -netns ns1 stats",
            "--json --netns ns1 stats",
            "-jpn ns1 stats",
        ] {
            let args = ["mpbalctl"].into_iter().chain(s.split_whitespace());
            let cli = Cli::try_parse_from(ipargs::normalize(args.map(Into::into)))
                .unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(cli.netns.as_deref(), Some("ns1"), "{s}");
            assert!(cli.json, "{s}");
            assert_eq!(cli.pretty, s.contains('p'), "{s}");
        }
    }
}
