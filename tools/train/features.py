"""Feature extraction for the built-in tier-2 model: the Python twin of
`crates/gatehouse-classifier/src/builtin/features.rs`.

Both sides must produce the same sparse vector for the same action; the Rust test
`builtin_vectors_match_the_trainer` checks it on the vectors this module writes
(`crates/gatehouse-classifier/tests/fixtures/builtin_vectors.json`).

Everything here works on bytes (UTF-8), lowercases ASCII only, and hashes with
32-bit FNV-1a, so the two implementations agree byte for byte.
"""

import math

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
MASK32 = 0xFFFFFFFF

#: Bytes of action text (and of each context field) looked at; the rest is ignored.
MAX_TEXT = 4096
CHAR_MIN, CHAR_MAX = 3, 5
SIM_BINS = (0.0, 0.05, 0.1, 0.2, 0.35)
LEN_BINS = (64, 256, 1024)

# Lists stored in the weights header, so the Rust side reads the very same lists.
LEXICON = {
    "sensitive_paths": [
        ".ssh/", "id_rsa", "id_ed25519", "id_ecdsa", "authorized_keys", ".aws/", "credentials",
        ".env", "/etc/shadow", "/etc/passwd", "/etc/sudoers", ".gnupg", ".kube/config",
        ".docker/config.json", ".netrc", ".npmrc", ".pypirc", ".git-credentials", "keychain",
        ".bash_history", "wallet.dat", ".config/gcloud", "login data", "cookies.sqlite",
    ],
    "shells": ["sh", "bash", "zsh", "dash", "python", "python3", "perl", "ruby", "node", "powershell", "pwsh", "iex"],
    "persistence": ["crontab", ".bashrc", ".zshrc", ".profile", "authorized_keys", "systemctl enable", "/etc/cron", "launchagents", "rc.local"],
    "reverse_shell": ["/dev/tcp/", "nc -e", "ncat -e", "bash -i", "mkfifo", "socat exec", "nc -l", "socket.socket("],
    "exfil_flags": [" -d @", " --data", " -f ", " --form", " -t ", "--upload-file", " --post-data", " --post-file", " -x post", "-x put"],
    "destructive": ["rm -rf", "rm -fr", "mkfs", "dd if=", "shred ", ":(){", "drop table", "drop database", "truncate table", "git push --force", "git push -f", "chmod -r 777", "chmod 777", "> /dev/sda"],
    "injection_phrases": [
        "ignore previous", "ignore all previous", "ignore the above", "ignore your instructions",
        "disregard", "forget your instructions", "forget all previous", "new instructions",
        "system prompt", "you are now", "act as", "developer mode", "jailbreak", "do anything now",
        "override", "instead, ", "important:", "assistant must", "do not tell the user",
        "without telling", "secretly", "exfiltrate", "send the contents", "base64",
    ],
    "stopwords": [
        "the", "and", "for", "with", "this", "that", "from", "into", "our", "your", "you", "are",
        "please", "can", "will", "all", "any", "then", "them", "its", "has", "have", "was", "not",
        "command", "input", "text", "file_path", "content", "bash", "true", "false",
    ],
    "categories": {
        "payment": {
            "action": ["transfer", "payment", "pay_", "iban", "amount", "wire", "invoice", "send_money", "bitcoin", "wallet", "stripe", "paypal", "swift", "bic"],
            "task": ["pay", "payment", "invoice", "transfer", "refund", "bill", "purchase", "buy", "subscription", "reimburse", "salary", "wire", "vendor"],
        },
        "email": {
            "action": ["email", "mail", "smtp", "send_message", "recipient", "subject"],
            "task": ["email", "mail", "reply", "inbox", "message", "newsletter", "contact", "write to", "forward"],
        },
        "credentials": {
            "action": [".ssh", "id_rsa", "id_ed25519", ".aws", "credentials", ".env", "token", "secret", "password", "private key", ".netrc", ".kube", "keychain", ".gnupg", "api_key", "apikey"],
            "task": ["ssh", "key", "credential", "aws", "secret", "token", "password", ".env", "rotate", "login", "auth"],
        },
        "network": {
            "action": ["http://", "https://", "curl", "wget", "upload", "webhook", "nc ", "scp ", "ftp", "rsync"],
            "task": ["download", "fetch", "api", "http", "url", "website", "web", "upload", "request", "webhook", "deploy", "install", "endpoint", "server", "curl"],
        },
        "delete": {
            "action": ["rm -rf", "rm -r", "delete", "drop table", "truncate", "shred", "rmdir", "wipe", "unlink"],
            "task": ["delete", "remove", "clean", "cleanup", "drop", "wipe", "reset", "uninstall", "prune", "free up"],
        },
    },
}

