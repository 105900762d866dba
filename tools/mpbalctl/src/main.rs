//! mpbalctl: userspace control for the mpbal multipath balancer.
//!
//! Command line (clap for the OBJECT VERB skeleton, hand parsing for the
//! ip-route-style words), dispatch, and exit codes: 0 ok, 1 operational
//! failure, 2 bad arguments.

mod error;
mod mpbal;
mod netns;
mod output;
mod procfs;
mod rate;
mod route;
mod routeargs;
mod rtnames;
mod rtnl;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

use crate::error::{warn, Error};
use crate::output::Printer;
use crate::procfs::Proc;
use crate::routeargs::{TableSel, Verb};
use crate::rtnames::RtNames;
use crate::rtnl::Rtnl;

/// The usage text; `{STRATEGIES}` stands for the strategy names.
const USAGE: &str = "\
mpbalctl [-n NETNS] [-j] [-p] OBJECT VERB ...
       mpbalctl route add [equalize] PREFIX NH... [table T] [metric N] [proto P]
       mpbalctl route replace [equalize] PREFIX NH... [table T] [metric N] [proto P]
       mpbalctl route del PREFIX [table T] [metric N]
       mpbalctl route show [table T|all]
       mpbalctl strategy [show]
       mpbalctl strategy set {STRATEGIES}
       mpbalctl stats
       mpbalctl link show [dev DEV]
       mpbalctl link set DEV capacity RATE
  NH     := nexthop via GW dev DEV [weight 1..256] | nexthop dev DEV [weight N]
  PREFIX := A.B.C.D/LEN | A.B.C.D | default
  RATE   := NUMBER[bit|kbit|mbit|gbit|tbit|kibit|..|bps|kbps|..|kibps|..] | none";

/// The strategy names as `a|b|c`.
fn strategy_alternatives() -> String {
    mpbal::strategies().collect::<Vec<_>>().join("|")
}

fn usage() -> String {
    USAGE.replace("{STRATEGIES}", &format!("{{{}}}", strategy_alternatives()))
}

#[derive(Parser, Debug)]
#[command(
    name = "mpbalctl",
    version,
    about = "Control the mpbal multipath balancer",
    override_usage = usage(),
    disable_help_subcommand = true
)]
struct Cli {
    /// Run in network namespace NETNS (/run/netns/NETNS)
    #[arg(short = 'n', long = "netns", value_name = "NETNS")]
    netns: Option<String>,
    /// JSON output
    #[arg(short = 'j', long = "json")]
    json: bool,
    /// Pretty-print JSON output
    #[arg(short = 'p', long = "pretty")]
    pretty: bool,
    #[command(subcommand)]
    object: Object,
}

