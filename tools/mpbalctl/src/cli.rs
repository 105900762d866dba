// SPDX-License-Identifier: GPL-2.0

//! The command line as clap sees it: the options, then OBJECT and VERB with
//! iproute2's abbreviations, then the words after the verb, which
//! command.rs and routeargs.rs read the way ip reads them. Help (and man
//! pages and completions, built from `Cli::command()`) come from here.
//!
//! Abbreviations: ip takes the first keyword of its own list that a word is
//! a prefix of (`matches()` in lib/utils.c), so `ip r a` is `ip route add`.
//! clap's `infer_subcommands` refuses a prefix of two names instead, so
//! every prefix that ip resolves to one of our words is listed as an alias;
//! the tests below check the lists against ip's (iproute2 6.1 ip/ip.c,
//! ip/iproute.c, ip/iplink.c). `strategy` and `stats` are not ip's: `s` and
//! `st` could mean either, so they take three letters.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::grammar::{usage, CONFIG_FILE, STATE_DIR};

/// The abbreviations, for the main help; a test checks it against the
/// aliases below.
pub const ABBREVIATIONS: &str = "\
Abbreviations, as in ip: a word may be cut down to the letters outside the
brackets, so `mpbalctl r a ...` is `mpbalctl route add ...`:
  objects         r[oute] l[ink] str[ategy] sta[ts] h[elp] apply daemon
  route           a[dd] r[eplace] d[elete] s[how] l[ist] ls[t] h[elp]
  link, strategy  s[et] sh[ow] l[ist] ls[t] h[elp]
  stats           s[how] l[ist] ls[t] h[elp]
show, list and lst are one verb, and an object alone is its show.";

/// ip's prefixes of `help`.
const HELP_ALIASES: [&str; 3] = ["h", "he", "hel"];
/// ip's prefixes of `show` and `list` where `s` is not `set`.
const SHOW_ALIASES: [&str; 7] = ["sh", "sho", "l", "li", "lis", "ls", "lst"];
/// The same, and `s`: for objects without `set` (`ip route s` is show).
const SHOW_OR_S_ALIASES: [&str; 8] = ["s", "sh", "sho", "l", "li", "lis", "ls", "lst"];
/// ip's prefixes of `set` (`ip link s` is set).
const SET_ALIASES: [&str; 2] = ["s", "se"];

#[derive(Parser, Debug)]
#[command(
    name = "mpbalctl",
    version,
    about = "Control the mpbal multipath balancer",
    override_usage = usage(&[]),
    after_help = ABBREVIATIONS,
    subcommand_value_name = "OBJECT",
    subcommand_help_heading = "Objects",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Run in network namespace NETNS (/run/netns/NETNS, or a path)
    #[arg(short = 'n', long = "netns", value_name = "NETNS")]
    pub netns: Option<String>,
    /// JSON output
    #[arg(short = 'j', long = "json")]
    pub json: bool,
    /// Pretty-print JSON output
    #[arg(short = 'p', long = "pretty")]
    pub pretty: bool,
    #[command(subcommand)]
    pub object: Object,
}