CATEGORY_ORDER = ["payment", "email", "credentials", "network", "delete"]


def fnv1a(data: bytes, h: int = FNV_OFFSET) -> int:
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK32
    return h


def ascii_lower(b: bytes) -> bytes:
    return b.translate(_LOWER)


_LOWER = bytes((c + 32) if 65 <= c <= 90 else c for c in range(256))


def format_number(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    r = repr(float(v))
    return r


def flatten(value, out):
    """Appends the text of a JSON value: object keys (sorted) and their values, strings, numbers."""
    if value is None:
        return
    if isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, (int, float)):
        out.append(format_number(value))
    elif isinstance(value, str):
        out.append(value)
    elif isinstance(value, list):
        for v in value:
            flatten(v, out)
    elif isinstance(value, dict):
        for k in sorted(value.keys(), key=lambda s: s.encode("utf-8")):
            out.append(k)
            flatten(value[k], out)


def action_text(tool: str, inp) -> bytes:
    parts = [tool]
    flatten(inp, parts)
    return ascii_lower("\n".join(parts).encode("utf-8"))[:MAX_TEXT]


def context_field(context, key) -> bytes:
    if not isinstance(context, dict):
        return b""
    v = context.get(key)
    if v is None:
        return b""
    parts = []
    flatten(v, parts)
    return ascii_lower("\n".join(parts).encode("utf-8"))[:MAX_TEXT]


def is_word_byte(c: int) -> bool:
    return (48 <= c <= 57) or (97 <= c <= 122) or c == 95 or c >= 128


def words(text: bytes):
    out = []
    start = None
    for i, c in enumerate(text):
        if is_word_byte(c):
            if start is None:
                start = i
        elif start is not None:
            out.append(text[start:i])
            start = None
    if start is not None:
        out.append(text[start:])
    return out


class Features:
    """A sparse vector being built: index -> value (duplicates summed)."""

    def __init__(self, dim_bits: int):
        self.mask = (1 << dim_bits) - 1
        self.values = {}

    def add(self, index: int, value: float):
        self.values[index] = self.values.get(index, 0.0) + value

    def named(self, name: str, value: float = 1.0):
        self.add(fnv1a(b"s" + name.encode("ascii")) & self.mask, value)

    def char_ngrams(self, ns: bytes, text: bytes):
        base = fnv1a(ns)
        idx = []
        n = len(text)
        for i in range(n - CHAR_MIN + 1):
            h = base
            for j in range(i, min(i + CHAR_MAX, n)):
                h = ((h ^ text[j]) * FNV_PRIME) & MASK32
                if j - i + 1 >= CHAR_MIN:
                    idx.append(h & self.mask)
        self._scaled(idx)

    def word_ngrams(self, ns_uni: bytes, ns_bi: bytes, toks):
        idx = [fnv1a(t, fnv1a(ns_uni)) & self.mask for t in toks]
        idx += [fnv1a(b + b" " + c, fnv1a(ns_bi)) & self.mask for b, c in zip(toks, toks[1:])]
        self._scaled(idx)

    def _scaled(self, idx):
        if not idx:
            return
        s = 1.0 / math.sqrt(len(idx))
        for i in idx:
            self.add(i, s)


def contains_any(text: bytes, needles) -> bool:
    return any(n.encode("utf-8") in text for n in needles)


def count_any(text: bytes, needles) -> int:
    return sum(1 for n in needles if n.encode("utf-8") in text)


def pipe_into_shell(text: bytes, shells) -> bool:
    # "| sh", "|bash -s", "| sudo bash": a pipe followed by (sudo) and a shell word.
    shell_set = {s.encode() for s in shells}
    i = text.find(b"|")
    while i != -1:
        if i + 1 < len(text) and text[i + 1] != ord("|") and (i == 0 or text[i - 1] != ord("|")):
            toks = words(text[i + 1 : i + 40])
            if toks and toks[0] == b"sudo":
                toks = toks[1:]
            if toks and toks[0] in shell_set:
                return True
        i = text.find(b"|", i + 1)
    return False


