//! How known commands spell their options, spelled one way for `reject`/`pause` rules:
//! `rm -rf` = `rm -r -f` = `rm --recursive --force`, `git push origin +main` = `--force main`.
//! (What each option *does* is the option grammars' business: `crate::grammar`.)

use super::normalise::{SHELLS, Word, WordKind, is_cluster};
use super::words::{Text, home_form};

/// How a known command spells its options.
struct Spec {
    /// Short letter → canonical option.
    shorts: &'static [(char, &'static [&'static str])],
    /// Long alias → canonical option.
    longs: &'static [(&'static str, &'static str)],
    /// Canonical options that take a value.
    values: &'static [&'static str],
    /// Unknown letters make the word an operand (chmod's `-x` is a mode).
    unknown_is_operand: bool,
}

const RM: Spec = Spec {
    shorts: &[
        ('r', &["--recursive"]),
        ('R', &["--recursive"]),
        ('f', &["--force"]),
        ('i', &["--interactive"]),
        ('I', &["--interactive"]),
        ('v', &["--verbose"]),
        ('d', &["--dir"]),
    ],
    longs: &[],
    values: &[],
    unknown_is_operand: false,
};
const CP: Spec = Spec {
    shorts: &[
        ('r', &["--recursive"]),
        ('R', &["--recursive"]),
        ('f', &["--force"]),
        ('i', &["--interactive"]),
        ('v', &["--verbose"]),
        ('a', &["--archive"]),
        ('p', &["--preserve"]),
        ('n', &["--no-clobber"]),
        ('l', &["--link"]),
        ('s', &["--symbolic-link"]),
        ('u', &["--update"]),
        ('t', &["--target-directory"]),
        ('T', &["--no-target-directory"]),
    ],
    longs: &[],
    values: &["--target-directory"],
    unknown_is_operand: false,
};
const MV: Spec = Spec {
    shorts: &[
        ('f', &["--force"]),
        ('i', &["--interactive"]),
        ('n', &["--no-clobber"]),
        ('v', &["--verbose"]),
        ('u', &["--update"]),
        ('t', &["--target-directory"]),
        ('T', &["--no-target-directory"]),
    ],
    longs: &[],
    values: &["--target-directory"],
    unknown_is_operand: false,
};
const CHMOD: Spec = Spec {
    shorts: &[
        ('R', &["--recursive"]),
        ('v', &["--verbose"]),
        ('c', &["--changes"]),
        ('f', &["--silent"]),
    ],
    longs: &[("--quiet", "--silent")],
    values: &["--reference"],
    unknown_is_operand: true,
};
const CHOWN: Spec = Spec {
    shorts: &[
        ('R', &["--recursive"]),
        ('v', &["--verbose"]),
        ('c', &["--changes"]),
        ('f', &["--silent"]),
        ('h', &["--no-dereference"]),
    ],
    longs: &[("--quiet", "--silent")],
    values: &["--reference", "--from"],
    unknown_is_operand: false,
};
const CURL: Spec = Spec {
    shorts: &[
        ('d', &["--data"]),
        ('F', &["--form"]),
        ('T', &["--upload-file"]),
        ('o', &["--output"]),
        ('O', &["--remote-name"]),
        ('s', &["--silent"]),
        ('S', &["--show-error"]),
        ('L', &["--location"]),
        ('f', &["--fail"]),
        ('X', &["--request"]),
        ('H', &["--header"]),
        ('u', &["--user"]),
        ('k', &["--insecure"]),
        ('I', &["--head"]),
        ('A', &["--user-agent"]),
        ('e', &["--referer"]),
        ('b', &["--cookie"]),
        ('c', &["--cookie-jar"]),
        ('x', &["--proxy"]),
        ('K', &["--config"]),
        ('v', &["--verbose"]),
        ('i', &["--include"]),
        ('w', &["--write-out"]),
        ('m', &["--max-time"]),
        ('C', &["--continue-at"]),
        ('r', &["--range"]),
        ('E', &["--cert"]),
        ('G', &["--get"]),
    ],
    longs: &[
        ("--data-binary", "--data"),
        ("--data-raw", "--data"),
        ("--data-ascii", "--data"),
        ("--data-urlencode", "--data"),
        ("--json", "--data"),
        ("--form-string", "--form"),
        ("--upload", "--upload-file"),
    ],
    values: &[
        "--data",
        "--form",
        "--upload-file",
        "--output",
        "--request",
        "--header",
        "--user",
        "--user-agent",
        "--referer",
        "--cookie",
        "--cookie-jar",
        "--proxy",
        "--config",
        "--write-out",
        "--max-time",
        "--continue-at",
        "--range",
        "--cert",
        "--connect-timeout",
        "--retry",
        "--url",
        "--resolve",
        "--connect-to",
    ],
    unknown_is_operand: false,
};
const WGET: Spec = Spec {
    shorts: &[
        ('O', &["--output-document"]),
        ('q', &["--quiet"]),
        ('c', &["--continue"]),
        ('r', &["--recursive"]),
        ('P', &["--directory-prefix"]),
        ('N', &["--timestamping"]),
        ('v', &["--verbose"]),
        ('i', &["--input-file"]),
        ('U', &["--user-agent"]),
        ('T', &["--timeout"]),
        ('t', &["--tries"]),
        ('o', &["--output-file"]),
    ],
    longs: &[
        ("--body-file", "--post-file"),
        ("--body-data", "--post-data"),
    ],
    values: &[
        "--output-document",
        "--directory-prefix",
        "--input-file",
        "--user-agent",
        "--timeout",
        "--tries",
        "--output-file",
        "--post-file",
        "--post-data",
        "--header",
        "--method",
    ],
    unknown_is_operand: false,
};
const GIT_GLOBAL: Spec = Spec {
    shorts: &[
        ('C', &["-C"]),
        ('c', &["-c"]),
        ('p', &["--paginate"]),
        ('P', &["--no-pager"]),
    ],
    longs: &[],
    values: &[
        "-C",
        "-c",
        "--git-dir",
        "--work-tree",
        "--namespace",
        "--config-env",
    ],
    unknown_is_operand: false,
};
const GIT_PUSH: Spec = Spec {
    shorts: &[
        ('f', &["--force"]),
        ('u', &["--set-upstream"]),
        ('d', &["--delete"]),
        ('n', &["--dry-run"]),
        ('v', &["--verbose"]),
        ('q', &["--quiet"]),
        ('o', &["--push-option"]),
    ],
    longs: &[
        ("--force-with-lease", "--force-with-lease"),
        ("--mirror", "--mirror"),
    ],
    values: &["--push-option", "--repo", "--receive-pack", "--exec"],
    unknown_is_operand: false,
};
const GIT_CLEAN: Spec = Spec {
    shorts: &[
        ('f', &["--force"]),
        ('d', &["-d"]),
        ('x', &["-x"]),
        ('X', &["-X"]),
        ('n', &["--dry-run"]),
        ('i', &["--interactive"]),
        ('q', &["--quiet"]),
        ('e', &["--exclude"]),
    ],
    longs: &[],
    values: &["--exclude"],
    unknown_is_operand: false,
};
const GIT_BRANCH: Spec = Spec {
    shorts: &[
        ('D', &["--delete", "--force"]),
        ('d', &["--delete"]),
        ('f', &["--force"]),
        ('m', &["--move"]),
        ('M', &["--move", "--force"]),
        ('c', &["--copy"]),
        ('C', &["--copy", "--force"]),
        ('r', &["--remotes"]),
        ('a', &["--all"]),
        ('v', &["--verbose"]),
        ('l', &["--list"]),
        ('u', &["--set-upstream-to"]),
    ],
    longs: &[],
    values: &["--set-upstream-to"],
    unknown_is_operand: false,
};
const GIT_COMMIT: Spec = Spec {
    shorts: &[
        ('a', &["--all"]),
        ('m', &["--message"]),
        ('F', &["--file"]),
        ('v', &["--verbose"]),
        ('q', &["--quiet"]),
        ('s', &["--signoff"]),
        ('n', &["--no-verify"]),
        ('e', &["--edit"]),
        ('C', &["--reuse-message"]),
        ('c', &["--reedit-message"]),
        ('t', &["--template"]),
        ('S', &["--gpg-sign"]),
        ('p', &["--patch"]),
    ],
    longs: &[],
    values: &[
        "--message",
        "--file",
        "--reuse-message",
        "--reedit-message",
        "--template",
        "--author",
        "--date",
        "--fixup",
        "--squash",
    ],
    unknown_is_operand: false,
};
const GIT_GENERIC: Spec = Spec {
    shorts: &[
        ('f', &["--force"]),
        ('q', &["--quiet"]),
        ('v', &["--verbose"]),
        ('A', &["--all"]),
        ('u', &["--update"]),
        ('p', &["--patch"]),
        ('n', &["--dry-run"]),
        ('i', &["--interactive"]),
        ('b', &["-b"]),
        ('B', &["-B"]),
        ('m', &["--message"]),
        ('d', &["--delete"]),
        ('r', &["-r"]),
    ],
    longs: &[],
    values: &["-b", "-B", "--message"],
    unknown_is_operand: false,
};
const GENERIC: Spec = Spec {
    shorts: &[],
    longs: &[],
    values: &[],
    unknown_is_operand: false,
};

