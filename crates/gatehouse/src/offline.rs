//! Subcommands that work on files, without a running daemon: checking and testing policies,
//! and evaluating the built-in classifier.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use gatehouse_classifier::{BuiltinClassifier, EvalSet, evaluate, evaluate_by_source};
use gatehouse_daemon::policy_store::FsResolver;
use gatehouse_policy::{ActionRef, Effect, Policy};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::display::terminal_safe;

/// A policy file, or a builtin by name (`builtin:developer`, ...).
fn load_policy(path: &Path) -> Result<Policy> {
    let text = match path.to_str().and_then(gatehouse_policy::builtin_source) {
        Some(source) => source.to_owned(),
        None => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
    };
    Policy::from_toml(&text)
        .map_err(|errors| anyhow::anyhow!("{} has errors:\n{errors}", path.display()))
}

/// `gatehouse policy check FILE`: every error at once, with line and column.
pub fn policy_check(path: &Path) -> Result<ExitCode> {
    let policy = load_policy(path)?;
    println!(
        "{}: ok ({} rules, default {}, opaque {})",
        path.display(),
        policy.rule_count(),
        policy.default_effect().as_str(),
        policy.opaque_effect().as_str()
    );
    Ok(ExitCode::SUCCESS)
}

/// `gatehouse policy import-claude PATH`: a Claude Code settings file as policy TOML, on stdout
/// or in `output`; what could not be translated is warned about on stderr (and listed in the
/// file as comments).
pub fn import_claude(
    path: &Path,
    output: Option<&Path>,
    include_builtin: bool,
    project_root: Option<std::path::PathBuf>,
) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    // `.claude/settings.json` sits in the project root Claude Code's `/path` patterns start at.
    let project_root = project_root.or_else(|| {
        let dir = std::path::absolute(path).ok()?.parent()?.to_path_buf();
        (dir.file_name()? == ".claude").then(|| dir.parent().map(Path::to_path_buf))?
    });
    let options = gatehouse_policy::claude::ImportOptions {
        include_builtin,
        project_root: project_root.map(|root| root.display().to_string()),
        source_name: path.display().to_string(),
    };
    let import = gatehouse_policy::claude::import(&text, &options)
        .with_context(|| format!("cannot import {}", path.display()))?;
    for warning in &import.warnings {
        eprintln!("warning: {}", terminal_safe(warning, 500));
    }
    match output {
        Some(file) => {
            std::fs::write(file, &import.toml)
                .with_context(|| format!("cannot write {}", file.display()))?;
            eprintln!("{}: {} rules", file.display(), import.rules);
        }
        None => print!("{}", import.toml),
    }
    Ok(ExitCode::SUCCESS)
}

/// One case of `gatehouse policy test`: an action and the effect the policy must give it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    #[serde(default)]
    name: Option<String>,
    tool: String,
    input: Map<String, Value>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    agent: Option<String>,
    expect: Effect,
}

