//! The sensitive paths every layer agrees on, as data: the secrets set (credentials, keys,
//! browser profiles, shell histories, process environments), the project's secrets (`.env*`:
//! secret, but the user may want them read) and the persistence set (files a shell, an agent
//! host, an editor or git runs or loads by themselves).
//!
//! One definition, three users: policy files name the sets in any glob list (`"@secrets"`,
//! `"@project-secrets"`, `"@persistence"`, `"@hooks"`, `"@home-persistence"`: see [`named_set`]), so
//! builtin:developer's shell rules and file rules share it; and the sandbox asks
//! [`secret_paths`] for the absolute globs to deny reads of, for one home and project.
//!
//! Entries are written once, relative to where they live ([`Place`]); every spelling a path rule
//! may see is generated from them: `~/x` and the home directory spelled out (`/home/*/x`,
//! `/root/x`, `/Users/*/x`), `x` anywhere in a tree, and for the latter each letter matched in
//! either case, so `.GIT/config` on a case-insensitive filesystem is still `.git/config`.

use std::path::Path;

/// Where an entry lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Under the user's home directory.
    Home,
    /// An absolute path.
    Absolute,
    /// In any directory (a project's, the home's, anywhere).
    Anywhere,
}

/// One sensitive path.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub place: Place,
    /// The path relative to its place (absolute for [`Place::Absolute`]); a glob.
    pub path: &'static str,
    /// A directory: everything under it is sensitive too.
    pub dir: bool,
}

const fn home(path: &'static str) -> Entry {
    Entry {
        place: Place::Home,
        path,
        dir: false,
    }
}

const fn home_dir(path: &'static str) -> Entry {
    Entry {
        place: Place::Home,
        path,
        dir: true,
    }
}

const fn abs(path: &'static str) -> Entry {
    Entry {
        place: Place::Absolute,
        path,
        dir: false,
    }
}

const fn abs_dir(path: &'static str) -> Entry {
    Entry {
        place: Place::Absolute,
        path,
        dir: true,
    }
}

const fn anywhere(path: &'static str) -> Entry {
    Entry {
        place: Place::Anywhere,
        path,
        dir: false,
    }
}

const fn anywhere_dir(path: &'static str) -> Entry {
    Entry {
        place: Place::Anywhere,
        path,
        dir: true,
    }
}

