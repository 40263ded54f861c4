//! Features of one action for the built-in model: the Rust twin of `tools/train/features.py`.
//!
//! Both sides must give the same sparse vector for the same action, or the trained weights mean
//! nothing here; `tests/builtin.rs` checks it on vectors the trainer writes. So everything works on
//! UTF-8 bytes, lowercases ASCII only, and hashes with 32-bit FNV-1a, written out below.
//!
//! The vector, for an action's text (tool name, then the input's keys and values, keys sorted) and
//! the request's `context` (`task`, `prompt`, `previous_output`):
//! - character 3–5-grams and word 1–2-grams of the action text, each family scaled by
//!   `1/sqrt(count)`;
//! - character 3–5-grams of the untrusted context (`prompt` and `previous_output`);
//! - named structural features (pipe into a shell, URL to an IP literal, sensitive paths, secrets,
//!   encoded blobs, payment amounts, IBANs, persistence, reverse shells, destructive commands,
//!   uploads, decoding), each also crossed with "the task is (un)related" when there is a task;
//! - context features: word-overlap similarity of task and action (binned), per-category
//!   match/mismatch of task and action (payment, email, credentials, network, delete), and
//!   injection-style phrases in the untrusted context;
//! - deployment-memory features, only when the request carries [`HistoryFacts`]: `hist` (facts
//!   present), `hist_first_tool`, `hist_new_host` / `hist_known_host`, `hist_new_recipient` /
//!   `hist_known_recipient`, and the new-host/new-recipient facts crossed with what the action
//!   does (`hist_new_host_upload`, `_pipe_shell`, `_secret`, `_sensitive_path`, `_ip_url`,
//!   `_reverse_shell`; `hist_new_recipient_payment`, `_email`, `_iban`, `_payment_amount`).
//!   Without facts none of them fires, so such actions score as before.

use std::collections::{BTreeMap, HashSet};

use memchr::memmem;
use serde::Deserialize;

use crate::HistoryFacts;

const FNV_OFFSET: u32 = 0x811C_9DC5;
const FNV_PRIME: u32 = 0x0100_0193;

/// Bytes of action text, and of each context field, looked at; the rest is ignored.
pub const MAX_TEXT: usize = 4096;
const CHAR_MIN: usize = 3;
const CHAR_MAX: usize = 5;
const SIM_BINS: [f64; 5] = [0.0, 0.05, 0.1, 0.2, 0.35];
const LEN_BINS: [usize; 3] = [64, 256, 1024];

/// 32-bit FNV-1a of `data`, continuing from `state` ([`fnv1a`] starts from the offset basis).
pub fn fnv1a_from(mut state: u32, data: &[u8]) -> u32 {
    for &byte in data {
        state = (state ^ u32::from(byte)).wrapping_mul(FNV_PRIME);
    }
    state
}

/// 32-bit FNV-1a of `data`.
pub fn fnv1a(data: &[u8]) -> u32 {
    fnv1a_from(FNV_OFFSET, data)
}

/// Where features go: a dot product when scoring, a list in tests and explanations.
pub(crate) trait Sink {
    fn add(&mut self, index: u32, value: f64);
    /// A structural or context feature fired (for explanations); it is also `add`ed.
    fn fired(&mut self, _name: &str) {}
}

/// Word lists as the weights file stores them (`lexicon` in its header).
#[derive(Debug, Deserialize)]
pub(crate) struct WireLexicon {
    sensitive_paths: Vec<String>,
    shells: Vec<String>,
    persistence: Vec<String>,
    reverse_shell: Vec<String>,
    exfil_flags: Vec<String>,
    destructive: Vec<String>,
    injection_phrases: Vec<String>,
    stopwords: Vec<String>,
    categories: BTreeMap<String, WireCategory>,
}

#[derive(Debug, Deserialize)]
struct WireCategory {
    action: Vec<String>,
    task: Vec<String>,
}

