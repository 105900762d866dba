// SPDX-License-Identifier: GPL-2.0

//! The grammar each usage text shows, in the style of `ip route help`: one
//! line per verb, then the definitions of the words in capitals. One table
//! holds every verb's line, so the usage of a verb, of its object and of the
//! whole tool cannot disagree. cli.rs hands these texts to clap, which
//! prints them after "Usage: " in help and after usage errors.

use mpbal_core::strategy::StrategyId;

/// The strategy names, from the module's own core (one list for both).
pub fn strategies() -> impl Iterator<Item = &'static str> {
    StrategyId::all().map(StrategyId::name)
}

/// Where `mpbalctl apply` reads the configuration unless told otherwise.
pub const CONFIG_FILE: &str = "/etc/mpbal/mpbal.toml";

/// Where `mpbalctl daemon` writes status.json and mpbal.prom.
pub const STATE_DIR: &str = "/run/mpbal";

/// The words in capitals that need a definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Def {
    Options,
    Prefix,
    Nh,
    Table,
    Proto,
    Strategy,
    Rate,
    Tier,
    File,
}

/// One verb: its object and name (clap's), and its grammar. An object
/// that is a command itself (apply) has one verb with the name "".
struct Verb {
    object: &'static str,
    name: &'static str,
    usage: &'static str,
    defs: &'static [Def],
}

const VERBS: &[Verb] = &[
    Verb {
        object: "route",
        name: "add",
        usage: "route add [equalize] PREFIX NH... [table TABLE] [metric N] [proto PROTO]",
        defs: &[Def::Prefix, Def::Nh, Def::Table, Def::Proto],
    },
    Verb {
        object: "route",
        name: "replace",
        usage: "route replace [equalize] PREFIX NH... [table TABLE] [metric N] [proto PROTO]",
        defs: &[Def::Prefix, Def::Nh, Def::Table, Def::Proto],
    },
    Verb {
        object: "route",
        name: "del",
        usage: "route del PREFIX [table TABLE] [metric N] [proto PROTO]",
        defs: &[Def::Prefix, Def::Table, Def::Proto],
    },
    Verb {
        object: "route",
        name: "show",
        usage: "route [show] [table { TABLE | all }]",
        defs: &[Def::Table],
    },
    Verb {
        object: "strategy",
        name: "show",
        usage: "strategy [show]",
        defs: &[],
    },
    Verb {
        object: "strategy",
        name: "set",
        usage: "strategy set STRATEGY",
        defs: &[Def::Strategy],
    },
    Verb {
        object: "stats",
        name: "show",
        usage: "stats [show]",
        defs: &[],
    },
    Verb {
        object: "link",
        name: "show",
        usage: "link [show] [[dev] DEV]",
        defs: &[],
    },
    Verb {
        object: "link",
        name: "set",
        usage: "link set DEV { capacity RATE | tier TIER | state { up | down } }...",
        defs: &[Def::Rate, Def::Tier],
    },
    Verb {
        object: "apply",
        name: "",
        usage: "apply [-f FILE] [--check]",
        defs: &[Def::File],
    },
    Verb {
        object: "daemon",
        name: "",
        usage: "daemon [-f FILE] [--state-dir DIR | --no-state]",
        defs: &[Def::File],
    },
];

fn def_text(d: Def) -> String {
    let (name, text) = match d {
        Def::Options => (
            "OPTIONS",
            "{ -n NETNS | -j | -p | -h | -V }   (-jn NETNS: letters group)".to_string(),
        ),
        Def::Prefix => ("PREFIX", "A.B.C.D/LEN | A.B.C.D | default".into()),
        Def::Nh => (
            "NH",
            "nexthop [via GW] [dev DEV] [weight 1..256]   (via, dev or both)".into(),
        ),
        Def::Table => (
            "TABLE",
            "main | local | default | NAME | NUMBER   (NAME from rt_tables)".into(),
        ),
        Def::Proto => (
            "PROTO",
            "boot | static | kernel | ... | NAME | NUMBER   (NAME from rt_protos)".into(),
        ),
        Def::Strategy => ("STRATEGY", strategies().collect::<Vec<_>>().join(" | ")),
        Def::Rate => (
            "RATE",
            "NUMBER[bit|kbit|mbit|gbit|tbit|kibit|..|bps|kbps|..|kibps|..] | none".into(),
        ),
        Def::Tier => ("TIER", "1..15   (1 is preferred, and the default)".into()),
        Def::File => (
            "FILE",
            format!("a TOML configuration file, default {CONFIG_FILE}"),
        ),
    };
    format!("  {name:<8} := {text}")
}