fn spec_for(program: &str) -> Option<&'static Spec> {
    Some(match program {
        "rm" | "rmdir" | "shred" | "unlink" => &RM,
        "cp" | "install" => &CP,
        "mv" => &MV,
        "chmod" => &CHMOD,
        "chown" | "chgrp" => &CHOWN,
        "curl" => &CURL,
        "wget" => &WGET,
        _ => return None,
    })
}

fn git_spec(subcommand: &str) -> &'static Spec {
    match subcommand {
        "push" => &GIT_PUSH,
        "clean" => &GIT_CLEAN,
        "branch" => &GIT_BRANCH,
        "commit" => &GIT_COMMIT,
        _ => &GIT_GENERIC,
    }
}

/// Spells the options of `program`'s words one way.
pub(super) fn normalise_words(program: &str, args: &[Text]) -> Vec<Word> {
    let mut out = Vec::with_capacity(args.len() + 2);
    if program == "git" {
        let split = normalise_with(&GIT_GLOBAL, args, &mut out, true);
        if let Some((sub, rest)) = args.get(split..).and_then(<[Text]>::split_first) {
            let sub_text = sub.as_literal().unwrap_or("");
            out.push(Word {
                text: sub.as_literal().map(str::to_owned),
                kind: WordKind::Positional,
            });
            normalise_with(git_spec(sub_text), rest, &mut out, false);
            if sub_text == "push" {
                force_refspecs(&mut out);
            }
        }
        return out;
    }
    match spec_for(program) {
        Some(spec) => {
            normalise_with(spec, args, &mut out, false);
        }
        None if SHELLS.contains(&program) => {
            // Split clusters so `-lc` reads as `-l -c`.
            for arg in args {
                match arg.as_literal() {
                    Some(text) if is_cluster(text) => {
                        for c in text.chars().skip(1) {
                            out.push(Word {
                                text: Some(format!("-{c}")),
                                kind: WordKind::Flag,
                            });
                        }
                    }
                    _ => push_generic(arg, &mut out),
                }
            }
        }
        None => {
            normalise_with(&GENERIC, args, &mut out, false);
        }
    }
    out
}