def is_local_ip(host: bytes) -> bool:
    """Loopback and private IPv4 (127/8, 10/8, 192.168/16, 172.16/12); not 169.254 (cloud metadata)."""
    o = [int(p) for p in host.split(b".")]
    return o[0] in (127, 10) or (o[0] == 192 and o[1] == 168) or (o[0] == 172 and 16 <= o[1] <= 31)


def url_to_ip(text: bytes):
    """"ip_url" for a URL to a public IPv4 literal, else "local_ip_url" for a local one, else None."""
    found = None
    for scheme in (b"http://", b"https://", b"ftp://"):
        i = text.find(scheme)
        while i != -1:
            j = i + len(scheme)
            k = j
            while k < len(text) and (48 <= text[k] <= 57 or text[k] == 46):
                k += 1
            host = text[j:k]
            if host.count(b".") == 3 and all(p and len(p) <= 3 for p in host.split(b".")):
                if k == len(text) or text[k] in b":/ \n\"'?":
                    if not is_local_ip(host):
                        return "ip_url"
                    found = "local_ip_url"
            i = text.find(scheme, i + 1)
    return found


def longest_run(text: bytes, pred) -> int:
    best = cur = 0
    for c in text:
        if pred(c):
            cur += 1
            if cur > best:
                best = cur
        else:
            cur = 0
    return best


def _b64(c):
    # No '/': long paths would look like base64 otherwise.
    return (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122) or c in (43, 61)


def _token(c):
    return (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122) or c in (45, 95)


def _hex(c):
    return (48 <= c <= 57) or (97 <= c <= 102)


def secret_shaped(raw: bytes) -> bool:
    """Secrets-shaped strings. `raw` keeps its case (AKIA keys are upper case)."""
    for prefix, n, pred in (
        (b"AKIA", 16, lambda c: (48 <= c <= 57) or (65 <= c <= 90)),
        (b"ghp_", 30, _token),
        (b"github_pat_", 30, _token),
        (b"sk-", 32, _token),
        (b"xoxb-", 20, _token),
        (b"xoxp-", 20, _token),
        (b"glpat-", 20, _token),
    ):
        i = raw.find(prefix)
        while i != -1:
            j = i + len(prefix)
            k = j
            while k < len(raw) and pred(raw[k]):
                k += 1
            if k - j >= n:
                return True
            i = raw.find(prefix, i + 1)
    return b"-----BEGIN" in raw and b"PRIVATE KEY" in raw


def payment_amount(text: bytes) -> bool:
    """A currency sign or code next to a number ("$1,200", "1200 eur", "usd 50")."""
    for sign in (b"$", b"\xe2\x82\xac", b"\xc2\xa3"):  # $ € £
        i = text.find(sign)
        while i != -1:
            j = i + len(sign)
            if j < len(text) and 48 <= text[j] <= 57:
                return True
            i = text.find(sign, i + 1)
    toks = words(text)
    codes = {b"usd", b"eur", b"gbp", b"btc", b"eth", b"usdt", b"chf"}
    for a, b in zip(toks, toks[1:]):
        if (a in codes and b[:1].isdigit()) or (b in codes and a[:1].isdigit()):
            return True
    return False


def _alnum(c):
    return (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122)


def runs(text: bytes, pred):
    out, start = [], None
    for i, c in enumerate(text):
        if pred(c):
            if start is None:
                start = i
        elif start is not None:
            out.append(text[start:i])
            start = None
    if start is not None:
        out.append(text[start:])
    return out


def iban_shaped(raw: bytes) -> bool:
    """Two capital letters, two digits, then capitals and digits: 15 to 34 bytes, spaces ignored."""
    for t in runs(raw.replace(b" ", b""), _alnum):
        if (15 <= len(t) <= 34 and 65 <= t[0] <= 90 and 65 <= t[1] <= 90 and 48 <= t[2] <= 57 and 48 <= t[3] <= 57
                and all((48 <= c <= 57) or (65 <= c <= 90) for c in t)):
            return True
    return False


def jaccard(a, b) -> float:
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def content_words(text: bytes, stop):
    return {w for w in words(text) if len(w) >= 3 and w not in stop and not w.isdigit()}


