// SPDX-License-Identifier: GPL-2.0

//! Help and usage texts, rendered by clap from `Cli::command()`, for the
//! command at a path of clap names (["route", "add"]; [] is the tool).

use clap::{ArgMatches, CommandFactory};

use crate::cli::Cli;

/// The built command tree, where each subcommand knows its full name.
fn tree() -> clap::Command {
    let mut root = Cli::command();
    root.build();
    root
}

/// The subcommand at the longest known start of `path`.
fn at<'a>(root: &'a mut clap::Command, path: &[String]) -> &'a mut clap::Command {
    let mut cmd = root;
    for p in path {
        if cmd.find_subcommand(p).is_none() {
            break;
        }
        cmd = cmd.find_subcommand_mut(p).expect("found above");
    }
    cmd
}

/// What `mpbalctl PATH --help` prints, ending with a newline.
pub fn text(path: &[String]) -> String {
    let mut root = tree();
    let help = at(&mut root, path).render_help().to_string();
    format!("{}\n", help.trim_end())
}

/// The "Usage: ..." lines of the command at `path`, ending with a newline.
pub fn usage(path: &[String]) -> String {
    let mut root = tree();
    let usage = at(&mut root, path).render_usage().to_string();
    format!("{}\n", usage.trim_end())
}

/// The clap names of the subcommands `m` went through; an unknown word
/// (an external subcommand) ends up last, where `at` stops before it.
pub fn path_of(m: &ArgMatches) -> Vec<String> {
    let mut path = Vec::new();
    let mut m = m;
    while let Some((name, sub)) = m.subcommand() {
        path.push(name.to_string());
        m = sub;
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    /// What clap itself prints for `mpbalctl ARGS --help`.
    fn clap_help(s: &str) -> String {
        let args = ["mpbalctl"]
            .into_iter()
            .chain(s.split_whitespace())
            .chain(["--help"]);
        let e = Cli::command().try_get_matches_from(args).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp, "{s}");
        format!("{}\n", e.render().to_string().trim_end())
    }

    #[test]
    fn same_text_as_clap_help() {
        for s in [
            "",
            "route",
            "route add",
            "route show",
            "strategy set",
            "stats",
            "link set",
            "apply",
            "help",
        ] {
            assert_eq!(text(&path(s)), clap_help(s), "{s}");
        }
    }

    #[test]
    fn verb_help_shows_its_grammar() {
        let t = text(&path("route add"));
        assert!(
            t.contains("Usage: mpbalctl route add [equalize] PREFIX NH... [table TABLE]"),
            "{t}"
        );
        assert!(t.contains("\n  NH       := nexthop [via GW]"), "{t}");
        assert!(t.contains("two or more NH"), "{t}");
        assert!(!t.contains("route del"), "{t}");
        let t = text(&path("strategy set"));
        assert!(t.contains("STRATEGY := route | packet | session"), "{t}");
    }

    #[test]
    fn object_help_lists_its_verbs() {
        let t = text(&path("route"));
        for v in ["route add", "route replace", "route del", "route [show]"] {
            assert!(t.contains(&format!("mpbalctl {v} ")), "{v}: {t}");
        }
        assert!(t.contains("mpbalctl route help [COMMAND]"), "{t}");
        assert!(!t.contains("strategy"), "{t}");
    }

    #[test]
    fn main_help_has_the_abbreviations() {
        let t = text(&[]);
        assert!(
            t.starts_with("Control the mpbal multipath balancer\n"),
            "{t}"
        );
        assert!(t.contains("objects         r[oute] l[ink]"), "{t}");
        assert!(
            t.contains("mpbalctl link set DEV { capacity RATE | tier TIER"),
            "{t}"
        );
        assert!(t.contains("mpbalctl apply [-f FILE] [--check]"), "{t}");
        assert!(t.contains("-j, --json"), "{t}");
    }

    #[test]
    fn usage_of_unknown_words_is_their_parents() {
        assert_eq!(usage(&path("route get")), usage(&path("route")));
        assert_eq!(usage(&path("nope")), usage(&[]));
        assert!(
            usage(&path("link set")).starts_with("Usage: mpbalctl link set DEV { capacity RATE |")
        );
    }
}
