//! Tests of the option grammars: the data itself, every spelling of an option, and one test per
//! dangerous option (it must stop allow rules, by name).

use super::*;
use crate::shell::parse;

#[test]
fn the_embedded_grammars_compile() {
    let registry = registry();
    assert_eq!(registry.broken, None);
    for program in [
        "ls", "git", "cargo", "npm", "python3", "curl", "tar", "sed", "awk", "make",
    ] {
        assert!(registry.programs.contains_key(program), "{program}");
    }
    assert!(environment_allowed("RUST_BACKTRACE"));
    assert!(!environment_allowed("GIT_SSH_COMMAND"));
}

/// The problem of each simple command of a line (`None`: understood).
fn problems(line: &str) -> Vec<Option<String>> {
    let parsed = parse(line);
    parsed
        .commands
        .iter()
        .map(|c| c.analysis.problem.clone())
        .collect()
}

fn understood(line: &str) -> bool {
    let parsed = parse(line);
    !parsed.commands.is_empty() && parsed.commands.iter().all(|c| c.analysis.problem.is_none())
}

/// Every spelling of one option reads the same: attached, `=`, separate, bundled, and `--`
/// ends the options.
#[test]
fn options_are_read_in_every_spelling() {
    let paths = |line: &str| -> Vec<String> {
        parse(line)
            .commands
            .first()
            .map(|c| c.analysis.paths.iter().map(|p| p.path.clone()).collect())
            .unwrap_or_default()
    };
    for line in [
        "sort -o out.txt in.txt",
        "sort -oout.txt in.txt",
        "sort --output=out.txt in.txt",
        "sort --output out.txt in.txt",
        "sort -ruo out.txt in.txt",
        "sort in.txt -o out.txt",
    ] {
        let mut got = paths(line);
        got.sort();
        assert_eq!(got, ["in.txt", "out.txt"], "{line}");
    }
    // After `--`, words are operands even when they look like options.
    assert_eq!(paths("cat -- -n"), ["-n"]);
    assert!(understood("cat -- --frob"));
    // A value-taking option swallows the next word, whatever it looks like.
    assert!(understood("grep -e --frob x.txt"));
    // Abbreviations are recognised, named and refused.
    let problem = problems("git fetch --upload-pa=x origin");
    assert!(
        problem.iter().flatten().any(|p| p.contains("network")),
        "{problem:?}"
    );
    let problem = problems("tar --to-com=x -xf a.tar");
    assert!(
        problem
            .iter()
            .flatten()
            .any(|p| p.contains("abbreviates `--to-command`") && p.contains("runs a command")),
        "{problem:?}"
    );
    // Bundled short options: each letter is checked; a value-taking one ends the bundle.
    assert!(understood("tar -xzvf a.tgz"));
    assert!(!understood("tar -xzvIf a.tgz"));
    assert!(understood("tar xzf a.tgz"));
    assert!(!understood("tar xIf prog a.tgz"));
}

#[test]
fn scripts_are_read_conservatively() {
    for (line, ok) in [
        ("sed -n '1,5p;$d' a", true),
        ("sed 's|a|b|g; /x/d' a", true),
        ("sed -e 'y/abc/xyz/' a", true),
        ("sed '/^#/!s/foo/bar/2' a", true),
        ("sed '$a\\\nend' a", true),
        ("sed 's/x/y/e' a", false),
        ("sed 's/x/y/w out' a", false),
        ("sed '2r other' a", false),
        ("sed 'e id' a", false),
        ("sed 'v;1e id' a", false),
        ("sed 's/[/]/x/e' a", false),
        ("awk '{ if ($1 > 2 || $2 < 3) print $1 }' a", true),
        ("awk 'BEGIN { printf \"%d\\n\", (1 > 2) }'", true),
        ("awk '{ print $1 > \"out\" }' a", false),
        ("awk '{ cmd | getline }' a", false),
        ("jq '.a | keys' f.json", true),
        ("jq 'env' f.json", false),
        ("jq -n 'import \"x\" as x; 1'", false),
        ("find . -name '*.rs' -newer Cargo.toml -print0", true),
        ("find . -exec id \\;", false),
        ("set -euxo pipefail", true),
        ("set -o", false),
        ("set", false),
    ] {
        assert_eq!(understood(line), ok, "{line}: {:?}", problems(line));
    }
}

/// `ps`'s BSD letters are read one by one: `e` shows every process's environment (the tokens a
/// daemon or an agent was started with), and a letter the engine does not know is not understood.
#[test]
fn ps_bsd_words_are_known_letters_and_never_the_environment() {
    for line in [
        "ps aux",
        "ps -ef",
        "ps axjf",
        "ps 1234",
        "ps -o pid,cmd -p 1",
        "ps auxww",
    ] {
        assert!(understood(line), "{line}");
    }
    for line in [
        "ps eww", "ps auxe", "ps axe", "ps aeux", "ps ae 1", "ps auxq",
    ] {
        assert!(!understood(line), "{line}");
    }
    let problem = problems("ps eww").remove(0).unwrap_or_default();
    assert!(problem.contains("environment"), "{problem}");
}
