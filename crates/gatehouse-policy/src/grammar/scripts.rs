//! What a data file cannot say: the expressions of `find`, the shell's `set`, and scripts in
//! sed, awk and jq, read conservatively (whatever is not recognised is a problem).

use super::{Access, Run};

/// `find [-H|-L|-P] [START...] [EXPRESSION]`: starting points are read (written with
/// `-delete`); `-exec`, `-execdir`, `-ok`, `-okdir` run commands; `-fprint*`/`-fls` write files.
pub(super) fn find(run: &mut Run, words: &[&str]) -> Result<(), String> {
    let mut at = 0;
    while let Some(word) = words.get(at) {
        match *word {
            "-H" | "-L" | "-P" => at += 1,
            "-D" => at += 2,
            w if w.starts_with("-O") && w.len() > 2 => at += 1,
            _ => break,
        }
    }
    let mut starts = Vec::new();
    while let Some(word) = words.get(at) {
        if word.starts_with('-') || matches!(*word, "(" | ")" | "!" | ",") {
            break;
        }
        starts.push(*word);
        at += 1;
    }
    let mut deletes = false;
    while let Some(&word) = words.get(at) {
        at += 1;
        let mut value = || {
            let value = words.get(at).copied();
            at += 1;
            value.ok_or_else(|| format!("`find {word}` has no value"))
        };
        match word {
            "(" | ")" | "!" | "," | "-not" | "-a" | "-and" | "-o" | "-or" => {}
            "-print"
            | "-print0"
            | "-prune"
            | "-quit"
            | "-empty"
            | "-true"
            | "-false"
            | "-readable"
            | "-writable"
            | "-executable"
            | "-nouser"
            | "-nogroup"
            | "-depth"
            | "-d"
            | "-xdev"
            | "-mount"
            | "-follow"
            | "-noleaf"
            | "-daystart"
            | "-ignore_readdir_race"
            | "-noignore_readdir_race"
            | "-ls" => {}
            "-delete" => deletes = true,
            "-name" | "-iname" | "-path" | "-ipath" | "-wholename" | "-iwholename" | "-regex"
            | "-iregex" | "-type" | "-xtype" | "-size" | "-perm" | "-user" | "-group" | "-uid"
            | "-gid" | "-mtime" | "-mmin" | "-atime" | "-amin" | "-ctime" | "-cmin" | "-links"
            | "-inum" | "-maxdepth" | "-mindepth" | "-used" | "-regextype" | "-fstype"
            | "-printf" | "-lname" | "-ilname" => {
                value()?;
            }
            "-newer" | "-anewer" | "-cnewer" | "-samefile" => {
                let file = value()?;
                run.path(file, Access::Read);
            }
            w if w.starts_with("-newer") && w.len() == 8 => {
                let file = value()?;
                if !w.ends_with('t') {
                    run.path(file, Access::Read);
                }
            }
            "-fprint" | "-fprint0" | "-fls" => {
                let file = value()?;
                run.path(file, Access::Write);
            }
            "-fprintf" => {
                let file = value()?;
                value()?;
                run.path(file, Access::Write);
            }
            "-exec" | "-execdir" | "-ok" | "-okdir" => {
                return Err(format!("`find {word}` runs a command on each file"));
            }
            other => return Err(format!("unknown `find` expression `{other}`")),
        }
    }
    let access = if deletes { Access::Write } else { Access::Read };
    if starts.is_empty() {
        run.path(".", access);
    }
    for start in starts {
        run.path(start, access);
    }
    Ok(())
}

/// Options of the shell's `set` that only change how the script runs or what it prints.
const SET_LETTERS: &str = "abefhkmnptuvxBCEHPT";
const SET_NAMES: &[&str] = &[
    "allexport",
    "braceexpand",
    "errexit",
    "errtrace",
    "functrace",
    "hashall",
    "histexpand",
    "ignoreeof",
    "keyword",
    "monitor",
    "noclobber",
    "noexec",
    "noglob",
    "notify",
    "nounset",
    "onecmd",
    "physical",
    "pipefail",
    "posix",
    "verbose",
    "xtrace",
];