/// Credentials, keys, tokens, browser profiles, keyrings, shell and REPL histories, process
/// memory and environments, Gatehouse's own data and the agents' credentials. Reading any of
/// them is never allowed by builtin:developer (reject), and the sandbox denies reading them.
pub const SECRETS: &[Entry] = &[
    // SSH: private keys (not `*.pub`), and the directory as a whole for recursive readers.
    home(".ssh/id_*[!b]"),
    home(".ssh/*.pem"),
    home(".ssh/*_key"),
    home(".ssh/*_rsa"),
    home(".ssh/*_ed25519"),
    home(".ssh/*_ecdsa"),
    home(".ssh"),
    // Package registries.
    home(".npmrc"),
    home(".yarnrc"),
    home(".yarnrc.yml"),
    home(".pypirc"),
    home(".pip/pip.conf"),
    home(".config/pip/pip.conf"),
    home(".gem/credentials"),
    home(".cargo/credentials"),
    home(".cargo/credentials.toml"),
    home(".m2/settings.xml"),
    home(".m2/settings-security.xml"),
    home(".gradle/gradle.properties"),
    home(".config/composer/auth.json"),
    home(".composer/auth.json"),
    home(".nuget/NuGet/NuGet.Config"),
    home(".bundle/config"),
    // Forges, containers, clusters, clouds.
    home_dir(".config/gh"),
    home_dir(".config/hub"),
    home(".config/glab-cli/config.yml"),
    home(".docker/config.json"),
    home_dir(".kube"),
    home_dir(".aws"),
    home_dir(".azure"),
    home_dir(".config/gcloud"),
    home_dir(".oci"),
    home_dir(".config/doctl"),
    home_dir(".terraform.d"),
    home(".vault-token"),
    home(".s3cfg"),
    home(".boto"),
    home_dir(".config/rclone"),
    home_dir(".fly"),
    home_dir(".config/netlify"),
    home_dir(".config/.wrangler"),
    home_dir(".wrangler"),
    home(".config/ngrok/ngrok.yml"),
    home(".ngrok2/ngrok.yml"),
    home_dir(".config/heroku"),
    home(".netrc"),
    home("_netrc"),
    home(".pgpass"),
    home(".my.cnf"),
    home_dir(".config/configstore"),
    home_dir(".config/stripe"),
    home_dir(".config/vercel"),
    home_dir(".local/share/com.vercel.cli"),
    home_dir(".supabase"),
    home(".git-credentials"),
    home(".config/git/credentials"),
    home_dir(".config/op"),
    home_dir(".op"),
    // Keys and keyrings.
    home_dir(".gnupg"),
    home_dir(".password-store"),
    home_dir(".local/share/keyrings"),
    home_dir(".local/share/kwalletd"),
    home_dir("Library/Keychains"),
    home_dir(".pki"),
    // Browser profiles and cookies.
    home_dir(".mozilla"),
    home_dir("snap/firefox"),
    home_dir("snap/chromium"),
    home_dir(".var/app"),
    home_dir(".thunderbird"),
    home_dir(".config/google-chrome"),
    home_dir(".config/chromium"),
    home_dir(".config/BraveSoftware"),
    home_dir(".config/microsoft-edge"),
    home_dir(".config/vivaldi"),
    home_dir(".config/opera"),
    home_dir("Library/Application Support/Google/Chrome"),
    home_dir("Library/Application Support/Firefox"),
    home_dir("Library/Application Support/BraveSoftware"),
    home_dir("Library/Application Support/Microsoft Edge"),
    home_dir("Library/Safari"),
    home_dir("Library/Cookies"),
    // Shell and REPL histories (commands typed with tokens in them).
    home(".bash_history"),
    home(".zsh_history"),
    home(".zhistory"),
    home(".histfile"),
    home(".sh_history"),
    home(".history"),
    home(".local/share/fish/fish_history"),
    home(".config/fish/fish_history"),
    home(".python_history"),
    home(".node_repl_history"),
    home(".ts_node_repl_history"),
    home(".irb_history"),
    home(".psql_history"),
    home(".mysql_history"),
    home(".sqlite_history"),
    home(".rediscli_history"),
    home(".lesshst"),
    home(".*_history"),
    home_dir(".zsh_sessions"),
    home(".local/share/zsh/history"),
    home_dir(".local/share/atuin"),
    // Gatehouse's data and configuration (tokens, ledger, signing key).
    home_dir(".local/share/gatehouse"),
    home_dir(".config/gatehouse"),
    home_dir("Library/Application Support/gatehouse"),
    // The agents' credentials and home-level settings (hooks live there).
    home(".claude.json"),
    home(".claude/.credentials.json"),
    home(".claude/settings.json"),
    home(".claude/settings.local.json"),
    home(".codex/auth.json"),
    home(".codex/config.toml"),
    home(".gemini/oauth_creds.json"),
    home(".gemini/settings.json"),
    home(".cursor/mcp.json"),
    home(".cursor/hooks.json"),
    home_dir(".config/github-copilot"),
    // The system's.
    abs("/etc/shadow"),
    abs("/etc/shadow-"),
    abs("/etc/gshadow"),
    abs("/etc/gshadow-"),
    abs("/etc/master.passwd"),
    abs("/etc/sudoers"),
    abs_dir("/etc/sudoers.d"),
    abs("/etc/ssh/ssh_host_*key"),
    abs_dir("/etc/ssl/private"),
    abs_dir("/var/run/secrets"),
    abs_dir("/run/secrets"),
    abs("/proc/*/environ"),
    abs("/proc/*/mem"),
    abs("/proc/*/task/*/environ"),
    abs("/proc/*/task/*/mem"),
    abs("/proc/kcore"),
    abs("/dev/mem"),
    abs("/dev/kmem"),
    abs_dir("/root"),
];

/// The project's secrets: environment files and key material a project may hold. Secret, but
/// the user may want them read (builtin:developer pauses).
pub const PROJECT_SECRETS: &[Entry] = &[
    anywhere(".env"),
    anywhere(".env.*"),
    anywhere("*.env"),
    anywhere(".secrets"),
    anywhere(".secrets.*"),
    anywhere("secrets.yml"),
    anywhere("secrets.yaml"),
    anywhere("secrets.json"),
    anywhere("secrets.toml"),
    anywhere(".dev.vars"),
    anywhere(".pgpass"),
    anywhere("kubeconfig"),
    anywhere("*.pem"),
    anywhere("*.key"),
    anywhere("*.p12"),
    anywhere("*.pfx"),
    anywhere("*.jks"),
    anywhere("*.keystore"),
    anywhere("id_rsa"),
    anywhere("id_ed25519"),
    anywhere("id_ecdsa"),
    anywhere("credentials.json"),
    anywhere("service-account*.json"),
    anywhere(".npmrc"),
    anywhere(".pypirc"),
    anywhere(".netrc"),
    anywhere("terraform.tfstate"),
    anywhere("*.tfvars"),
];

