// SPDX-License-Identifier: GPL-2.0

//! The options before OBJECT, rewritten before clap parses them, for what
//! clap does not do by itself:
//!
//! * long options after one dash, as ip writes them: -netns, -json,
//!   -pretty, -help, -Version;
//! * a group of option letters with `n` before its end: `-nj NS` becomes
//!   `-jn NS`, where clap takes the value of `-n` from the next argument.
//!   (`-jn NS` and `-jpn NS` clap reads as they are; `-nNS` stays the value
//!   NS, unless NS is made of option letters only.)
//! * help given before OBJECT (`-h route add`) moves after the last word,
//!   so that it is the help of what the words name, as help after them is.
//!
//! Words from OBJECT on, and the value of -n, are never changed.

use std::ffi::OsString;

/// The single-letter options: the flags of `Cli`, and -h, -V.
pub const LETTERS: &str = "njphV";

/// One argument before OBJECT, for clap.
struct Opt {
    /// Its spelling for clap; None drops it.
    spelling: Option<String>,
    /// The next argument is its value (-n).
    takes_value: bool,
    /// It asks for help.
    help: bool,
}

/// None at OBJECT or `--`, where the options end.
fn option(arg: &str) -> Option<Opt> {
    let pass = |s: &str, takes_value| Opt {
        spelling: Some(s.to_string()),
        takes_value,
        help: false,
    };
    Some(match arg {
        "-n" | "-netns" | "--netns" => pass("--netns", true),
        "-json" => pass("--json", false),
        "-pretty" => pass("--pretty", false),
        "-Version" => pass("--version", false),
        "-h" | "-help" | "--help" => Opt {
            spelling: None,
            takes_value: false,
            help: true,
        },
        "--" => return None,
        _ if is_group(arg) => {
            // h is help, moved; n goes last, to take the next argument.
            let others: String = arg[1..].chars().filter(|c| !"hn".contains(*c)).collect();
            let n = if arg.contains('n') { "n" } else { "" };
            let letters = format!("{others}{n}");
            Opt {
                spelling: (!letters.is_empty()).then(|| format!("-{letters}")),
                takes_value: !n.is_empty(),
                help: arg.contains('h'),
            }
        }
        _ if arg.starts_with('-') => pass(arg, false),
        _ => return None,
    })
}

/// `-` and two or more option letters, n at most once.
fn is_group(s: &str) -> bool {
    s.strip_prefix('-').is_some_and(|letters| {
        letters.len() > 1
            && letters.chars().all(|c| LETTERS.contains(c))
            && letters.matches('n').count() <= 1
    })
}

/// The options' spellings for clap (`args` starts with argv[0]).
pub fn normalize(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args = args.into_iter();
    let mut out: Vec<OsString> = args.next().into_iter().collect();
    let mut help = false;
    let mut rest: Vec<OsString> = Vec::new();
    while let Some(arg) = args.next() {
        let Some(opt) = arg.to_str().and_then(option) else {
            rest.push(arg);
            break;
        };
        help |= opt.help;
        out.extend(opt.spelling.map(OsString::from));
        if opt.takes_value {
            out.extend(args.next());
        }
    }
    rest.extend(args);
    // After `--`, --help would be a word: keep it before.
    let words_follow = rest.first().is_some_and(|a| a != "--");
    if help && !words_follow {
        out.push("--help".into());
    }
    out.extend(rest);
    if help && words_follow {
        out.push("--help".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::cli::Cli;

    fn os(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    fn norm(s: &str) -> Vec<OsString> {
        normalize(os(s))
    }

    #[test]
    fn single_dash_long_options() {
        assert_eq!(
            norm("m -netns -json -json route -json"),
            os("m --netns -json --json route -json")
        );
        assert_eq!(
            norm("m -pretty -j -n x stats"),
            os("m --pretty -j --netns x stats")
        );
        assert_eq!(norm("m -Version"), os("m --version"));
        assert_eq!(norm("m --netns=x stats"), os("m --netns=x stats"));
        // From OBJECT on, nothing is an option of ours.
        assert_eq!(norm("m route -pretty"), os("m route -pretty"));
        assert_eq!(norm("m -- -json"), os("m -- -json"));
    }

    #[test]
    fn n_moves_to_the_end_of_a_group() {
        assert_eq!(norm("m -nj ns stats"), os("m -jn ns stats"));
        assert_eq!(norm("m -njp ns stats"), os("m -jpn ns stats"));
        assert_eq!(norm("m -pnj ns -json x"), os("m -pjn ns --json x"));
        // Already last, or no group: as it was.
        assert_eq!(norm("m -jn ns -json x"), os("m -jn ns --json x"));
        assert_eq!(norm("m -nfoo stats"), os("m -nfoo stats"));
        assert_eq!(norm("m -nn a b"), os("m -nn a b"));
        // The value of -n is never rewritten.
        assert_eq!(norm("m -n -json stats"), os("m --netns -json stats"));
        assert_eq!(norm("m -jn -h stats"), os("m -jn -h stats"));
    }

    #[test]
    fn help_before_object_moves_after_the_words() {
        for s in ["-h", "-help", "--help"] {
            assert_eq!(
                norm(&format!("m {s} route add x")),
                os("m route add x --help")
            );
            assert_eq!(norm(&format!("m {s}")), os("m --help"), "{s}");
        }
        assert_eq!(norm("m -jh route"), os("m -j route --help"));
        assert_eq!(norm("m -hjn ns link"), os("m -jn ns link --help"));
        assert_eq!(norm("m -jh"), os("m -j --help"));
        assert_eq!(norm("m -h -- route"), os("m --help -- route"));
        // Help after OBJECT is clap's and command.rs's.
        assert_eq!(norm("m route -h add"), os("m route -h add"));
    }

    #[test]
    fn letters_are_the_short_options() {
        let mut cmd = Cli::command();
        cmd.build();
        let mut shorts: Vec<char> = cmd.get_arguments().filter_map(|a| a.get_short()).collect();
        shorts.sort_unstable();
        let mut letters: Vec<char> = LETTERS.chars().collect();
        letters.sort_unstable();
        assert_eq!(shorts, letters);
    }
}