fn push_generic(arg: &Text, out: &mut Vec<Word>) {
    let text = arg.as_literal().map(home_form);
    let kind = match &text {
        Some(t) if t.starts_with('-') && t.len() > 1 => WordKind::Flag,
        _ => WordKind::Positional,
    };
    out.push(Word { text, kind });
}

/// Normalises `args` with `spec`; with `stop_at_operand`, returns the index of the first operand
/// without consuming it (git's subcommand).
fn normalise_with(spec: &Spec, args: &[Text], out: &mut Vec<Word>, stop_at_operand: bool) -> usize {
    let mut at = 0;
    let mut operands_only = false;
    while let Some(arg) = args.get(at) {
        at += 1;
        let Some(text) = arg.as_literal() else {
            if stop_at_operand {
                return at - 1;
            }
            out.push(Word {
                text: None,
                kind: WordKind::Positional,
            });
            continue;
        };
        let text = home_form(text);
        if operands_only || text == "-" || !text.starts_with('-') {
            if stop_at_operand {
                return at - 1;
            }
            out.push(Word {
                text: Some(text),
                kind: WordKind::Positional,
            });
            continue;
        }
        if text == "--" {
            operands_only = true;
            out.push(Word {
                text: Some(text),
                kind: WordKind::Flag,
            });
            continue;
        }
        if let Some(long) = text.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((name, value)) => (format!("--{name}"), Some(value.to_owned())),
                None => (text.clone(), None),
            };
            let canonical = spec
                .longs
                .iter()
                .find(|(alias, _)| *alias == name)
                .map_or(name.clone(), |(_, canonical)| (*canonical).to_owned());
            let takes_value = spec.values.contains(&canonical.as_str());
            out.push(Word {
                text: Some(canonical),
                kind: WordKind::Flag,
            });
            match value {
                Some(value) => out.push(Word {
                    text: Some(home_form(&value)),
                    kind: WordKind::Value,
                }),
                None if takes_value => at = take_value(args, at, out),
                None => {}
            }
            continue;
        }
        // A cluster of short options.
        if spec.shorts.is_empty() {
            out.push(Word {
                text: Some(text),
                kind: WordKind::Flag,
            });
            continue;
        }
        let letters: Vec<char> = text.chars().skip(1).collect();
        if spec.unknown_is_operand
            && letters
                .iter()
                .any(|c| !spec.shorts.iter().any(|(s, _)| s == c))
        {
            out.push(Word {
                text: Some(text),
                kind: WordKind::Positional,
            });
            continue;
        }
        for (index, letter) in letters.iter().enumerate() {
            let Some((_, canonicals)) = spec.shorts.iter().find(|(s, _)| s == letter) else {
                out.push(Word {
                    text: Some(format!("-{letter}")),
                    kind: WordKind::Flag,
                });
                continue;
            };
            for canonical in *canonicals {
                out.push(Word {
                    text: Some((*canonical).to_owned()),
                    kind: WordKind::Flag,
                });
            }
            let takes_value = canonicals.iter().any(|c| spec.values.contains(c));
            if takes_value {
                let rest: String = letters.iter().skip(index + 1).collect();
                if rest.is_empty() {
                    at = take_value(args, at, out);
                } else {
                    out.push(Word {
                        text: Some(home_form(&rest)),
                        kind: WordKind::Value,
                    });
                }
                break;
            }
        }
    }
    at
}

fn take_value(args: &[Text], at: usize, out: &mut Vec<Word>) -> usize {
    match args.get(at) {
        Some(value) => {
            out.push(Word {
                text: value.as_literal().map(home_form),
                kind: WordKind::Value,
            });
            at + 1
        }
        None => at,
    }
}

/// `git push origin +main` force-pushes `main`: spell it `--force main`.
fn force_refspecs(words: &mut Vec<Word>) {
    let mut forced = false;
    for word in words.iter_mut() {
        if word.kind == WordKind::Positional
            && let Some(text) = &mut word.text
            && let Some(rest) = text.strip_prefix('+')
        {
            *text = rest.to_owned();
            forced = true;
        }
    }
    if forced {
        words.push(Word {
            text: Some("--force".to_owned()),
            kind: WordKind::Flag,
        });
    }
}