/// Substring finders built once, at load.
struct Needles(Vec<memmem::Finder<'static>>);

impl Needles {
    fn new(words: &[String]) -> Self {
        Self(
            words
                .iter()
                .map(|w| memmem::Finder::new(w.as_bytes()).into_owned())
                .collect(),
        )
    }

    fn any_in(&self, text: &[u8]) -> bool {
        self.0.iter().any(|f| f.find(text).is_some())
    }

    fn count_in(&self, text: &[u8]) -> usize {
        self.0.iter().filter(|f| f.find(text).is_some()).count()
    }
}

struct Category {
    name: String,
    action: Needles,
    task: Needles,
}

/// The lexicon, ready to match.
pub(crate) struct Lexicon {
    sensitive_paths: Needles,
    shells: Vec<Vec<u8>>,
    persistence: Needles,
    reverse_shell: Needles,
    exfil_flags: Needles,
    destructive: Needles,
    injection_phrases: Needles,
    stopwords: HashSet<Vec<u8>>,
    categories: Vec<Category>,
}

impl Lexicon {
    pub(crate) fn new(wire: &WireLexicon) -> Self {
        Self {
            sensitive_paths: Needles::new(&wire.sensitive_paths),
            shells: wire.shells.iter().map(|s| s.as_bytes().to_vec()).collect(),
            persistence: Needles::new(&wire.persistence),
            reverse_shell: Needles::new(&wire.reverse_shell),
            exfil_flags: Needles::new(&wire.exfil_flags),
            destructive: Needles::new(&wire.destructive),
            injection_phrases: Needles::new(&wire.injection_phrases),
            stopwords: wire
                .stopwords
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect(),
            categories: wire
                .categories
                .iter()
                .map(|(name, c)| Category {
                    name: name.clone(),
                    action: Needles::new(&c.action),
                    task: Needles::new(&c.task),
                })
                .collect(),
        }
    }
}

/// Appends the text of a JSON value: object keys (sorted by bytes) and their values, strings,
/// numbers, booleans; `null` adds nothing.
fn flatten<'a>(value: &'a serde_json::Value, out: &mut Vec<std::borrow::Cow<'a, str>>) {
    use serde_json::Value;
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push(if *b { "true" } else { "false" }.into()),
        Value::Number(n) => out.push(n.to_string().into()),
        Value::String(s) => out.push(s.as_str().into()),
        Value::Array(items) => items.iter().for_each(|v| flatten(v, out)),
        Value::Object(map) => {
            // Sorted here rather than trusting the map: serde_json's `preserve_order` feature,
            // if anything in the build turns it on, keeps insertion order instead.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            for key in keys {
                out.push(key.as_str().into());
                if let Some(v) = map.get(key) {
                    flatten(v, out);
                }
            }
        }
    }
}

/// The joined text of `parts`, truncated to [`MAX_TEXT`] bytes (case kept).
fn joined(parts: &[std::borrow::Cow<'_, str>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        let room = MAX_TEXT.saturating_sub(out.len());
        let bytes = part.as_bytes();
        out.extend_from_slice(&bytes[..bytes.len().min(room)]);
        if out.len() >= MAX_TEXT {
            break;
        }
    }
    out.truncate(MAX_TEXT);
    out
}

fn context_field(context: Option<&serde_json::Value>, key: &str) -> Vec<u8> {
    let Some(value) = context.and_then(|c| c.as_object()).and_then(|c| c.get(key)) else {
        return Vec::new();
    };
    let mut parts = Vec::new();
    flatten(value, &mut parts);
    let mut text = joined(&parts);
    text.make_ascii_lowercase();
    text
}

/// `a + "\n" + b` with leading and trailing newlines removed (Python's `strip(b"\n")`).
fn join_stripped(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len() + b.len() + 1);
    out.extend_from_slice(a);
    out.push(b'\n');
    out.extend_from_slice(b);
    let start = out.iter().position(|&c| c != b'\n').unwrap_or(out.len());
    let end = out
        .iter()
        .rposition(|&c| c != b'\n')
        .map_or(start, |i| i + 1);
    out[start..end].to_vec()
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_digit() || c.is_ascii_lowercase() || c == b'_' || c >= 128
}

fn is_b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'='
}

fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_digit() || (b'a'..=b'f').contains(&c)
}

/// Maximal runs of bytes satisfying `pred`.
fn runs(text: &[u8], pred: impl Fn(u8) -> bool) -> impl Iterator<Item = &[u8]> {
    text.split(move |&c| !pred(c)).filter(|r| !r.is_empty())
}

fn words(text: &[u8]) -> Vec<&[u8]> {
    runs(text, is_word_byte).collect()
}