def structural(raw_text: bytes, text: bytes, lex):
    """Names of the structural features that fire on one action text."""
    fired = []
    if pipe_into_shell(text, lex["shells"]):
        fired.append("pipe_shell")
    ip = url_to_ip(text)
    if ip:
        fired.append(ip)
    if contains_any(text, lex["sensitive_paths"]):
        fired.append("sensitive_path")
    if secret_shaped(raw_text):
        fired.append("secret")
    if longest_run(raw_text, _b64) >= 40:
        fired.append("b64_blob")
    if longest_run(text, _hex) >= 32:
        fired.append("hex_blob")
    if payment_amount(text):
        fired.append("payment_amount")
    if iban_shaped(raw_text):
        fired.append("iban")
    if contains_any(text, lex["persistence"]):
        fired.append("persistence")
    if contains_any(text, lex["reverse_shell"]):
        fired.append("reverse_shell")
    if contains_any(text, lex["destructive"]):
        fired.append("destructive")
    if (b"curl" in text or b"wget" in text) and contains_any(text, lex["exfil_flags"]):
        fired.append("upload")
    if b"base64 -d" in text or b"base64 --decode" in text or b"b64decode" in text or b"frombase64" in text:
        fired.append("decode")
    if b"http://" in text or b"https://" in text:
        fired.append("url")
    return fired


#: Deployment-memory crosses (twin of NEW_HOST_CROSSES etc. in features.rs).
NEW_HOST_CROSSES = ["upload", "pipe_shell", "secret", "sensitive_path", "ip_url", "reverse_shell"]
NEW_RECIPIENT_CROSSES = ["iban", "payment_amount"]
NEW_RECIPIENT_CATEGORIES = ["payment", "email"]
#: The history facts (`HistoryFacts` in crates/gatehouse-classifier/src/history.rs); a missing key is false.
HISTORY_KEYS = ["first_tool_in_session", "new_host", "known_host", "new_recipient", "known_recipient"]


def history_features(f, history, categories, fired):
    """Deployment-memory features; only called when the action carries history facts."""
    h = {k: bool(history.get(k, False)) for k in HISTORY_KEYS}
    f.named("hist")
    if h["first_tool_in_session"]:
        f.named("hist_first_tool")
    if h["known_host"]:
        f.named("hist_known_host")
    if h["known_recipient"]:
        f.named("hist_known_recipient")
    if h["new_host"]:
        f.named("hist_new_host")
        for name in NEW_HOST_CROSSES:
            if name in fired:
                f.named("hist_new_host_" + name)
    if h["new_recipient"]:
        f.named("hist_new_recipient")
        for name in NEW_RECIPIENT_CATEGORIES:
            if name in categories:
                f.named("hist_new_recipient_" + name)
        for name in NEW_RECIPIENT_CROSSES:
            if name in fired:
                f.named("hist_new_recipient_" + name)


def featurize(tool: str, inp, context, header, history=None) -> Features:
    lex = header["lexicon"]
    f = Features(header["dim_bits"])
    parts = [tool]
    flatten(inp, parts)
    raw_text = "\n".join(parts).encode("utf-8")[:MAX_TEXT]
    text = ascii_lower(raw_text)

    f.char_ngrams(b"a", text)
    toks = words(text)
    f.word_ngrams(b"w", b"b", toks)
    n = len(text)
    f.named("len%d" % sum(1 for b in LEN_BINS if n >= b))

    fired = structural(raw_text, text, lex)

    task = context_field(context, "task")
    prompt = context_field(context, "prompt")
    prev = context_field(context, "previous_output")
    user = (task + b"\n" + prompt).strip(b"\n")
    untrusted = (prompt + b"\n" + prev).strip(b"\n")

    if untrusted:
        f.char_ngrams(b"x", untrusted)
        inj = count_any(untrusted, lex["injection_phrases"])
        f.named("ctx_inj%d" % min(inj, 2))

    stop = {s.encode() for s in lex["stopwords"]}
    has_task = bool(user)
    offtask = False
    if has_task:
        sim = jaccard(content_words(user, stop), content_words(text, stop))
        bin_ = sum(1 for b in SIM_BINS if sim > b)
        f.named("sim%d" % bin_)
        offtask = bin_ == 0
    else:
        f.named("noctx")

    categories = []
    for c in CATEGORY_ORDER:
        cat = lex["categories"][c]
        if contains_any(text, cat["action"]):
            categories.append(c)
            if not has_task:
                f.named("cat_%s_noctx" % c)
            elif contains_any(user, cat["task"]):
                f.named("cat_%s_match" % c)
            else:
                f.named("cat_%s_mismatch" % c)

    for name in fired:
        f.named(name)
        if has_task:
            f.named(name + ("_offtask" if offtask else "_ontask"))
    if history is not None:
        history_features(f, history, categories, fired)
    return f