/// Files something runs or loads by itself, in any directory (a project's, the home's): git's
/// configuration and hooks, direnv, editors' tasks, agent hosts' settings, hooks, commands,
/// instructions and MCP servers, build tools' configuration that names programs to run.
/// Writing one is never allowed by builtin:developer (pause at least).
pub const PERSISTENCE: &[Entry] = &[
    anywhere(".git/config"),
    anywhere_dir(".git/hooks"),
    anywhere(".git/info/attributes"),
    anywhere("*.git/config"),
    anywhere_dir("*.git/hooks"),
    anywhere_dir(".git"),
    anywhere(".gitmodules"),
    anywhere_dir(".husky"),
    anywhere(".pre-commit-config.yaml"),
    anywhere(".envrc"),
    anywhere(".env.local.sh"),
    anywhere_dir(".vscode"),
    anywhere_dir(".idea"),
    anywhere_dir(".devcontainer"),
    anywhere(".mcp.json"),
    anywhere_dir(".claude"),
    anywhere_dir(".cursor"),
    anywhere_dir(".gemini"),
    anywhere_dir(".codex"),
    anywhere_dir(".windsurf"),
    anywhere_dir(".continue"),
    anywhere_dir(".clinerules"),
    anywhere_dir(".roo"),
    anywhere_dir(".amazonq"),
    anywhere(".cursorrules"),
    anywhere(".windsurfrules"),
    anywhere(".aider.conf.yml"),
    anywhere("CLAUDE.md"),
    anywhere("CLAUDE.local.md"),
    anywhere("AGENTS.md"),
    anywhere("AGENT.md"),
    anywhere("GEMINI.md"),
    anywhere(".github/copilot-instructions.md"),
    anywhere_dir(".github/instructions"),
    anywhere_dir(".github/prompts"),
    anywhere_dir(".cargo/config"),
    anywhere(".cargo/config.toml"),
    anywhere(".npmrc"),
    anywhere(".yarnrc"),
    anywhere(".yarnrc.yml"),
    anywhere(".pnpmfile.cjs"),
    anywhere("rust-toolchain"),
    anywhere("rust-toolchain.toml"),
    anywhere("sitecustomize.py"),
    anywhere("usercustomize.py"),
    anywhere("*.pth"),
    anywhere_dir("node_modules/.bin"),
    anywhere_dir(".venv/bin"),
    anywhere_dir("venv/bin"),
];

/// Persistence that runs code the next time git or an agent host starts, with no one asked: git's
/// configuration (`core.fsmonitor`, `core.hooksPath`...) and hooks, the agents' hook settings.
/// Writing one is rejected by builtin:developer.
pub const HOOKS: &[Entry] = &[
    anywhere(".git/config"),
    anywhere_dir(".git/hooks"),
    anywhere("*.git/config"),
    anywhere_dir("*.git/hooks"),
    anywhere(".claude/settings.json"),
    anywhere(".claude/settings.local.json"),
    anywhere_dir(".claude/hooks"),
    anywhere(".cursor/hooks.json"),
    anywhere(".gemini/settings.json"),
    anywhere_dir(".codex"),
    // System-wide (managed) settings of the agent hosts: they override the user's, hooks included.
    abs_dir("/etc/claude-code"),
    abs_dir("/Library/Application Support/ClaudeCode"),
    abs_dir("/etc/codex"),
    abs_dir("/etc/gemini-cli"),
    abs_dir("/Library/Application Support/GeminiCli"),
    abs_dir("/etc/cursor"),
];