fn longest_run(text: &[u8], pred: impl Fn(u8) -> bool) -> usize {
    runs(text, pred).map(<[u8]>::len).max().unwrap_or(0)
}

fn pipe_into_shell(text: &[u8], shells: &[Vec<u8>]) -> bool {
    for i in memchr::memchr_iter(b'|', text) {
        let next_is_pipe = text.get(i + 1).is_none_or(|&c| c == b'|');
        let prev_is_pipe = i > 0 && text[i - 1] == b'|';
        if next_is_pipe || prev_is_pipe {
            continue;
        }
        let window = &text[i + 1..text.len().min(i + 40)];
        let mut toks = runs(window, is_word_byte);
        let mut first = toks.next();
        if first == Some(b"sudo".as_slice()) {
            first = toks.next();
        }
        if first.is_some_and(|t| shells.iter().any(|s| s.as_slice() == t)) {
            return true;
        }
    }
    false
}

/// Loopback and private IPv4 (127/8, 10/8, 192.168/16, 172.16/12); not 169.254 (cloud metadata).
fn is_local_ip(host: &[u8]) -> bool {
    let octets: Vec<u32> = host
        .split(|&c| c == b'.')
        .map(|p| p.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')))
        .collect();
    match octets.as_slice() {
        [127 | 10, ..] => true,
        [192, 168, ..] => true,
        [172, second, ..] => (16..=31).contains(second),
        _ => false,
    }
}

/// `ip_url` for a URL to a public IPv4 literal, else `local_ip_url` for a local one.
fn url_to_ip(text: &[u8]) -> Option<&'static str> {
    let mut found = None;
    for scheme in [b"http://".as_slice(), b"https://", b"ftp://"] {
        for i in memmem::find_iter(text, scheme) {
            let j = i + scheme.len();
            let k = j + text[j..]
                .iter()
                .take_while(|&&c| c.is_ascii_digit() || c == b'.')
                .count();
            let host = &text[j..k];
            let dotted = host.iter().filter(|&&c| c == b'.').count() == 3
                && host
                    .split(|&c| c == b'.')
                    .all(|p| !p.is_empty() && p.len() <= 3);
            let ends = text.get(k).is_none_or(|c| b":/ \n\"'?".contains(c));
            if dotted && ends {
                if !is_local_ip(host) {
                    return Some("ip_url");
                }
                found = Some("local_ip_url");
            }
        }
    }
    found
}

/// A secret's known prefix, the least length of its body, and the bytes its body may hold.
type SecretShape<'a> = (&'a [u8], usize, &'a dyn Fn(u8) -> bool);

fn secret_shaped(raw: &[u8]) -> bool {
    let upper_or_digit = |c: u8| c.is_ascii_digit() || c.is_ascii_uppercase();
    let prefixed: [SecretShape<'_>; 7] = [
        (b"AKIA", 16, &upper_or_digit),
        (b"ghp_", 30, &is_token),
        (b"github_pat_", 30, &is_token),
        (b"sk-", 32, &is_token),
        (b"xoxb-", 20, &is_token),
        (b"xoxp-", 20, &is_token),
        (b"glpat-", 20, &is_token),
    ];
    for (prefix, min, pred) in prefixed {
        for i in memmem::find_iter(raw, prefix) {
            let j = i + prefix.len();
            if raw[j..].iter().take_while(|&&c| pred(c)).count() >= min {
                return true;
            }
        }
    }
    memmem::find(raw, b"-----BEGIN").is_some() && memmem::find(raw, b"PRIVATE KEY").is_some()
}

fn payment_amount(text: &[u8], toks: &[&[u8]]) -> bool {
    for sign in [b"$".as_slice(), "€".as_bytes(), "£".as_bytes()] {
        for i in memmem::find_iter(text, sign) {
            if text.get(i + sign.len()).is_some_and(u8::is_ascii_digit) {
                return true;
            }
        }
    }
    const CODES: [&[u8]; 7] = [b"usd", b"eur", b"gbp", b"btc", b"eth", b"usdt", b"chf"];
    let starts_with_digit = |t: &[u8]| t.first().is_some_and(u8::is_ascii_digit);
    toks.windows(2).any(|pair| {
        let (a, b) = (pair[0], pair[1]);
        (CODES.contains(&a) && starts_with_digit(b)) || (CODES.contains(&b) && starts_with_digit(a))
    })
}

