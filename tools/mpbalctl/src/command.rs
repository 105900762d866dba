// SPDX-License-Identifier: GPL-2.0

//! From what clap parsed to a fully checked command, or a help request.
//! Every argument is checked here, before setns or any I/O, so bad
//! arguments are always exit 2 whatever the state of the system.

use std::path::PathBuf;

use clap::CommandFactory;

use crate::cli::{Cli, LinkVerb, Object, RouteVerb, StatsVerb, StrategyVerb, Words};
use crate::error::Error;
use crate::routeargs::{self, RouteSpec, TableSel, Verb};
use crate::rtnames::RtNames;
use crate::{mpbal, rate};

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Request {
    /// The help of the command at this path of clap names ([] is all).
    Help(Vec<String>),
    Run(Command),
}

/// A fully checked command.
#[derive(Debug, PartialEq)]
pub enum Command {
    Route(Verb, RouteSpec),
    RouteShow(TableSel),
    StrategyShow,
    StrategySet(String),
    Stats,
    LinkShow(Option<String>),
    LinkSet(LinkSet),
    Apply {
        file: PathBuf,
        check: bool,
    },
    /// `daemon`: the state directory, None with --no-state.
    Daemon {
        file: PathBuf,
        state_dir: Option<PathBuf>,
    },
}

/// `link set DEV ...`: what to set, at least one of them.
#[derive(Debug, Default, PartialEq)]
pub struct LinkSet {
    pub dev: String,
    /// bit/s, and the rate as written.
    pub capacity: Option<(u64, String)>,
    pub tier: Option<u8>,
    /// Admin state: true is down.
    pub down: Option<bool>,
}

pub fn parse(object: Object) -> Result<Request, Error> {
    // No verb is show, as with ip.
    let show = || Words::default();
    match object {
        Object::Route { verb } => match verb.unwrap_or_else(|| RouteVerb::Show(show())) {
            RouteVerb::Add(w) => leaf(&["route", "add"], &w, |a| route_change(Verb::Add, a)),
            RouteVerb::Replace(w) => leaf(&["route", "replace"], &w, |a| {
                route_change(Verb::Replace, a)
            }),
            RouteVerb::Del(w) => leaf(&["route", "del"], &w, |a| route_change(Verb::Del, a)),
            RouteVerb::Show(w) => leaf(&["route", "show"], &w, |a| {
                Ok(Command::RouteShow(routeargs::parse_show(
                    a,
                    RtNames::system(),
                )?))
            }),
            RouteVerb::Help(w) => help_topic(&["route"], &w.words),
            RouteVerb::Unknown(w) => unknown_or_help(&["route"], &w),
        },
        Object::Strategy { verb } => match verb.unwrap_or_else(|| StrategyVerb::Show(show())) {
            StrategyVerb::Show(w) => leaf(&["strategy", "show"], &w, |a| {
                no_args(a, "strategy show").map(|()| Command::StrategyShow)
            }),
            StrategyVerb::Set { name } if name == "help" => Ok(help(&["strategy", "set"])),
            StrategyVerb::Set { name } => {
                mpbal::check_strategy(&name)?;
                Ok(Request::Run(Command::StrategySet(name)))
            }
            StrategyVerb::Help(w) => help_topic(&["strategy"], &w.words),
            StrategyVerb::Unknown(w) => unknown_or_help(&["strategy"], &w),
        },
        Object::Stats { verb } => match verb.unwrap_or_else(|| StatsVerb::Show(show())) {
            StatsVerb::Show(w) => leaf(&["stats", "show"], &w, |a| {
                no_args(a, "stats").map(|()| Command::Stats)
            }),
            StatsVerb::Help(w) => help_topic(&["stats"], &w.words),
            StatsVerb::Unknown(w) => unknown_or_help(&["stats"], &w),
        },
        Object::Link { verb } => match verb.unwrap_or_else(|| LinkVerb::Show(show())) {
            LinkVerb::Show(w) => leaf(&["link", "show"], &w, |a| {
                Ok(Command::LinkShow(parse_link_show(a)?))
            }),
            LinkVerb::Set { dev, words } if dev == "help" && words.words.is_empty() => {
                Ok(help(&["link", "set"]))
            }
            LinkVerb::Set { dev, words } => {
                leaf(&["link", "set"], &words, |a| parse_link_set(dev, a))
            }
            LinkVerb::Help(w) => help_topic(&["link"], &w.words),
            LinkVerb::Unknown(w) => unknown_or_help(&["link"], &w),
        },
        Object::Apply { file, check } => Ok(Request::Run(Command::Apply { file, check })),
        Object::Daemon {
            file,
            state_dir,
            no_state,
        } => Ok(Request::Run(Command::Daemon {
            file,
            state_dir: (!no_state).then_some(state_dir),
        })),
        Object::Help(w) => help_topic(&[], &w.words),
        Object::Unknown(w) => unknown_or_help(&[], &w),
    }
}