/// Home-level persistence: shell start-up files, SSH access, scheduled jobs, services, login
/// items, the user's git and tool configuration, directories on `PATH`. Writing one is
/// rejected by builtin:developer.
pub const HOME_PERSISTENCE: &[Entry] = &[
    home(".bashrc"),
    home(".bash_profile"),
    home(".bash_login"),
    home(".bash_logout"),
    home(".bash_aliases"),
    home(".profile"),
    home(".zshrc"),
    home(".zprofile"),
    home(".zshenv"),
    home(".zlogin"),
    home(".zlogout"),
    home(".kshrc"),
    home(".mkshrc"),
    home(".cshrc"),
    home(".tcshrc"),
    home(".inputrc"),
    home(".xprofile"),
    home(".xinitrc"),
    home(".xsessionrc"),
    home(".pam_environment"),
    home_dir(".config/fish"),
    home_dir(".config/environment.d"),
    home_dir(".config/autostart"),
    home_dir(".config/systemd"),
    home_dir(".local/share/systemd"),
    home_dir(".config/upstart"),
    home_dir("Library/LaunchAgents"),
    home_dir("Library/StartupItems"),
    home(".ssh/authorized_keys*"),
    home(".ssh/config"),
    home(".ssh/rc"),
    home(".ssh/environment"),
    home(".gitconfig"),
    home_dir(".config/git"),
    home_dir(".git-templates"),
    home_dir(".git_template"),
    home(".vimrc"),
    home_dir(".vim"),
    home_dir(".config/nvim"),
    home(".emacs"),
    home_dir(".emacs.d"),
    home(".tmux.conf"),
    home(".screenrc"),
    home(".wgetrc"),
    home(".curlrc"),
    home(".npmrc"),
    home(".pythonrc"),
    home(".pythonstartup"),
    home_dir(".ipython/profile_default/startup"),
    home(".cargo/config"),
    home(".cargo/config.toml"),
    home_dir(".cargo/bin"),
    home_dir(".local/bin"),
    home_dir("bin"),
    home_dir(".claude"),
    home_dir(".codex"),
    home_dir(".gemini"),
    home_dir(".cursor"),
    home(".claude.json"),
    home_dir(".config/Code/User"),
    home_dir("Library/Application Support/Code/User"),
    abs_dir("/etc"),
    abs_dir("/var/spool/cron"),
    abs_dir("/var/spool/anacron"),
    abs_dir("/lib/systemd"),
    abs_dir("/usr/lib/systemd"),
    abs_dir("/Library/LaunchAgents"),
    abs_dir("/Library/LaunchDaemons"),
    abs_dir("/Library/StartupItems"),
    abs_dir("/usr/local/bin"),
    abs_dir("/usr/local/sbin"),
    abs_dir("/usr/bin"),
    abs_dir("/usr/sbin"),
    abs_dir("/bin"),
    abs_dir("/sbin"),
];

/// The sets a policy file can name in a glob list, and their entries.
pub const NAMED_SETS: &[(&str, &[Entry])] = &[
    ("@secrets", SECRETS),
    ("@project-secrets", PROJECT_SECRETS),
    ("@persistence", PERSISTENCE),
    ("@hooks", HOOKS),
    ("@home-persistence", HOME_PERSISTENCE),
];

/// Where the home directory may be when the engine does not know it: the generated globs also
/// match these spellings, so `/home/dev/.npmrc` is `~/.npmrc` without a resolver.
const HOME_SPELLINGS: &[&str] = &["~", "/home/*", "/root", "/Users/*"];

/// The globs a policy glob list gets for `name` (`"@secrets"`...), or `None` when `name` is not
/// a set. Every spelling a path rule may see is covered (see the module docs).
pub(crate) fn named_set(name: &str) -> Option<Vec<String>> {
    let (_, entries) = NAMED_SETS.iter().find(|(set, _)| *set == name)?;
    let mut globs = Vec::new();
    for entry in *entries {
        let prefixes: Vec<String> = match entry.place {
            Place::Home => HOME_SPELLINGS.iter().map(|h| format!("{h}/")).collect(),
            Place::Absolute => vec![String::new()],
            // As written relative (`.env`), and under any directory (`*` crosses `/` in policy
            // globs).
            Place::Anywhere => vec![String::new(), "*/".to_owned()],
        };
        // Case variants matter where a project or a tool picks the spelling (`.GIT/config`);
        // home and system paths are matched as the system names them (fewer states: faster
        // loading).
        let path = match entry.place {
            Place::Anywhere => fold_case(entry.path),
            Place::Home | Place::Absolute => entry.path.to_owned(),
        };
        for prefix in prefixes {
            let path = format!("{prefix}{path}");
            if entry.dir {
                globs.push(format!("{path}/**"));
            }
            globs.push(path);
        }
    }
    Some(globs)
}