// Trailing words, handed to the ip-style parsers untouched.
#[derive(clap::Args, Debug, Default)]
struct Words {
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum Object {
    /// Multipath routes with the equalize flag
    Route {
        #[command(subcommand)]
        verb: Option<RouteVerb>,
    },
    /// The balancing strategy
    Strategy {
        #[command(subcommand)]
        verb: Option<StrategyVerb>,
    },
    /// Module counters and the uplinks table
    Stats,
    /// Per-uplink state and capacity
    Link {
        #[command(subcommand)]
        verb: Option<LinkVerb>,
    },
}

#[derive(Subcommand, Debug)]
enum RouteVerb {
    /// [equalize] PREFIX NH... [table T] [metric N] [proto P]
    Add(Words),
    /// [equalize] PREFIX NH... [table T] [metric N] [proto P]
    Replace(Words),
    /// PREFIX [table T] [metric N]
    #[command(alias = "delete")]
    Del(Words),
    /// [table T|all]: multipath and equalize routes
    #[command(visible_alias = "list", alias = "ls")]
    Show(Words),
}

#[derive(Subcommand, Debug)]
enum StrategyVerb {
    /// Print the current strategy
    Show,
    #[command(about = format!("Switch to {}", strategy_alternatives()))]
    Set { name: String },
}

#[derive(Subcommand, Debug)]
enum LinkVerb {
    /// [dev DEV]: capacity, rate, headroom and counters per uplink
    #[command(visible_alias = "list", alias = "ls")]
    Show(Words),
    /// DEV capacity RATE (tc units; 0 or none clears)
    Set {
        dev: String,
        #[command(flatten)]
        words: Words,
    },
}

/// A fully checked command: parsing happens before setns or any I/O, so bad
/// arguments are always exit 2 whatever the system state.
#[derive(Debug, PartialEq)]
enum Command {
    Route(Verb, routeargs::RouteSpec),
    RouteShow(TableSel),
    StrategyShow,
    StrategySet(String),
    Stats,
    LinkShow(Option<String>),
    LinkSet { dev: String, bps: u64, arg: String },
}

fn parse_command(object: Object) -> Result<Command, Error> {
    Ok(match object {
        Object::Route { verb } => match verb.unwrap_or(RouteVerb::Show(Words::default())) {
            RouteVerb::Add(w) => route_change(Verb::Add, &w)?,
            RouteVerb::Replace(w) => route_change(Verb::Replace, &w)?,
            RouteVerb::Del(w) => route_change(Verb::Del, &w)?,
            RouteVerb::Show(w) => {
                Command::RouteShow(routeargs::parse_show(&w.args, RtNames::system())?)
            }
        },
        Object::Strategy { verb } => match verb.unwrap_or(StrategyVerb::Show) {
            StrategyVerb::Show => Command::StrategyShow,
            StrategyVerb::Set { name } => {
                mpbal::check_strategy(&name)?;
                Command::StrategySet(name)
            }
        },
        Object::Stats => Command::Stats,
        Object::Link { verb } => match verb.unwrap_or(LinkVerb::Show(Words::default())) {
            LinkVerb::Show(w) => Command::LinkShow(parse_link_show(&w.args)?),
            LinkVerb::Set { dev, words } => parse_link_set(dev, &words.args)?,
        },
    })
}

fn route_change(verb: Verb, w: &Words) -> Result<Command, Error> {
    Ok(Command::Route(
        verb,
        routeargs::parse_route(verb, &w.args, RtNames::system())?,
    ))
}

/// `link show [dev] [DEV]`
fn parse_link_show(args: &[String]) -> Result<Option<String>, Error> {
    let dev = match args {
        [] => return Ok(None),
        [kw, dev] if kw == "dev" => dev,
        [dev] if dev != "dev" => dev,
        _ => return Err(Error::usage("expected: link show [dev DEV]")),
    };
    mpbal::check_ifname(dev)?;
    Ok(Some(dev.clone()))
}

/// `link set DEV capacity RATE`
fn parse_link_set(dev: String, args: &[String]) -> Result<Command, Error> {
    let [kw, arg] = args else {
        return Err(Error::usage("expected: link set DEV capacity RATE"));
    };
    if kw != "capacity" {
        return Err(Error::usage(format!(
            "unknown link attribute \"{kw}\" (expected: capacity)"
        )));
    }
    mpbal::check_ifname(&dev)?;
    let bps =
        rate::parse_rate(arg).map_err(|e| Error::usage(format!("invalid rate \"{arg}\": {e}")))?;
    Ok(Command::LinkSet {
        dev,
        bps,
        arg: arg.clone(),
    })
}

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
        Command::LinkSet { dev, bps, arg } => mpbal::link_set_capacity(&proc, &dev, bps, &arg),
    }
}

/// iproute2 spells long options with one dash (-netns, -json, -pretty);
/// clap wants two. Only the global options before OBJECT are rewritten.
fn normalize_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut in_globals = true;
    let mut expect_value = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || !in_globals {
            out.push(arg);
            continue;
        }
        if expect_value {
            expect_value = false;
            out.push(arg);
            continue;
        }
        let long = match arg.to_str() {
            Some("-netns") | Some("--netns") | Some("-n") => {
                expect_value = true;
                Some("--netns")
            }
            Some("-json") => Some("--json"),
            Some("-pretty") => Some("--pretty"),
            Some(s) if s.starts_with('-') => None,
            _ => {
                in_globals = false;
                None
            }
        };
        out.push(long.map_or(arg, OsString::from));
    }
    out
}