/// The words after a verb, handed on untouched (hidden: the usage text
/// shows their grammar).
#[derive(Args, Debug, Default)]
pub struct Words {
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        hide = true,
        value_name = "ARGS"
    )]
    pub words: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum Object {
    /// Multipath routes with the equalize flag
    #[command(
        aliases = ["r", "ro", "rou", "rout"],
        override_usage = usage(&["route"]),
        subcommand_value_name = "COMMAND"
    )]
    Route {
        #[command(subcommand)]
        verb: Option<RouteVerb>,
    },
    /// The balancing strategy
    #[command(
        aliases = ["str", "stra", "strat", "strate", "strateg"],
        override_usage = usage(&["strategy"]),
        subcommand_value_name = "COMMAND"
    )]
    Strategy {
        #[command(subcommand)]
        verb: Option<StrategyVerb>,
    },
    /// Module counters and the uplinks table
    #[command(
        aliases = ["sta", "stat"],
        override_usage = usage(&["stats"]),
        subcommand_value_name = "COMMAND"
    )]
    Stats {
        #[command(subcommand)]
        verb: Option<StatsVerb>,
    },
    /// Per-uplink state and capacity
    #[command(
        aliases = ["l", "li", "lin"],
        override_usage = usage(&["link"]),
        subcommand_value_name = "COMMAND"
    )]
    Link {
        #[command(subcommand)]
        verb: Option<LinkVerb>,
    },
    /// Make the system what the configuration file says
    #[command(
        override_usage = usage(&["apply"]),
        after_help = "Prints each change it makes, or \"no changes\". With --check it only\n\
                      checks the file (syntax, keys, values), without looking at the system.\n\
                      Routes the file does not name are left alone."
    )]
    Apply {
        /// The configuration file
        #[arg(short = 'f', long = "file", value_name = "FILE", default_value = CONFIG_FILE)]
        file: PathBuf,
        /// Check the file only; change nothing
        #[arg(long = "check")]
        check: bool,
    },
    /// Probe the uplinks, guard the routes, publish status (mpbald)
    #[command(
        override_usage = usage(&["daemon"]),
        after_help = "Applies FILE, then runs until SIGTERM or SIGINT: probes every uplink that\n\
                      has [uplink.DEV.probe] and sets it down or up in the module, puts back\n\
                      the file's routes when another program deletes or replaces them, and\n\
                      writes DIR/status.json and DIR/mpbal.prom after every round. Logs to\n\
                      stderr. Installed as mpbald too: `mpbald ARGS` is `mpbalctl daemon ARGS`."
    )]
    Daemon {
        /// The configuration file
        #[arg(short = 'f', long = "file", value_name = "FILE", default_value = CONFIG_FILE)]
        file: PathBuf,
        /// Where status.json and mpbal.prom go
        #[arg(long = "state-dir", value_name = "DIR", default_value = STATE_DIR,
              conflicts_with = "no_state")]
        state_dir: PathBuf,
        /// Write no status files
        #[arg(long = "no-state")]
        no_state: bool,
    },
    /// Help on everything, an object or a command
    #[command(aliases = HELP_ALIASES, override_usage = usage(&["help"]))]
    Help(Words),
    /// Any other word: command.rs says why it is wrong, as ip does.
    #[command(external_subcommand)]
    Unknown(Vec<String>),
}

#[derive(Subcommand, Debug)]
pub enum RouteVerb {
    /// Add a multipath route
    #[command(
        aliases = ["a", "ad"],
        override_usage = usage(&["route", "add"]),
        after_help = "\"equalize\" makes mpbal balance the route; it needs two or more NH.\n\
                      Default: table main, proto boot."
    )]
    Add(Words),
    /// Add a multipath route, or replace the one there
    #[command(
        aliases = ["r", "re", "rep", "repl", "repla", "replac"],
        override_usage = usage(&["route", "replace"]),
        after_help = "\"equalize\" makes mpbal balance the route; it needs two or more NH.\n\
                      Default: table main, proto boot."
    )]
    Replace(Words),
    /// Delete a route
    #[command(
        visible_alias = "delete",
        aliases = ["d", "de", "dele", "delet"],
        override_usage = usage(&["route", "del"]),
        after_help = "Default: table main."
    )]
    Del(Words),
    /// List the multipath routes, equalize or not
    #[command(
        visible_alias = "list",
        aliases = SHOW_OR_S_ALIASES,
        override_usage = usage(&["route", "show"]),
        after_help = "Default: table main."
    )]
    Show(Words),
    /// Help on route or one of its commands
    #[command(aliases = HELP_ALIASES, override_usage = usage(&["route", "help"]))]
    Help(Words),
    #[command(external_subcommand)]
    Unknown(Vec<String>),
}

#[derive(Subcommand, Debug)]
pub enum StrategyVerb {
    /// Print the network namespace's strategy
    #[command(
        visible_alias = "list",
        aliases = SHOW_ALIASES,
        override_usage = usage(&["strategy", "show"])
    )]
    Show(Words),
    /// Set the network namespace's strategy (net.mpbal.strategy)
    #[command(aliases = SET_ALIASES, override_usage = usage(&["strategy", "set"]))]
    Set {
        /// The strategy's name
        #[arg(value_name = "STRATEGY")]
        name: String,
    },
    /// Help on strategy or one of its commands
    #[command(aliases = HELP_ALIASES, override_usage = usage(&["strategy", "help"]))]
    Help(Words),
    #[command(external_subcommand)]
    Unknown(Vec<String>),
}

#[derive(Subcommand, Debug)]
pub enum StatsVerb {
    /// Print the module's counters and its uplinks table
    #[command(
        visible_alias = "list",
        aliases = SHOW_OR_S_ALIASES,
        override_usage = usage(&["stats", "show"])
    )]
    Show(Words),
    /// Help on stats
    #[command(aliases = HELP_ALIASES, override_usage = usage(&["stats", "help"]))]
    Help(Words),
    #[command(external_subcommand)]
    Unknown(Vec<String>),
}