/// `set -euo pipefail`, `set +x`, `set -- a b`. `set` alone prints every variable (secrets).
pub(super) fn set(words: &[&str]) -> Result<(), String> {
    if words.is_empty() {
        return Err("`set` without arguments prints every variable and function".to_owned());
    }
    let mut at = 0;
    while let Some(word) = words.get(at) {
        at += 1;
        if *word == "--" || *word == "-" {
            return Ok(());
        }
        let Some(letters) = word.strip_prefix('-').or_else(|| word.strip_prefix('+')) else {
            return Err(format!("`set {word}` sets the positional parameters"));
        };
        if letters.contains('o') {
            let name = words
                .get(at)
                .ok_or_else(|| "`set -o` without a name prints the options".to_owned())?;
            at += 1;
            if !SET_NAMES.contains(name) {
                return Err(format!("`set -o {name}` is not an option the engine knows"));
            }
        }
        if let Some(bad) = letters
            .chars()
            .find(|c| *c != 'o' && !SET_LETTERS.contains(*c))
        {
            return Err(format!("unknown option `{bad}` (in `{word}`) for `set`"));
        }
    }
    Ok(())
}

/// `name=value` as an awk operand: an assignment, not a file.
pub(super) fn is_assignment(text: &str) -> bool {
    text.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// A sed script, command by command. Refused: `e` (runs a command), `r`/`R`/`w`/`W` (files
/// named in the script), the `e` and `w` flags of `s`, and anything not recognised.
pub(super) fn sed(script: &str) -> Result<(), String> {
    let chars: Vec<char> = script.chars().collect();
    let mut sed = Sed { chars, at: 0 };
    sed.script()
}

struct Sed {
    chars: Vec<char>,
    at: usize,
}

impl Sed {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek();
        self.at += 1;
        c
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(|c| c == ' ' || c == '\t') {
            self.at += 1;
        }
    }

    fn skip_to_end_of_command(&mut self) {
        while self
            .peek()
            .is_some_and(|c| c != ';' && c != '\n' && c != '}')
        {
            self.at += 1;
        }
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.bump() {
            if c == '\\' {
                self.bump();
            } else if c == '\n' {
                break;
            }
        }
    }

    /// Text up to an unescaped `delimiter` (which is consumed).
    fn delimited(&mut self, delimiter: char) -> Result<(), String> {
        while let Some(c) = self.bump() {
            if c == '\\' {
                self.bump();
            } else if c == delimiter {
                return Ok(());
            } else if c == '\n' && delimiter != '\n' {
                return Err("unterminated sed expression".to_owned());
            }
        }
        Err("unterminated sed expression".to_owned())
    }

    fn address(&mut self) -> Result<(), String> {
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while self.peek().is_some_and(|c| c.is_ascii_digit() || c == '~') {
                    self.at += 1;
                }
            }
            Some('$') => self.at += 1,
            Some('/') => {
                self.at += 1;
                self.delimited('/')?;
                self.address_flags();
            }
            Some('\\') => {
                self.at += 1;
                let delimiter = self
                    .bump()
                    .ok_or_else(|| "unterminated sed address".to_owned())?;
                self.delimited(delimiter)?;
                self.address_flags();
            }
            _ => {}
        }
        Ok(())
    }

    fn address_flags(&mut self) {
        while self.peek().is_some_and(|c| c == 'I' || c == 'M') {
            self.at += 1;
        }
    }

    fn script(&mut self) -> Result<(), String> {
        loop {
            while self
                .peek()
                .is_some_and(|c| c.is_whitespace() || c == ';' || c == '}')
            {
                self.at += 1;
            }
            let Some(c) = self.peek() else {
                return Ok(());
            };
            if c == '#' {
                self.skip_line();
                continue;
            }
            self.address()?;
            if self.peek() == Some(',') {
                self.at += 1;
                self.skip_blanks();
                if matches!(self.peek(), Some('+' | '~')) {
                    self.at += 1;
                }
                self.address()?;
            }
            self.skip_blanks();
            while self.peek() == Some('!') {
                self.at += 1;
                self.skip_blanks();
            }
            let Some(command) = self.bump() else {
                return Err("sed address without a command".to_owned());
            };
            match command {
                '{' => {}
                '=' | 'd' | 'D' | 'g' | 'G' | 'h' | 'H' | 'x' | 'n' | 'N' | 'p' | 'P' | 'z'
                | 'F' => {}
                'q' | 'Q' | 'l' | 'L' | 'b' | 't' | 'T' | ':' => self.skip_to_end_of_command(),
                'a' | 'i' | 'c' => self.skip_line(),
                's' => self.substitute()?,
                'y' => {
                    let delimiter = self
                        .bump()
                        .ok_or_else(|| "unterminated sed `y`".to_owned())?;
                    self.delimited(delimiter)?;
                    self.delimited(delimiter)?;
                }
                'e' => return Err("sed script runs a command (`e`)".to_owned()),
                'r' | 'R' => return Err(format!("sed script reads a file it names (`{command}`)")),
                'w' | 'W' => {
                    return Err(format!("sed script writes a file it names (`{command}`)"));
                }
                other => return Err(format!("sed command `{other}` is not one the engine knows")),
            }
        }
    }

    fn substitute(&mut self) -> Result<(), String> {
        let delimiter = self
            .bump()
            .filter(|c| *c != '\n' && *c != '\\')
            .ok_or_else(|| "unterminated sed `s`".to_owned())?;
        self.delimited(delimiter)?;
        self.delimited(delimiter)?;
        while let Some(flag) = self.peek() {
            match flag {
                'g' | 'p' | 'i' | 'I' | 'm' | 'M' => self.at += 1,
                c if c.is_ascii_digit() => self.at += 1,
                'e' => return Err("sed `s///e` runs the pattern space as a command".to_owned()),
                'w' | 'W' => return Err("sed `s///w` writes a file it names".to_owned()),
                ';' | '\n' | '}' | ' ' | '\t' => break,
                other => {
                    return Err(format!(
                        "sed `s` flag `{other}` is not one the engine knows"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// An awk program, read conservatively: commands (`system`, pipes, `getline`), output to files
/// (`print > file`), the environment (`ENVIRON`) and extensions are refused.
pub(super) fn awk(program: &str) -> Result<(), String> {
    for (needle, why) in [
        ("system", "runs a command (`system`)"),
        ("getline", "reads from a command or file (`getline`)"),
        ("ENVIRON", "reads the environment (`ENVIRON`)"),
        ("PROCINFO", "reads process information (`PROCINFO`)"),
        ("@load", "loads an extension (`@load`)"),
        ("@include", "includes another file (`@include`)"),
    ] {
        if program.contains(needle) {
            return Err(format!("awk program {why}"));
        }
    }
    if program.replace("||", "").contains('|') {
        return Err("awk program pipes to or from a command (`|`)".to_owned());
    }
    // `print ... > file` / `>> file` at the top level of a print statement writes a file.
    let bytes = program.as_bytes();
    let mut at = 0;
    while let Some(offset) = program.get(at..).and_then(|rest| rest.find("print")) {
        let start = at + offset + "print".len();
        let mut depth = 0i32;
        let mut quoted = false;
        let mut index = start;
        while let Some(&b) = bytes.get(index) {
            match b {
                b'\\' if quoted => index += 1,
                b'"' => quoted = !quoted,
                b'(' if !quoted => depth += 1,
                b')' if !quoted => depth -= 1,
                b'>' if !quoted && depth <= 0 => {
                    return Err("awk program writes a file (`print > file`)".to_owned());
                }
                b';' | b'}' | b'\n' if !quoted => break,
                _ => {}
            }
            index += 1;
        }
        at = start;
    }
    Ok(())
}

/// A jq program: jq runs no commands, but `env`/`$ENV` print the environment (secrets), and
/// `import`/`include` read other files.
pub(super) fn jq(program: &str) -> Result<(), String> {
    // Strings are read too: `"\(env.TOKEN)"` interpolates.
    let mut word = String::new();
    let mut words = Vec::new();
    for c in program.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' || c == '$' {
            word.push(c);
        } else if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
    }
    for word in words {
        match word.as_str() {
            "env" | "$ENV" => return Err("jq program reads the environment (`env`)".to_owned()),
            "import" | "include" | "modulemeta" | "get_search_list" => {
                return Err(format!("jq program reads other files (`{word}`)"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// `cargo clippy -- -D warnings -W clippy::pedantic -Aclippy::x --cap-lints=warn`: lint levels
/// only (clippy-driver also takes rustc's `-C linker=...`).
pub(super) fn lints(words: &[&str]) -> Result<(), String> {
    let mut at = 0;
    while let Some(word) = words.get(at) {
        at += 1;
        let level = [
            "-D",
            "-W",
            "-A",
            "-F",
            "--deny",
            "--warn",
            "--allow",
            "--forbid",
            "--cap-lints",
        ]
        .into_iter()
        .find(|level| word.starts_with(level));
        let Some(level) = level else {
            return Err(format!(
                "`{word}` after `cargo clippy --` is not a lint level"
            ));
        };
        let attached = word.get(level.len()..).unwrap_or("");
        let attached = attached.strip_prefix('=').unwrap_or(attached);
        let lint = if attached.is_empty() {
            at += 1;
            words.get(at - 1).copied().unwrap_or("")
        } else {
            attached
        };
        if lint.is_empty()
            || !lint
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '-')
        {
            return Err(format!(
                "`{word} {lint}` after `cargo clippy --` is not a lint level"
            ));
        }
    }
    Ok(())
}