/// The secrets (and, when `with_project` is set, the project's secrets) as absolute globs for
/// one home and project directory, for the sandbox to deny reads of. Directories are given as
/// `DIR` and `DIR/**`; globs use `*` within one path segment and `**` across segments. Case is
/// kept as written (the sandbox sees real names).
pub fn secret_paths(home: &Path, project: &Path, with_project: bool) -> Vec<String> {
    let home = home.to_string_lossy();
    let home = home.trim_end_matches('/');
    let project = project.to_string_lossy();
    let project = project.trim_end_matches('/');
    let mut out = Vec::new();
    let mut push = |path: String, dir: bool| {
        if dir {
            out.push(format!("{path}/**"));
        }
        out.push(path);
    };
    for entry in SECRETS {
        match entry.place {
            Place::Home => push(format!("{home}/{}", entry.path), entry.dir),
            Place::Absolute => push(entry.path.to_owned(), entry.dir),
            Place::Anywhere => {
                push(format!("{home}/**/{}", entry.path), entry.dir);
            }
        }
    }
    if with_project {
        for entry in PROJECT_SECRETS {
            push(format!("{project}/{}", entry.path), entry.dir);
            push(format!("{project}/**/{}", entry.path), entry.dir);
        }
    }
    out
}

/// Each ASCII letter outside a `[...]` class as a class of both cases: `.git` → `.[gG][iI][tT]`.
fn fold_case(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() * 4);
    let mut in_class = false;
    let mut escaped = false;
    for c in pattern.chars() {
        if escaped {
            out.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                out.push(c);
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            c if !in_class && c.is_ascii_alphabetic() => {
                out.push('[');
                out.push(c.to_ascii_lowercase());
                out.push(c.to_ascii_uppercase());
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::compile_glob;

    fn matches(set: &str, path: &str) -> bool {
        named_set(set)
            .unwrap()
            .iter()
            .any(|g| compile_glob(g).unwrap().compile_matcher().is_match(path))
    }

    #[test]
    fn every_generated_glob_compiles() {
        for (name, _) in NAMED_SETS {
            for glob in named_set(name).unwrap() {
                assert!(compile_glob(&glob).is_ok(), "{name}: {glob}");
            }
        }
        assert!(named_set("@nothing").is_none());
    }

    #[test]
    fn sets_match_every_spelling() {
        for path in [
            "~/.npmrc",
            "/home/dev/.npmrc",
            "/root/.npmrc",
            "/Users/me/.npmrc",
            "~/.ssh/id_rsa",
            "~/.ssh",
            "~/.aws/credentials",
            "~/.aws",
            "~/.config/gh/hosts.yml",
            "/proc/self/environ",
            "/proc/1234/environ",
            "/etc/shadow",
            "~/.local/share/gatehouse/approver.token",
            "~/.mozilla/firefox/x.default/cookies.sqlite",
            "~/.bash_history",
            "~/.local/share/fish/fish_history",
        ] {
            assert!(matches("@secrets", path), "{path}");
        }
        for path in [
            "~/.ssh/id_rsa.pub",
            "~/.sshx",
            "/home/dev/project/src/main.rs",
            "~/.npmrc.bak/x",
        ] {
            assert!(!matches("@secrets", path), "{path}");
        }
        for path in [
            "/w/p/.git/config",
            "/w/p/.GIT/config",
            "/w/p/.git/hooks/pre-commit",
            ".git/hooks/pre-commit",
            "/w/p/.claude/commands/x.md",
            "/w/p/.vscode/tasks.json",
            "/w/p/.envrc",
            "/w/p/.mcp.json",
            "AGENTS.md",
            "/w/p/sub/CLAUDE.md",
        ] {
            assert!(matches("@persistence", path), "{path}");
        }
        for path in ["/w/p/src/git.rs", "/w/p/.gitignore", "/w/p/README.md"] {
            assert!(!matches("@persistence", path), "{path}");
        }
        assert!(matches("@project-secrets", "/w/p/.env"));
        assert!(matches("@project-secrets", ".env.production"));
        assert!(!matches("@project-secrets", "/w/p/.envrc"));
        assert!(matches("@home-persistence", "~/.bashrc"));
        assert!(matches(
            "@home-persistence",
            "/home/dev/.config/systemd/user/x.service"
        ));
    }

    #[test]
    fn the_sandbox_gets_absolute_globs() {
        let paths = secret_paths(Path::new("/home/u"), Path::new("/w/p"), true);
        assert!(paths.contains(&"/home/u/.npmrc".to_owned()));
        assert!(paths.contains(&"/home/u/.aws/**".to_owned()));
        assert!(paths.contains(&"/proc/*/environ".to_owned()));
        assert!(paths.contains(&"/w/p/.env".to_owned()));
        assert!(paths.iter().all(|p| p.starts_with('/')));
        let without = secret_paths(Path::new("/home/u"), Path::new("/w/p"), false);
        assert!(!without.iter().any(|p| p.starts_with("/w/p")));
    }
}