fn help(path: &[&str]) -> Request {
    Request::Help(path.iter().map(|s| s.to_string()).collect())
}

/// -h, --help or -help among the words after a verb, where clap does not
/// look for them (it only sees one before the first word).
fn is_help_flag(w: &str) -> bool {
    matches!(w, "-h" | "--help" | "-help")
}

/// The words of a verb: `help` alone, or a help flag anywhere, asks for
/// that verb's help and runs nothing; else `parse` checks them.
fn leaf(
    path: &[&str],
    w: &Words,
    parse: impl FnOnce(&[String]) -> Result<Command, Error>,
) -> Result<Request, Error> {
    if w.words == ["help"] || w.words.iter().any(|w| is_help_flag(w)) {
        return Ok(help(path));
    }
    parse(&w.words).map(Request::Run)
}

/// A word that is no object or command: an error, unless help was asked
/// for, then the help of what came before it.
fn unknown_or_help(path: &[&str], words: &[String]) -> Result<Request, Error> {
    if words.iter().any(|w| is_help_flag(w)) {
        return Ok(help(path));
    }
    Err(unknown(path, words.first().map_or("", String::as_str)))
}

/// `help [OBJECT [COMMAND]]` below `base`, abbreviations included.
fn help_topic(base: &[&str], words: &[String]) -> Result<Request, Error> {
    let root = Cli::command();
    let mut cmd = at(&root, base);
    let mut path: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    for w in words.iter().filter(|w| !is_help_flag(w)) {
        if !cmd.has_subcommands() {
            return Err(Error::usage(format!(
                "unexpected \"{w}\" (expected: help [OBJECT [COMMAND]])"
            )));
        }
        match cmd.find_subcommand(w) {
            Some(sub) => {
                path.push(sub.get_name().to_string());
                cmd = sub;
            }
            None => {
                let base: Vec<&str> = path.iter().map(String::as_str).collect();
                return Err(unknown(&base, w));
            }
        }
    }
    Ok(Request::Help(path))
}

/// The subcommand at `path` of clap names, which must exist.
fn at<'a>(root: &'a clap::Command, path: &[&str]) -> &'a clap::Command {
    path.iter().fold(root, |c, p| {
        c.find_subcommand(p)
            .unwrap_or_else(|| panic!("no subcommand {p}"))
    })
}

/// ip's messages for a word that is no object or command below `path`:
/// ambiguous when it is the start of several.
fn unknown(path: &[&str], word: &str) -> Error {
    let try_help = format!(
        "mpbalctl {}help",
        path.iter().map(|p| format!("{p} ")).collect::<String>()
    );
    let root = Cli::command();
    let names: Vec<&str> = at(&root, path)
        .get_subcommands()
        .map(|c| c.get_name())
        .filter(|n| !word.is_empty() && n.starts_with(word))
        .collect();
    if names.len() > 1 {
        return Error::usage(format!(
            "\"{word}\" is ambiguous ({}), try \"{try_help}\"",
            names.join(", ")
        ));
    }
    let what = if path.is_empty() { "Object" } else { "Command" };
    Error::usage(format!("{what} \"{word}\" is unknown, try \"{try_help}\""))
}