fn iban_shaped(raw: &[u8]) -> bool {
    let squeezed: Vec<u8> = raw.iter().copied().filter(|&c| c != b' ').collect();
    runs(&squeezed, |c| c.is_ascii_alphanumeric()).any(|t| {
        (15..=34).contains(&t.len())
            && t[0].is_ascii_uppercase()
            && t[1].is_ascii_uppercase()
            && t[2].is_ascii_digit()
            && t[3].is_ascii_digit()
            && t.iter()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    })
}

fn content_words<'a>(text: &'a [u8], stop: &HashSet<Vec<u8>>) -> HashSet<&'a [u8]> {
    runs(text, is_word_byte)
        .filter(|w| w.len() >= 3 && !stop.contains(*w) && !w.iter().all(u8::is_ascii_digit))
        .collect()
}

fn jaccard(a: &HashSet<&[u8]>, b: &HashSet<&[u8]>) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let inter = a.intersection(b).count();
    inter as f64 / (a.len() + b.len() - inter) as f64
}

/// Adds hashed features to a sink, for one dimension (`mask` = 2^bits − 1).
struct Emitter<'s, S: Sink> {
    mask: u32,
    sink: &'s mut S,
}

impl<S: Sink> Emitter<'_, S> {
    fn named(&mut self, name: &str) {
        let index = fnv1a_from(fnv1a(b"s"), name.as_bytes()) & self.mask;
        self.sink.add(index, 1.0);
        self.sink.fired(name);
    }

    fn char_ngrams(&mut self, namespace: &[u8], text: &[u8]) {
        let n = text.len();
        let count: usize = (CHAR_MIN..=CHAR_MAX)
            .map(|k| (n + 1).saturating_sub(k))
            .sum();
        if count == 0 {
            return;
        }
        let scale = 1.0 / (count as f64).sqrt();
        let base = fnv1a(namespace);
        for i in 0..=(n - CHAR_MIN) {
            let mut h = base;
            for (j, &byte) in text[i..n.min(i + CHAR_MAX)].iter().enumerate() {
                h = (h ^ u32::from(byte)).wrapping_mul(FNV_PRIME);
                if j + 1 >= CHAR_MIN {
                    self.sink.add(h & self.mask, scale);
                }
            }
        }
    }

    fn word_ngrams(&mut self, toks: &[&[u8]]) {
        let count = toks.len() + toks.len().saturating_sub(1);
        if count == 0 {
            return;
        }
        let scale = 1.0 / (count as f64).sqrt();
        let uni = fnv1a(b"w");
        let bi = fnv1a(b"b");
        for tok in toks {
            self.sink.add(fnv1a_from(uni, tok) & self.mask, scale);
        }
        for pair in toks.windows(2) {
            let h = fnv1a_from(fnv1a_from(fnv1a_from(bi, pair[0]), b" "), pair[1]);
            self.sink.add(h & self.mask, scale);
        }
    }
}