#[derive(Subcommand, Debug)]
pub enum LinkVerb {
    /// Per uplink: state, capacity, rate, headroom and counters
    #[command(
        visible_alias = "list",
        aliases = SHOW_ALIASES,
        override_usage = usage(&["link", "show"]),
        after_help = "A device called \"help\" needs \"dev\": link show dev help."
    )]
    Show(Words),
    /// Set an uplink's capacity, tier or admin state
    #[command(
        aliases = SET_ALIASES,
        override_usage = usage(&["link", "set"]),
        after_help = "capacity: what the bandwidth-based strategies use; 0 or none clears it\n\
                      (the ethtool speed applies again). tier: uplinks of the lowest tier\n\
                      that has a usable one carry the traffic. state down: mpbal uses the\n\
                      uplink no more (net.mpbal.conf.DEV.down)."
    )]
    Set {
        /// The uplink's device
        #[arg(value_name = "DEV")]
        dev: String,
        #[command(flatten)]
        words: Words,
    },
    /// Help on link or one of its commands
    #[command(aliases = HELP_ALIASES, override_usage = usage(&["link", "help"]))]
    Help(Words),
    #[command(external_subcommand)]
    Unknown(Vec<String>),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// What `word` is to clap under the command at `path`: the name of the
    /// subcommand it is, or an alias of.
    fn resolve(path: &[&str], word: &str) -> Option<String> {
        let root = Cli::command();
        let mut cmd = &root;
        for p in path {
            cmd = cmd.find_subcommand(p).unwrap();
        }
        cmd.find_subcommand(word).map(|c| c.get_name().to_string())
    }

    /// Every prefix of every name.
    fn prefixes(names: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = names
            .iter()
            .flat_map(|n| (1..=n.len()).map(move |i| n[..i].to_string()))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The words clap accepts under `path`: names and all aliases.
    fn accepted(path: &[&str]) -> Vec<String> {
        let root = Cli::command();
        let mut cmd = &root;
        for p in path {
            cmd = cmd.find_subcommand(p).unwrap();
        }
        cmd.get_subcommands()
            .flat_map(|c| {
                std::iter::once(c.get_name().to_string())
                    .chain(c.get_all_aliases().map(str::to_string))
            })
            .collect()
    }

    /// ip's rule: the first keyword of `ip_list` that `word` is a prefix of.
    fn ip_first_match<'a>(ip_list: &[&'a str], word: &str) -> Option<&'a str> {
        ip_list.iter().copied().find(|k| k.starts_with(word))
    }

    /// For every prefix of ip's keywords and of ours: where ip resolves the
    /// word to a keyword we have, clap resolves it to the same, and every
    /// word clap accepts means the same to ip. `ours` maps ip's keyword to
    /// our subcommand, None for the keywords we do not have.
    fn assert_like_ip(path: &[&str], ip_list: &[&str], ours: impl Fn(&str) -> Option<&str>) {
        let mut words: Vec<&str> = ip_list.to_vec();
        let acc = accepted(path);
        words.extend(acc.iter().map(String::as_str));
        for w in prefixes(&words) {
            let ip = ip_first_match(ip_list, &w).and_then(&ours);
            assert_eq!(resolve(path, &w).as_deref(), ip, "{path:?} {w:?}");
        }
    }

    // ip/iproute.c do_iproute() (iproute2 6.1), in the order it tries them.
    const IP_ROUTE: &[&str] = &[
        "add", "change", "replace", "prepend", "append", "test", "delete", "list", "show", "lst",
        "get", "flush", "save", "restore", "showdump", "help",
    ];
    // ip/iplink.c do_iplink().
    const IP_LINK: &[&str] = &[
        "add", "set", "change", "replace", "delete", "show", "lst", "list", "xstats", "afstats",
        "property", "help",
    ];

    #[test]
    fn route_verbs_like_ip_route() {
        assert_like_ip(&["route"], IP_ROUTE, |k| match k {
            "add" => Some("add"),
            "replace" => Some("replace"),
            "delete" => Some("del"),
            "list" | "show" | "lst" => Some("show"),
            "help" => Some("help"),
            _ => None,
        });
    }

    #[test]
    fn link_and_strategy_verbs_like_ip_link() {
        for object in ["link", "strategy"] {
            assert_like_ip(&[object], IP_LINK, |k| match k {
                "set" => Some("set"),
                "show" | "lst" | "list" => Some("show"),
                "help" => Some("help"),
                _ => None,
            });
        }
    }

    #[test]
    fn stats_verbs_like_ip_route_show() {
        // No set or add here: s and l are show, as with ip route.
        assert_like_ip(&["stats"], IP_ROUTE, |k| match k {
            "list" | "show" | "lst" => Some("show"),
            "help" => Some("help"),
            _ => None,
        });
    }

    #[test]
    fn objects_like_ip() {
        // ip/ip.c cmds[], up to "help".
        const IP: &[&str] = &[
            "address",
            "addrlabel",
            "maddress",
            "route",
            "rule",
            "neighbor",
            "neighbour",
            "ntable",
            "ntbl",
            "link",
            "l2tp",
            "fou",
            "ila",
            "macsec",
            "tunnel",
            "tunl",
            "tuntap",
            "tap",
            "token",
            "tcpmetrics",
            "tcp_metrics",
            "monitor",
            "xfrm",
            "mroute",
            "mrule",
            "netns",
            "netconf",
            "vrf",
            "sr",
            "nexthop",
            "mptcp",
            "ioam",
            "help",
        ];
        let ip_objects = |k: &str| match k {
            "route" | "link" | "help" => Some(k.to_string()),
            _ => None,
        };
        for w in prefixes(&[IP, &["strategy", "stats", "apply", "daemon"]].concat()) {
            let ours = resolve(&[], &w);
            match ours.as_deref() {
                // Ours alone: never a word ip gives to route, link or help.
                Some("strategy" | "stats" | "apply" | "daemon") => {
                    assert!(w.len() >= 3, "{w:?}");
                    assert_eq!(ip_first_match(IP, &w).and_then(ip_objects), None, "{w:?}");
                }
                _ => assert_eq!(ours, ip_first_match(IP, &w).and_then(ip_objects), "{w:?}"),
            }
        }
        assert_eq!(resolve(&[], "s"), None);
        assert_eq!(resolve(&[], "st"), None);
        assert_eq!(resolve(&[], "str").as_deref(), Some("strategy"));
        assert_eq!(resolve(&[], "sta").as_deref(), Some("stats"));
        // apply changes the system: never a prefix of it.
        assert_eq!(resolve(&[], "apply").as_deref(), Some("apply"));
        assert_eq!(resolve(&[], "appl"), None);
        assert_eq!(resolve(&[], "daemon").as_deref(), Some("daemon"));
        assert_eq!(resolve(&[], "daem"), None);
        assert_eq!(resolve(&[], "routes"), None);
        assert_eq!(resolve(&[], "Route"), None);
    }

    /// Each `a[bc]` of ABBREVIATIONS: a, ab and abc are accepted as one
    /// subcommand, and nothing shorter is.
    #[test]
    fn abbreviations_text_matches_the_aliases() {
        let rows: Vec<(&[&str], &str)> = ABBREVIATIONS
            .lines()
            .filter_map(|l| l.strip_prefix("  "))
            .map(|l| l.split_at(16))
            .map(|(what, words)| {
                let paths: &[&[&str]] = match what.trim() {
                    "objects" => &[&[]],
                    "route" => &[&["route"]],
                    "link, strategy" => &[&["link"], &["strategy"]],
                    "stats" => &[&["stats"]],
                    other => panic!("{other}"),
                };
                (paths, words)
            })
            .flat_map(|(paths, words)| paths.iter().map(move |p| (*p, words)))
            .collect();
        assert_eq!(rows.len(), 5);
        for (path, words) in rows {
            // (shortest form, whole word, subcommand)
            let entries: Vec<(&str, String, String)> = words
                .split_whitespace()
                .map(|w| {
                    // A word without brackets takes no abbreviation.
                    let (short, rest) = w.trim_end_matches(']').split_once('[').unwrap_or((w, ""));
                    let full = format!("{short}{rest}");
                    let name = resolve(path, &full).unwrap_or_else(|| panic!("{path:?} {w}"));
                    (short, full, name)
                })
                .collect();
            for (short, full, name) in &entries {
                for i in short.len()..=full.len() {
                    assert_eq!(resolve(path, &full[..i]).as_ref(), Some(name), "{full}");
                }
                // One letter less is something else, unless another word of
                // the same verb covers it (l[ist] beside ls[t]).
                let shorter = &short[..short.len() - 1];
                let covered = entries
                    .iter()
                    .any(|(s, f, n)| n == name && f != full && shorter.starts_with(s));
                if !shorter.is_empty() && !covered {
                    assert_ne!(resolve(path, shorter).as_ref(), Some(name), "{full}");
                }
            }
            let listed: Vec<&String> = entries.iter().map(|(_, _, n)| n).collect();
            // Every subcommand is in the list.
            let root = Cli::command();
            let cmd = path
                .iter()
                .fold(&root, |c, p| c.find_subcommand(p).unwrap());
            for sub in cmd.get_subcommands() {
                assert!(listed.iter().any(|n| *n == sub.get_name()), "{path:?}");
            }
        }
    }

    #[test]
    fn clap_accepts_the_definition() {
        Cli::command().debug_assert();
    }
}