fn no_args(args: &[String], expected: &str) -> Result<(), Error> {
    match args.first() {
        None => Ok(()),
        Some(w) => Err(Error::usage(format!(
            "unexpected \"{w}\" (expected: {expected})"
        ))),
    }
}

fn route_change(verb: Verb, args: &[String]) -> Result<Command, Error> {
    let spec = routeargs::parse_route(verb, args, RtNames::system())?;
    Ok(Command::Route(verb, spec))
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

/// `link set DEV { capacity RATE | tier TIER | state { up | down } }...`,
/// each at most once, as `ip link set` takes several.
fn parse_link_set(dev: String, args: &[String]) -> Result<Command, Error> {
    const EXPECTED: &str =
        "expected: link set DEV { capacity RATE | tier TIER | state { up | down } }...";
    if args.is_empty() {
        return Err(Error::usage(EXPECTED));
    }
    mpbal::check_ifname(&dev)?;
    let mut set = LinkSet {
        dev,
        ..LinkSet::default()
    };
    for pair in args.chunks(2) {
        let [kw, arg] = pair else {
            return Err(Error::usage(format!("\"{}\" needs an argument", pair[0])));
        };
        let dup = match kw.as_str() {
            "capacity" => {
                let bps = rate::parse_rate(arg)
                    .map_err(|e| Error::usage(format!("invalid rate \"{arg}\": {e}")))?;
                set.capacity.replace((bps, arg.clone())).is_some()
            }
            "tier" => {
                let t = match arg.parse::<u8>() {
                    Ok(t) if crate::config::TIERS.contains(&t) => t,
                    _ => return Err(Error::usage(format!("invalid tier \"{arg}\" (1..15)"))),
                };
                set.tier.replace(t).is_some()
            }
            "state" => {
                let down = match arg.as_str() {
                    "up" => false,
                    "down" => true,
                    _ => {
                        return Err(Error::usage(format!(
                            "invalid state \"{arg}\" (up or down)"
                        )))
                    }
                };
                set.down.replace(down).is_some()
            }
            _ => {
                return Err(Error::usage(format!(
                    "unknown link attribute \"{kw}\" (expected: capacity, tier, state)"
                )))
            }
        };
        if dup {
            return Err(Error::usage(format!("duplicate \"{kw}\"")));
        }
    }
    Ok(Command::LinkSet(set))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::rtnames::RT_TABLE_MAIN;

    fn parse_str(s: &str) -> Result<Request, Error> {
        let args = std::iter::once("mpbalctl").chain(s.split_whitespace());
        let cli = Cli::try_parse_from(args).map_err(|e| Error::usage(e.to_string()))?;
        parse(cli.object)
    }

    fn run(s: &str) -> Command {
        match parse_str(s) {
            Ok(Request::Run(c)) => c,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn help(s: &str) -> Vec<String> {
        match parse_str(s) {
            Ok(Request::Help(t)) => t,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn err(s: &str) -> Error {
        match parse_str(s) {
            Err(e) => e,
            other => panic!("{s}: {other:?}"),
        }
    }

    const EQ: &str = "equalize 1.0.0.0/8 nexthop dev a nexthop dev b";

    #[test]
    fn commands() {
        assert_eq!(run("strategy"), Command::StrategyShow);
        assert_eq!(run("strategy show"), Command::StrategyShow);
        assert_eq!(
            run("strategy set bandwidth"),
            Command::StrategySet("bandwidth".into())
        );
        assert_eq!(
            run("route"),
            Command::RouteShow(TableSel::One(RT_TABLE_MAIN))
        );
        assert_eq!(
            run("route list table all"),
            Command::RouteShow(TableSel::All)
        );
        assert_eq!(run("stats"), Command::Stats);
        assert_eq!(run("stats show"), Command::Stats);
        assert_eq!(run("link"), Command::LinkShow(None));
        assert_eq!(
            run("link show dev eth1"),
            Command::LinkShow(Some("eth1".into()))
        );
        assert_eq!(
            run("link set eth1 capacity 10mbit"),
            Command::LinkSet(LinkSet {
                dev: "eth1".into(),
                capacity: Some((10_000_000, "10mbit".into())),
                ..LinkSet::default()
            })
        );
        assert_eq!(
            run("link set eth1 tier 15 state down"),
            Command::LinkSet(LinkSet {
                dev: "eth1".into(),
                tier: Some(15),
                down: Some(true),
                ..LinkSet::default()
            })
        );
        assert_eq!(
            run("link set eth1 state up capacity none tier 1"),
            Command::LinkSet(LinkSet {
                dev: "eth1".into(),
                capacity: Some((0, "none".into())),
                tier: Some(1),
                down: Some(false),
            })
        );
        assert_eq!(
            run("daemon"),
            Command::Daemon {
                file: "/etc/mpbal/mpbal.toml".into(),
                state_dir: Some("/run/mpbal".into()),
            }
        );
        assert_eq!(
            run("daemon -f /tmp/x.toml --no-state"),
            Command::Daemon {
                file: "/tmp/x.toml".into(),
                state_dir: None,
            }
        );
        assert_eq!(
            run("daemon --state-dir /tmp/s"),
            Command::Daemon {
                file: "/etc/mpbal/mpbal.toml".into(),
                state_dir: Some("/tmp/s".into()),
            }
        );
        assert_eq!(
            run("apply"),
            Command::Apply {
                file: "/etc/mpbal/mpbal.toml".into(),
                check: false
            }
        );
        assert_eq!(
            run("apply --check -f /tmp/x.toml"),
            Command::Apply {
                file: "/tmp/x.toml".into(),
                check: true
            }
        );
        assert!(matches!(
            run("route delete default table 5"),
            Command::Route(Verb::Del, ref s) if s.table == 5
        ));
    }

    #[test]
    fn abbreviated_commands() {
        let show_main = Command::RouteShow(TableSel::One(RT_TABLE_MAIN));
        for s in [
            "r",
            "ro",
            "route s",
            "r sh",
            "ro l",
            "r ls",
            "r lst",
            "route list",
        ] {
            assert_eq!(run(s), show_main, "{s}");
        }
        for (s, verb) in [
            ("r a", Verb::Add),
            ("route ad", Verb::Add),
            ("ro r", Verb::Replace),
            ("route rep", Verb::Replace),
            ("r d", Verb::Del),
            ("r del", Verb::Del),
            ("r delete", Verb::Del),
        ] {
            let c = run(&format!("{s} {EQ}"));
            assert!(matches!(c, Command::Route(v, _) if v == verb), "{s}");
        }
        assert_eq!(run("l"), Command::LinkShow(None));
        assert_eq!(run("l sh eth1"), Command::LinkShow(Some("eth1".into())));
        assert_eq!(run("li ls"), Command::LinkShow(None));
        assert!(matches!(run("l s eth1 capacity 1"), Command::LinkSet(_)));
        assert_eq!(run("str"), Command::StrategyShow);
        assert_eq!(run("strat sh"), Command::StrategyShow);
        assert_eq!(run("str s packet"), Command::StrategySet("packet".into()));
        assert_eq!(run("sta"), Command::Stats);
        assert_eq!(run("stats ls"), Command::Stats);
        assert_eq!(run("stats s"), Command::Stats);
    }

    #[test]
    fn ambiguous_and_unknown_words() {
        for (s, msg) in [
            (
                "s",
                "\"s\" is ambiguous (strategy, stats), try \"mpbalctl help\"",
            ),
            (
                "st",
                "\"st\" is ambiguous (strategy, stats), try \"mpbalctl help\"",
            ),
            ("nope", "Object \"nope\" is unknown, try \"mpbalctl help\""),
            (
                "route get",
                "Command \"get\" is unknown, try \"mpbalctl route help\"",
            ),
            (
                "route sa",
                "Command \"sa\" is unknown, try \"mpbalctl route help\"",
            ),
            (
                "link add",
                "Command \"add\" is unknown, try \"mpbalctl link help\"",
            ),
            (
                "stats x",
                "Command \"x\" is unknown, try \"mpbalctl stats help\"",
            ),
            (
                "help route get",
                "Command \"get\" is unknown, try \"mpbalctl route help\"",
            ),
        ] {
            let e = err(s);
            assert_eq!((e.exit_code(), e.message()), (2, msg), "{s}");
        }
    }

    #[test]
    fn help_requests() {
        let p = |s: &str| -> Vec<String> { s.split_whitespace().map(str::to_string).collect() };
        assert_eq!(help("help"), p(""));
        assert_eq!(help("h"), p(""));
        assert_eq!(help("help route"), p("route"));
        assert_eq!(help("help r a"), p("route add"));
        assert_eq!(help("he ro del"), p("route del"));
        assert_eq!(help("route help"), p("route"));
        assert_eq!(help("route h"), p("route"));
        assert_eq!(help("route help a"), p("route add"));
        assert_eq!(help("route add help"), p("route add"));
        assert_eq!(help("route replace help"), p("route replace"));
        assert_eq!(help("route del help"), p("route del"));
        assert_eq!(help("route show help"), p("route show"));
        assert_eq!(help("route help"), p("route"));
        assert_eq!(help("strategy help"), p("strategy"));
        assert_eq!(help("strategy set help"), p("strategy set"));
        assert_eq!(help("strategy show help"), p("strategy show"));
        assert_eq!(help("stats help"), p("stats"));
        assert_eq!(help("stats show help"), p("stats show"));
        assert_eq!(help("link help"), p("link"));
        assert_eq!(help("link set help"), p("link set"));
        assert_eq!(help("link show help"), p("link show"));
        // -h among the words, where clap does not look.
        assert_eq!(help("route add 1.0.0.0/8 -h"), p("route add"));
        assert_eq!(help("r a equalize --help"), p("route add"));
        assert_eq!(help("link set eth1 capacity -help"), p("link set"));
        // With a help flag, a wrong word only ends the topic.
        assert_eq!(help("route frobnicate --help"), p("route"));
        assert_eq!(help("nope --help"), p(""));
        assert_eq!(help("help route --help"), p("route"));
        // help as a device name needs "dev".
        assert_eq!(
            run("link show dev help"),
            Command::LinkShow(Some("help".into()))
        );
        assert_eq!(err("help nope").exit_code(), 2);
        assert_eq!(err("help route add x").exit_code(), 2);
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        for s in [
            "",
            "stats x",
            "stats show x",
            "strategy set",
            "strategy set fast",
            "strategy set route extra",
            "strategy show x",
            "strategy bogus",
            "link set",
            "link set eth1",
            "link set eth1 capacity",
            "link set eth1 capacity 1x",
            "link set eth1 mtu 1",
            "link set eth1 tier",
            "link set eth1 tier 0",
            "link set eth1 tier 16",
            "link set eth1 tier x",
            "link set eth1 state",
            "link set eth1 state dormant",
            "link set eth1 state up state down",
            "link set eth1 tier 1 capacity 1 tier 2",
            "apply -x",
            "daemon extra",
            "daemon --no-state --state-dir /x",
            "apply --file",
            "apply extra",
            "link set ../eth1 capacity 1",
            "link show a b",
            "link show dev",
            "route add 1.0.0.0/8",
            "route add equalize 1.0.0.0/8 nexthop dev a",
            "route add 1.0.0.0/8 nexthop dev a table nosuch",
            "route show table x",
            "route del",
            "-q stats",
        ] {
            assert_eq!(err(s).exit_code(), 2, "{s}");
        }
    }
}