/// The usage text of the command at `path` (clap's names: [], [OBJECT] or
/// [OBJECT, VERB]), as clap's `override_usage`: it follows "Usage: ", so
/// further lines are indented to match.
pub fn usage(path: &[&str]) -> String {
    let verbs: Vec<&Verb> = VERBS
        .iter()
        .filter(|v| match path {
            [] => true,
            [o] => v.object == *o,
            [o, n] => v.object == *o && v.name == *n,
            _ => false,
        })
        .collect();
    let mut lines: Vec<String> = Vec::new();
    let mut defs: Vec<Def> = Vec::new();
    match path {
        [] => {
            lines.push("[OPTIONS] OBJECT { COMMAND | help }".into());
            defs.push(Def::Options);
        }
        [_, "help"] | ["help"] => {}
        _ if verbs.is_empty() => return String::new(),
        _ => {}
    }
    lines.extend(verbs.iter().map(|v| v.usage.to_string()));
    // An object that is a command itself has no COMMAND to ask help of.
    let has_verbs = |o: &str| VERBS.iter().any(|v| v.object == o && !v.name.is_empty());
    match path {
        [] | ["help"] => lines.push("help [OBJECT [COMMAND]]".into()),
        [o] | [o, "help"] if has_verbs(o) => lines.push(format!("{o} help [COMMAND]")),
        _ => {}
    }
    for d in verbs.iter().flat_map(|v| v.defs) {
        if !defs.contains(d) {
            defs.push(*d);
        }
    }
    let mut out: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{}mpbalctl {l}", if i == 0 { "" } else { "       " }))
        .collect();
    out.extend(defs.into_iter().map(def_text));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verb_usage_has_its_grammar_only() {
        let u = usage(&["route", "add"]);
        assert!(
            u.starts_with("mpbalctl route add [equalize] PREFIX NH... [table TABLE]"),
            "{u}"
        );
        assert!(u.contains("\n  NH       := nexthop [via GW]"), "{u}");
        assert!(u.contains("\n  TABLE    := main"), "{u}");
        assert!(u.contains("\n  PROTO    := boot"), "{u}");
        assert!(!u.contains("route del"), "{u}");
        assert!(!u.contains("RATE"), "{u}");
        let u = usage(&["strategy", "set"]);
        assert!(u.contains("STRATEGY := route | packet | session"), "{u}");
        assert!(usage(&["link", "set"]).contains("RATE     := NUMBER[bit"));
        assert!(usage(&["link", "set"]).contains("TIER     := 1..15"));
        assert_eq!(
            usage(&["apply"]),
            "mpbalctl apply [-f FILE] [--check]\n  \
             FILE     := a TOML configuration file, default /etc/mpbal/mpbal.toml"
        );
        assert_eq!(usage(&["stats", "show"]), "mpbalctl stats [show]");
    }

    #[test]
    fn object_usage_lists_its_verbs_once() {
        let u = usage(&["route"]);
        let lines: Vec<&str> = u.lines().collect();
        assert_eq!(
            lines[..5],
            [
                "mpbalctl route add [equalize] PREFIX NH... [table TABLE] [metric N] [proto PROTO]",
                "       mpbalctl route replace [equalize] PREFIX NH... [table TABLE] [metric N] [proto PROTO]",
                "       mpbalctl route del PREFIX [table TABLE] [metric N] [proto PROTO]",
                "       mpbalctl route [show] [table { TABLE | all }]",
                "       mpbalctl route help [COMMAND]",
            ]
        );
        assert_eq!(u.matches("  TABLE ").count(), 1, "{u}");
        assert!(!u.contains("strategy"), "{u}");
        assert_eq!(usage(&["route", "help"]), "mpbalctl route help [COMMAND]");
    }

    #[test]
    fn full_usage_has_everything_once() {
        let u = usage(&[]);
        assert!(
            u.starts_with("mpbalctl [OPTIONS] OBJECT { COMMAND | help }\n"),
            "{u}"
        );
        for v in VERBS {
            assert_eq!(u.matches(&format!("mpbalctl {}\n", v.usage)).count(), 1);
        }
        assert!(
            u.contains("\n       mpbalctl help [OBJECT [COMMAND]]\n"),
            "{u}"
        );
        for d in [
            "OPTIONS", "PREFIX", "NH", "TABLE", "PROTO", "STRATEGY", "RATE", "TIER", "FILE",
        ] {
            assert_eq!(u.matches(&format!("\n  {d} ")).count(), 1, "{d}: {u}");
        }
        assert_eq!(usage(&["help"]), "mpbalctl help [OBJECT [COMMAND]]");
    }

    #[test]
    fn unknown_paths_have_no_usage() {
        assert_eq!(usage(&["nope"]), "");
        assert_eq!(usage(&["route", "get"]), "");
    }
}