/// Feeds the features of one action into `sink`.
pub(crate) fn featurize<S: Sink>(
    tool: &str,
    input: &serde_json::Value,
    context: Option<&serde_json::Value>,
    history: Option<&HistoryFacts>,
    lexicon: &Lexicon,
    dim_bits: u32,
    sink: &mut S,
) {
    let mut out = Emitter {
        mask: (1u32 << dim_bits) - 1,
        sink,
    };
    let mut parts = vec![std::borrow::Cow::Borrowed(tool)];
    flatten(input, &mut parts);
    let raw = joined(&parts);
    let text = raw.to_ascii_lowercase();

    out.char_ngrams(b"a", &text);
    let toks = words(&text);
    out.word_ngrams(&toks);
    let len_bin = LEN_BINS.iter().filter(|&&b| text.len() >= b).count();
    out.named(["len0", "len1", "len2", "len3"][len_bin]);

    let task = context_field(context, "task");
    let prompt = context_field(context, "prompt");
    let previous = context_field(context, "previous_output");
    let user = join_stripped(&task, &prompt);
    let untrusted = join_stripped(&prompt, &previous);

    if !untrusted.is_empty() {
        out.char_ngrams(b"x", &untrusted);
        let hits = lexicon.injection_phrases.count_in(&untrusted);
        out.named(["ctx_inj0", "ctx_inj1", "ctx_inj2"][hits.min(2)]);
    }

    let has_task = !user.is_empty();
    let mut offtask = false;
    if has_task {
        let sim = jaccard(
            &content_words(&user, &lexicon.stopwords),
            &content_words(&text, &lexicon.stopwords),
        );
        let bin = SIM_BINS.iter().filter(|&&b| sim > b).count();
        out.named(["sim0", "sim1", "sim2", "sim3", "sim4", "sim5"][bin]);
        offtask = bin == 0;
    } else {
        out.named("noctx");
    }

    let mut categories = Vec::new();
    for category in &lexicon.categories {
        if category.action.any_in(&text) {
            categories.push(category.name.as_str());
            let relation = if !has_task {
                "noctx"
            } else if category.task.any_in(&user) {
                "match"
            } else {
                "mismatch"
            };
            out.named(&format!("cat_{}_{relation}", category.name));
        }
    }

    let ip = url_to_ip(&text);
    let fired = [
        ("pipe_shell", pipe_into_shell(&text, &lexicon.shells)),
        ("ip_url", ip == Some("ip_url")),
        ("local_ip_url", ip == Some("local_ip_url")),
        ("sensitive_path", lexicon.sensitive_paths.any_in(&text)),
        ("secret", secret_shaped(&raw)),
        ("b64_blob", longest_run(&raw, is_b64) >= 40),
        ("hex_blob", longest_run(&text, is_hex) >= 32),
        ("payment_amount", payment_amount(&text, &toks)),
        ("iban", iban_shaped(&raw)),
        ("persistence", lexicon.persistence.any_in(&text)),
        ("reverse_shell", lexicon.reverse_shell.any_in(&text)),
        ("destructive", lexicon.destructive.any_in(&text)),
        (
            "upload",
            (memmem::find(&text, b"curl").is_some() || memmem::find(&text, b"wget").is_some())
                && lexicon.exfil_flags.any_in(&text),
        ),
        (
            "decode",
            [
                b"base64 -d".as_slice(),
                b"base64 --decode",
                b"b64decode",
                b"frombase64",
            ]
            .iter()
            .any(|n| memmem::find(&text, n).is_some()),
        ),
        (
            "url",
            memmem::find(&text, b"http://").is_some() || memmem::find(&text, b"https://").is_some(),
        ),
    ];
    for (name, on) in fired {
        if on {
            out.named(name);
            if has_task {
                let side = if offtask { "offtask" } else { "ontask" };
                out.named(&format!("{name}_{side}"));
            }
        }
    }

    if let Some(facts) = history {
        let on = |name: &str| fired.iter().any(|&(n, f)| f && n == name);
        history_features(&mut out, facts, &categories, on);
    }
}

/// The structural features a host never contacted before makes worse.
const NEW_HOST_CROSSES: [&str; 6] = [
    "upload",
    "pipe_shell",
    "secret",
    "sensitive_path",
    "ip_url",
    "reverse_shell",
];
/// The structural features a recipient never named before makes worse.
const NEW_RECIPIENT_CROSSES: [&str; 2] = ["iban", "payment_amount"];
/// The categories a recipient never named before makes worse.
const NEW_RECIPIENT_CATEGORIES: [&str; 2] = ["payment", "email"];

/// Deployment-memory features: the facts alone, and crossed with what the action does.
fn history_features<S: Sink>(
    out: &mut Emitter<'_, S>,
    facts: &HistoryFacts,
    categories: &[&str],
    fired: impl Fn(&str) -> bool,
) {
    out.named("hist");
    if facts.first_tool_in_session {
        out.named("hist_first_tool");
    }
    if facts.known_host {
        out.named("hist_known_host");
    }
    if facts.known_recipient {
        out.named("hist_known_recipient");
    }
    if facts.new_host {
        out.named("hist_new_host");
        for name in NEW_HOST_CROSSES {
            if fired(name) {
                out.named(&format!("hist_new_host_{name}"));
            }
        }
    }
    if facts.new_recipient {
        out.named("hist_new_recipient");
        for name in NEW_RECIPIENT_CATEGORIES {
            if categories.contains(&name) {
                out.named(&format!("hist_new_recipient_{name}"));
            }
        }
        for name in NEW_RECIPIENT_CROSSES {
            if fired(name) {
                out.named(&format!("hist_new_recipient_{name}"));
            }
        }
    }
}