/// Print an error the way the exit code promises: usage errors get the
/// usage text too.
fn report(e: &Error) -> ExitCode {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "mpbalctl: {e}");
    if let Error::Usage(_) = e {
        let _ = writeln!(err, "Usage: {USAGE}");
    }
    ExitCode::from(e.exit_code())
}

/// clap's own message, first line only (its usage/tip lines are replaced by ours).
fn clap_message(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid arguments");
    first.trim_start_matches("error: ").to_string()
}

fn run(cli: Cli) -> Result<String, Error> {
    let cmd = parse_command(cli.object)?;
    if let Some(ns) = &cli.netns {
        netns::enter(ns)?;
    }
    let mut p = Printer::new(cli.json, cli.pretty);
    execute(cmd, &mut p)?;
    Ok(p.finish())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(normalize_args(std::env::args_os())) {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e)
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                || e.kind() == ErrorKind::MissingSubcommand =>
        {
            return report(&Error::usage("missing OBJECT"))
        }
        Err(e) => return report(&Error::usage(clap_message(&e))),
    };
    match run(cli) {
        Ok(out) => {
            let _ = std::io::stdout().lock().write_all(out.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => report(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn parse(args: &[&str]) -> Result<(Cli, Command), Error> {
        let mut all = vec!["mpbalctl"];
        all.extend_from_slice(args);
        let mut cli = Cli::try_parse_from(normalize_args(os(&all)))
            .map_err(|e| Error::usage(clap_message(&e)))?;
        let object = std::mem::replace(&mut cli.object, Object::Stats);
        Ok((cli, parse_command(object)?))
    }

    #[test]
    fn single_dash_long_options() {
        assert_eq!(
            normalize_args(os(&["m", "-netns", "-json", "-json", "route", "-json"])),
            os(&["m", "--netns", "-json", "--json", "route", "-json"])
        );
        assert_eq!(
            normalize_args(os(&["m", "-pretty", "-j", "-n", "x", "stats"])),
            os(&["m", "--pretty", "-j", "--netns", "x", "stats"])
        );
        let (cli, cmd) = parse(&["-netns", "ns1", "-json", "-pretty", "stats"]).unwrap();
        assert_eq!(cli.netns.as_deref(), Some("ns1"));
        assert!(cli.json && cli.pretty);
        assert_eq!(cmd, Command::Stats);
    }

    #[test]
    fn commands() {
        assert_eq!(parse(&["strategy"]).unwrap().1, Command::StrategyShow);
        assert_eq!(
            parse(&["strategy", "set", "bandwidth"]).unwrap().1,
            Command::StrategySet("bandwidth".into())
        );
        assert_eq!(
            parse(&["route"]).unwrap().1,
            Command::RouteShow(TableSel::One(rtnames::RT_TABLE_MAIN))
        );
        assert_eq!(
            parse(&["route", "list", "table", "all"]).unwrap().1,
            Command::RouteShow(TableSel::All)
        );
        assert_eq!(parse(&["link"]).unwrap().1, Command::LinkShow(None));
        assert_eq!(
            parse(&["link", "show", "dev", "eth1"]).unwrap().1,
            Command::LinkShow(Some("eth1".into()))
        );
        assert_eq!(
            parse(&["link", "set", "eth1", "capacity", "10mbit"])
                .unwrap()
                .1,
            Command::LinkSet {
                dev: "eth1".into(),
                bps: 10_000_000,
                arg: "10mbit".into()
            }
        );
        let (_, cmd) = parse(&["route", "delete", "default", "table", "5"]).unwrap();
        assert!(matches!(cmd, Command::Route(Verb::Del, ref s) if s.table == 5));
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        for args in [
            &[][..],
            &["nope"],
            &["-q", "stats"],
            &["stats", "x"],
            &["strategy", "set", "fast"],
            &["link", "set", "eth1", "capacity", "1x"],
            &["link", "set", "eth1", "mtu", "1"],
            &["link", "show", "a", "b"],
            &["route", "add", "1.0.0.0/8"],
            &["route", "show", "table", "x"],
        ] {
            let e = parse(args)
                .err()
                .unwrap_or_else(|| panic!("{args:?} parsed"));
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
    }
}