/// `gatehouse policy test FILE CASES`: CASES is JSON lines, one case each; exits 1 on any
/// mismatch, so it can guard a policy in a project's CI.
pub fn policy_test(policy_path: &Path, cases_path: &Path) -> Result<ExitCode> {
    let policy = load_policy(policy_path)?;
    let text = std::fs::read_to_string(cases_path)
        .with_context(|| format!("cannot read {}", cases_path.display()))?;
    let (mut passed, mut failed) = (0, 0);
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let case: Case = serde_json::from_str(line)
            .with_context(|| format!("{}:{line_no}: not a case", cases_path.display()))?;
        let action = ActionRef {
            tool: &case.tool,
            input: &case.input,
            session_id: case.session_id.as_deref(),
            agent: case.agent.as_deref(),
            cwd: case.cwd.as_deref(),
        };
        let evaluation = policy.evaluate_with(&action, &FsResolver);
        let name = case
            .name
            .clone()
            .unwrap_or_else(|| format!("line {line_no}"));
        if evaluation.effect == case.expect {
            passed += 1;
        } else {
            failed += 1;
            println!(
                "FAIL {}: expected {}, got {} ({}: {})",
                terminal_safe(&name, 80),
                case.expect.as_str(),
                evaluation.effect.as_str(),
                evaluation.rule_id.as_deref().unwrap_or("default"),
                terminal_safe(&evaluation.reason, 200),
            );
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The action `gatehouse policy explain` explains.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExplainAction {
    tool: String,
    input: Map<String, Value>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    agent: Option<String>,
}

/// `gatehouse policy explain FILE ACTION [--json]`: ACTION is JSON, or `-` for standard input;
/// FILE is a policy file or a builtin name (`builtin:developer`).
pub fn policy_explain(path: &Path, action: &str, json: bool) -> Result<ExitCode> {
    let policy = match path.to_str().and_then(gatehouse_policy::builtin_source) {
        Some(source) => Policy::from_toml(source)
            .map_err(|errors| anyhow::anyhow!("{} has errors:\n{errors}", path.display()))?,
        None => load_policy(path)?,
    };
    let text = if action == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("cannot read the action from standard input")?;
        text
    } else {
        action.to_owned()
    };
    let action: ExplainAction = serde_json::from_str(&text).context(
        "the action must be JSON such as {\"tool\": \"Bash\", \"input\": {\"command\": \"ls\"}, \"cwd\": \"/work/app\"}",
    )?;
    let explanation = policy.explain(
        &ActionRef {
            tool: &action.tool,
            input: &action.input,
            session_id: action.session_id.as_deref(),
            agent: action.agent.as_deref(),
            cwd: action.cwd.as_deref(),
        },
        &FsResolver,
    );
    // An allow that runs confined: what its sandbox profile allows (`gatehouse sandbox explain`).
    let profile = explanation.verdict.confine.as_ref().map(|confine| {
        match gatehouse_sandbox::profile::builtin(&confine.profile) {
            Some(found) => (
                gatehouse_sandbox::profile::describe(&confine.profile, &found),
                Some(found.summary()),
            ),
            None => (
                format!(
                    "sandbox profile {}: not a builtin profile (`gatehouse sandbox run` refuses it unless given its --profile-file)\n",
                    confine.profile
                ),
                None,
            ),
        }
    });
    if json {
        let mut value = serde_json::to_value(&explanation)?;
        if let (Some((_, summary)), Some(confine)) =
            (&profile, value.pointer_mut("/verdict/confine"))
        {
            confine["summary"] = serde_json::json!(summary);
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        // Rule ids, reasons and command words come from files and agents: keep them inert.
        for line in explanation.to_string().lines() {
            println!("{}", terminal_safe(line, 2000));
        }
        if let Some((text, _)) = &profile {
            for line in text.lines() {
                println!("{}", terminal_safe(line, 2000));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `gatehouse classifier eval`: the built-in model's figures on held-out data.
pub fn classifier_eval(weights: Option<&Path>, data: Option<&Path>) -> Result<ExitCode> {
    let model = match weights {
        Some(path) => BuiltinClassifier::from_file(path)?,
        None => BuiltinClassifier::embedded()?,
    };
    let set = eval_set(data)?;
    println!(
        "model {} ({})",
        gatehouse_classifier::Classifier::model(&model),
        weights.map_or("embedded".into(), |p| p.display().to_string())
    );
    println!("all      {}", evaluate(&model, &set.examples));
    for source in evaluate_by_source(&model, &set.examples) {
        println!("{:<8} {}", source.source, source.metrics);
    }
    Ok(ExitCode::SUCCESS)
}

/// `gatehouse classifier eval --model minilm` in a build without the neural tier.
#[cfg(not(feature = "minilm"))]
pub fn classifier_eval_minilm(
    _weights: Option<&Path>,
    _data: Option<&Path>,
    _minilm_dir: Option<&Path>,
) -> Result<ExitCode> {
    bail!(
        "this gatehouse was built without the neural tier: \
         cargo build --release -p gatehouse --features minilm"
    )
}

/// `gatehouse classifier eval --model minilm`: the built-in model alone and the neural tier
/// stacked on it, on the same rows, overall and by source.
#[cfg(feature = "minilm")]
pub fn classifier_eval_minilm(
    weights: Option<&Path>,
    data: Option<&Path>,
    minilm_dir: Option<&Path>,
) -> Result<ExitCode> {
    use gatehouse_classifier::{BlockingPool, MiniLmClassifier, evaluate_with};

    let dir = minilm_dir.context(
        "--model minilm needs --minilm-dir (or GATEHOUSE_MINILM_DIR): the directory \
         scripts/fetch-minilm.sh printed",
    )?;
    let builtin = match weights {
        Some(path) => BuiltinClassifier::from_file(path)?,
        None => BuiltinClassifier::embedded()?,
    };
    let stacked = MiniLmClassifier::load(dir, builtin.clone(), BlockingPool::new(1))?;
    let set = eval_set(data)?;
    let mut sources: Vec<&str> = set.examples.iter().map(|e| e.source.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    let mut failure = None;
    let mut report = |name: &str, rows: &[gatehouse_classifier::EvalExample]| {
        println!("{name}");
        println!("  builtin        {}", evaluate(&builtin, rows));
        let metrics = evaluate_with(rows, stacked.threshold(), |e| {
            stacked
                .probability(&e.tool, &e.input, e.context.as_ref())
                .unwrap_or_else(|err| {
                    failure.get_or_insert(err.to_string());
                    1.0
                })
        });
        println!("  minilm+builtin {metrics}");
    };
    println!(
        "models {} and {} (MiniLM from {}); {} rows",
        gatehouse_classifier::Classifier::model(&builtin),
        gatehouse_classifier::Classifier::model(&stacked),
        dir.display(),
        set.examples.len()
    );
    report("all", &set.examples);
    for source in sources {
        let rows: Vec<_> = set
            .examples
            .iter()
            .filter(|e| e.source == source)
            .cloned()
            .collect();
        report(source, &rows);
    }
    match failure {
        Some(err) => bail!("the MiniLM model failed on some rows (scored as 1): {err}"),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// The eval set in `data`, or the embedded held-out set; never empty.
fn eval_set(data: Option<&Path>) -> Result<EvalSet> {
    let set = match data {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            EvalSet::from_jsonl(&text)
                .with_context(|| format!("{} is not an eval set", path.display()))?
        }
        None => EvalSet::embedded().context("the embedded eval set is malformed")?,
    };
    if set.examples.is_empty() {
        bail!("the eval set is empty");
    }
    Ok(set)
}
