"""Blocklists: UT1-format URL/domain lists, banned words in URLs, and per-language word lists.

Matching only: the stages are declared in ``url_blocklist.py`` and ``word_blocklist.py`` (config,
signals, decision), which load these matchers.

Pure core, no Beam. Lists are loaded into compact structures (a sorted array of 64-bit hashes
for millions of domains; Aho–Corasick automata for words) once per worker process.
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import os
import re
import unicodedata
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import numpy as np
import xxhash

from toxsieve.classifiers.base import sha256_path

LISTS_DIR = Path(__file__).parent.parent / "lists"  # pipelines/lists/
BUILTIN_PREFIX = "builtin:"

# Scripts written without spaces between words: word lists match as substrings there.
UNSPACED_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "km", "my", "bo", "wuu", "yue", "gan"})
# LDNOOBW file names → the codes fastText LID-176 emits.
_LDNOOBW_LANGUAGE = {"fil": "tl", "fr-CA-u-sd-caqc": "fr"}
_LDNOOBW_SKIP = {"LICENSE", "README.md", "USERS.md", "PROVENANCE.md"}


def resolve_list_path(spec: str) -> Path:
    """``builtin:NAME`` → the copy shipped in the package; anything else is a local path."""
    if spec.startswith(BUILTIN_PREFIX):
        return LISTS_DIR / spec[len(BUILTIN_PREFIX):]
    return Path(spec)


_LIST_KINDS = ("domains", "urls")
URL_WORD_FILES = ("banned_words.txt", "soft_banned_words.txt", "banned_subwords.txt")


def ut1_categories(list_dirs: Iterable[str], categories: Iterable[str] = ()) -> list[tuple[str, dict[str, list[Path]]]]:
    """(category, {"domains": files, "urls": files}) for every selected category folder of UT1-format
    directories, in order; a missing directory or a requested category that is nowhere is an error."""
    specs = list(list_dirs)
    wanted = set(categories)
    found: list[tuple[str, dict[str, list[Path]]]] = []
    for spec in specs:
        root = resolve_list_path(spec)
        if not root.is_dir():
            raise FileNotFoundError(f"blocklist directory not found: {spec} ({root})")
        for cat_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            if wanted and cat_dir.name not in wanted:
                continue
            found.append((cat_dir.name, {
                kind: sorted(p for p in cat_dir.iterdir() if p.name in (kind, f"{kind}.gz", f"{kind}.zst"))
                for kind in _LIST_KINDS
            }))
    missing = wanted - {name for name, _ in found}
    if missing:
        raise FileNotFoundError(f"blocklist categories not found in {specs}: {sorted(missing)}")
    return found


def url_word_files(url_words_dir: str) -> tuple[Path, ...]:
    root = resolve_list_path(url_words_dir)
    paths = tuple(root / name for name in URL_WORD_FILES)
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"URL word list not found: {path}")
    return paths


def _open_list(path: Path) -> IO[bytes]:
    if path.suffix == ".zst":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(path.open("rb"), read_across_frames=True)  # type: ignore[return-value]
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def iter_list_lines(path: Path) -> Iterator[str]:
    """Entries of a list file (plain, .gz or .zst): one per line, '#' comments and blanks skipped."""
    import io

    with _open_list(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace") as text:  # type: ignore[type-var]
        for line in text:
            entry = line.strip()
            if entry and not entry.startswith("#"):
                yield entry


# --- URL normalisation -----------------------------------------------------


def normalize_host(host: str) -> str | None:
    host = host.strip().rstrip(".").lower()
    if not host:
        return None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            pass  # keep the Unicode form; lists written in Unicode still match
    if host.startswith("www.") and host.count(".") >= 2:
        host = host[4:]
    return host


def url_host(url: str) -> str | None:
    """The host of a URL, lower-cased, IDN as punycode, without userinfo, port, brackets or trailing dot."""
    text = url.strip()
    if "://" not in text[:16]:
        text = "http://" + text.lstrip("/")
    try:
        host = urlsplit(text).hostname
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    return normalize_host(host) if host else None


def host_candidates(host: str) -> list[str]:
    """The host and every parent domain (a.b.example.com → b.example.com → example.com); not the bare TLD."""
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    labels = host.split(".")
    if len(labels) == 1:
        return [host]
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def url_keys(url: str) -> list[str]:
    """``host/path`` of a URL and each shorter path prefix at '/' boundaries, the way UT1 ``urls`` match."""
    host = url_host(url)
    if host is None:
        return []
    text = url.strip()
    if "://" in text[:16]:
        text = text.split("://", 1)[1]
    path = text.split("/", 1)[1] if "/" in text else ""
    path = path.split("#", 1)[0]
    keys = []
    full = f"{host}/{path}".rstrip("/")
    keys.append(full)
    no_query = full.split("?", 1)[0].rstrip("/")
    segments = no_query.split("/")
    for i in range(len(segments), 1, -1):
        key = "/".join(segments[:i])
        if key not in keys:
            keys.append(key)
    return keys


def _normalize_url_entry(entry: str) -> str:
    entry = entry.strip()
    if "://" in entry[:16]:
        entry = entry.split("://", 1)[1]
    host, _, path = entry.partition("/")
    norm = normalize_host(host.split("@")[-1].split(":")[0]) or host.lower()
    return f"{norm}/{path}".rstrip("/")


# --- compact string sets -----------------------------------------------------


class CompactStringSet:
    """Membership for millions of strings in ~10 bytes each: sorted xxh3-64 hashes + a category id.

    A false positive needs a 64-bit hash collision (p ≈ n / 2^64 per lookup), which is far below
    the error rate of any list.
    """

    def __init__(self, categories: list[str], hashes: np.ndarray, category_ids: np.ndarray) -> None:
        order = np.argsort(hashes, kind="stable")
        self.categories = categories
        self._hashes = hashes[order]
        self._cats = category_ids[order]

    @classmethod
    def build(cls, entries: Iterable[tuple[str, int]], categories: list[str]) -> CompactStringSet:
        hashes = array("Q")
        cats = array("H")
        for text, cat in entries:
            hashes.append(xxhash.xxh3_64_intdigest(text.encode("utf-8", "surrogatepass")))
            cats.append(cat)
        return cls(categories, np.frombuffer(hashes, dtype=np.uint64).copy(),
                   np.frombuffer(cats, dtype=np.uint16).copy())

    @classmethod
    def cached(cls, key: str, categories: list[str],
               entries: Callable[[], Iterable[tuple[str, int]]]) -> CompactStringSet:
        """Build once per machine: the sorted arrays are cached on local disk, keyed by the lists' sha256."""
        cache = cache_dir() / f"{key}.npz"
        try:
            with np.load(cache) as data:
                return cls(categories, data["hashes"], data["cats"])
        except (OSError, ValueError, KeyError):
            pass
        built = cls.build(entries(), categories)
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp.npz")
            np.savez(tmp, hashes=built._hashes, cats=built._cats)
            os.replace(tmp, cache)
        except OSError:
            pass  # a read-only home only costs the rebuild next time
        return built

    def __len__(self) -> int:
        return int(self._hashes.size)

    def category_of(self, text: str) -> str | None:
        h = np.uint64(xxhash.xxh3_64_intdigest(text.encode("utf-8", "surrogatepass")))
        i = int(np.searchsorted(self._hashes, h))
        if i < self._hashes.size and self._hashes[i] == h:
            return self.categories[int(self._cats[i])]
        return None


@dataclass(frozen=True)
class UrlMatch:
    reason: str  # "url_blocklisted" | "url_banned_word"
    category: str | None
    entry: str | None
    words: tuple[str, ...] = ()


@dataclass
class UrlBlocklist:
    """UT1-format lists (``<dir>/<category>/{domains,urls}``), an allowlist that wins, banned URL words."""

    domains: CompactStringSet
    urls: CompactStringSet
    allow: frozenset[str] = frozenset()
    banned_words: frozenset[str] = frozenset()
    soft_banned_words: frozenset[str] = frozenset()
    soft_word_threshold: int = 2
    banned_subwords: Any = None  # an ahocorasick.Automaton over alphanumeric-only URL text
    files: list[Path] = field(default_factory=list)

    @classmethod
    def load(cls, list_dirs: Iterable[str], categories: Iterable[str] = (), allow: Iterable[str] = (),
             url_words_dir: str | None = None, soft_word_threshold: int = 2) -> UrlBlocklist:
        names: list[str] = []
        files: list[Path] = []
        domain_entries: list[Iterable[tuple[str, int]]] = []
        url_entries: list[Iterable[tuple[str, int]]] = []
        for cat_id, (name, paths) in enumerate(ut1_categories(list_dirs, categories)):
            names.append(name)
            for kind, sink in (("domains", domain_entries), ("urls", url_entries)):
                for path in paths[kind]:
                    files.append(path)
                    sink.append(_entries(path, kind, cat_id))
        key = _cache_key(files, names)
        domains = CompactStringSet.cached(f"{key}-domains", names,
                                          lambda: (e for src in domain_entries for e in src))
        urls = CompactStringSet.cached(f"{key}-urls", names, lambda: (e for src in url_entries for e in src))
        banned = soft = frozenset()
        subwords = None
        if url_words_dir is not None:
            banned_path, soft_path, sub_path = url_word_files(url_words_dir)
            banned = frozenset(_alnum(w) for w in iter_list_lines(banned_path)) - {""}
            soft = frozenset(_alnum(w) for w in iter_list_lines(soft_path)) - {""}
            subwords = _automaton(_alnum(w) for w in iter_list_lines(sub_path))
            files += [banned_path, soft_path, sub_path]
        allowed = frozenset(h for h in (normalize_host(a) for a in allow) if h)
        return cls(domains, urls, allowed, banned, soft, soft_word_threshold, subwords, files)

    def match(self, url: str | None) -> UrlMatch | None:
        """The first rule the URL trips, or None. The allowlist wins over every rule."""
        if not url:
            return None
        host = url_host(url)
        if host is None:
            return None
        candidates = host_candidates(host)
        if any(c in self.allow for c in candidates):
            return None
        for candidate in candidates:
            category = self.domains.category_of(candidate)
            if category is not None:
                return UrlMatch("url_blocklisted", category, candidate)
        for key in url_keys(url):
            category = self.urls.category_of(key)
            if category is not None:
                return UrlMatch("url_blocklisted", category, key)
        return self._match_words(url)

    def _match_words(self, url: str) -> UrlMatch | None:
        if not (self.banned_words or self.soft_banned_words or self.banned_subwords):
            return None
        tokens = set(_URL_TOKEN.split(url.lower()))
        hard = sorted(tokens & self.banned_words)
        if hard:
            return UrlMatch("url_banned_word", None, None, tuple(hard))
        soft = sorted(tokens & self.soft_banned_words)
        if len(soft) >= self.soft_word_threshold:
            return UrlMatch("url_banned_word", None, None, tuple(soft))
        if self.banned_subwords is not None:
            squashed = _alnum(url)
            found = sorted({word for _, word in self.banned_subwords.iter(squashed)})
            if found:
                return UrlMatch("url_banned_word", None, None, tuple(found))
        return None


_URL_TOKEN = re.compile(r"[^a-z0-9]+")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def _alnum(text: str) -> str:
    return _NON_ALNUM.sub("", text.lower())


# Bump when entry normalisation changes, so caches built by an older version are not reused.
_NORMALIZATION_VERSION = "1"


def cache_dir() -> Path:
    root = os.environ.get("TOXSIEVE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "toxsieve")
    return Path(root) / "blocklists"


def _cache_key(files: list[Path], categories: list[str]) -> str:
    digest = hashlib.sha256(_NORMALIZATION_VERSION.encode())
    for path in files:
        digest.update(f"{path.parent.name}/{path.name}:{sha256_path(path)}\n".encode())
    digest.update(("|".join(categories)).encode())
    return digest.hexdigest()[:32]


def _entries(path: Path, kind: str, cat_id: int) -> Iterator[tuple[str, int]]:
    for line in iter_list_lines(path):
        if kind == "domains":
            host = normalize_host(line.split("/")[0])
            if host:
                yield host, cat_id
        else:
            yield _normalize_url_entry(line), cat_id


def _automaton(words: Iterable[str]) -> Any:
    import ahocorasick

    automaton = ahocorasick.Automaton()
    n = 0
    for word in words:
        if word:
            automaton.add_word(word, word)
            n += 1
    if n == 0:
        return None
    automaton.make_automaton()
    return automaton


# --- word lists ----------------------------------------------------------------


@dataclass(frozen=True)
class WordMatches:
    terms: dict[str, int]  # term → occurrences
    n_matches: int
    n_tokens: int
    fraction: float  # matched tokens / tokens

    @property
    def distinct(self) -> int:
        return len(self.terms)


_WORD = re.compile(r"\w+")


def _fold(text: str) -> str:
    # casefold can change length (ß → ss); NFKC after it keeps full-width/compat forms comparable.
    return unicodedata.normalize("NFKC", text.casefold())


class WordBlocklist:
    """Per-language word lists matched with Aho–Corasick in linear time.

    Space-delimited scripts: a match must sit on word boundaries (the neighbours are not word
    characters), as C4's rule does, so "ass" does not match inside "classic". Scripts without
    spaces (zh, ja, th, ...): substring matches. Multi-word entries match across single spaces.
    """

    def __init__(self, lists: dict[str, list[str]], min_unspaced_term_chars: int = 2) -> None:
        # In scripts without spaces a one-character entry (zh 性 "sex/-ness", 奶 "milk") matches
        # inside ordinary words (可能性 "possibility"), so short entries are dropped there.
        self._terms = {
            lang: sorted(t for t in {_fold(term).strip() for term in terms}
                         if t and (lang not in UNSPACED_LANGUAGES or len(t) >= min_unspaced_term_chars))
            for lang, terms in lists.items()
        }
        self._automata: dict[str, Any] = {}

    @classmethod
    def load(cls, list_dirs: Iterable[str], extra: dict[str, tuple[str, ...]] | None = None,
             min_unspaced_term_chars: int = 2) -> WordBlocklist:
        lists: dict[str, list[str]] = {}
        for path in cls.list_files(list_dirs):
            lang = _LDNOOBW_LANGUAGE.get(path.name, path.name.split(".")[0])
            lists.setdefault(lang, []).extend(iter_list_lines(path))
        for lang, terms in (extra or {}).items():
            lists.setdefault(lang, []).extend(terms)
        return cls(lists, min_unspaced_term_chars)

    @staticmethod
    def list_files(list_dirs: Iterable[str]) -> list[Path]:
        """One file per language in each directory; a missing directory is an error."""
        out = []
        for spec in list_dirs:
            root = resolve_list_path(spec)
            if not root.is_dir():
                raise FileNotFoundError(f"word-list directory not found: {spec} ({root})")
            out += sorted(p for p in root.iterdir() if p.is_file() and p.name not in _LDNOOBW_SKIP)
        return out

    @property
    def languages(self) -> list[str]:
        return sorted(self._terms)

    def _automaton_for(self, language: str) -> Any:
        if language not in self._automata:
            terms = self._terms.get(language)
            self._automata[language] = _automaton(terms) if terms else None
        return self._automata[language]

    def scan(self, text: str, language: str | None) -> WordMatches | None:
        """Matches of the document's language list; None when there is no list for the language."""
        if not language:
            return None
        automaton = self._automaton_for(language)
        if automaton is None:
            return None
        folded = _fold(text)
        unspaced = language in UNSPACED_LANGUAGES
        spans = []
        for end, term in automaton.iter(folded):
            start = end - len(term) + 1
            if unspaced or (_boundary(folded, start - 1) and _boundary(folded, end + 1)):
                spans.append((start, -len(term), term))
        # Leftmost-longest, non-overlapping: "他妈的" counts once, not as 他妈 + 他妈的 + 妈的.
        counts: Counter[str] = Counter()
        matched_tokens = 0
        covered_to = -1
        for start, neg_len, term in sorted(spans):
            if start <= covered_to:
                continue
            covered_to = start - neg_len - 1
            counts[term] += 1
            matched_tokens += len(term) if unspaced else max(1, len(_WORD.findall(term)))
        if unspaced:
            n_tokens = sum(1 for ch in folded if not ch.isspace())
        else:
            n_tokens = sum(1 for _ in _WORD.finditer(folded))
        fraction = min(1.0, matched_tokens / n_tokens) if n_tokens else 0.0
        return WordMatches(dict(sorted(counts.items())), sum(counts.values()), n_tokens, fraction)


def _boundary(text: str, i: int) -> bool:
    if i < 0 or i >= len(text):
        return True
    ch = text[i]
    return not (ch.isalnum() or ch == "_" or unicodedata.category(ch).startswith("M"))


# --- stage decisions -------------------------------------------------------------


def blocklist_files(url_lists: Iterable[str], categories: Iterable[str], url_words_dir: str | None,
                    word_lists: Iterable[str]) -> list[Path]:
    """Every list file a run will read (for the manifest); raises if a directory or category is missing."""
    files = [path for _, paths in ut1_categories(url_lists, categories) for kind in _LIST_KINDS
             for path in paths[kind]]
    if url_words_dir is not None:
        files += url_word_files(url_words_dir)
    return files + WordBlocklist.list_files(word_lists)


def import_ut1_archive(archive: str | Path, dest: str | Path, categories: Iterable[str] = ()) -> dict[str, dict[str, int]]:
    """Copy categories from a UT1 archive (``blacklists.tar.gz`` or one category's ``.tar.gz``) into a
    UT1-format directory, as sorted, de-duplicated, zstd-compressed ``domains.zst`` / ``urls.zst``.

    Members are read by name, never extracted, so a hostile archive cannot write outside ``dest``.
    Returns the entry counts per category and kind.
    """
    import tarfile

    import zstandard

    wanted = set(categories)
    collected: dict[str, dict[str, set[str]]] = {}
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            if not member.isfile():
                continue
            parts = [p for p in member.name.split("/") if p not in ("", ".")]
            if len(parts) < 2 or parts[-1] not in ("domains", "urls"):
                continue
            category, kind = parts[-2], parts[-1]
            if wanted and category not in wanted:
                continue
            fh = tar.extractfile(member)
            if fh is None:
                continue
            entries = collected.setdefault(category, {"domains": set(), "urls": set()})[kind]
            for raw in fh:
                line = raw.decode("utf-8", "replace").strip()
                if line and not line.startswith("#"):
                    entries.add(line)
    missing = wanted - set(collected)
    if missing:
        raise FileNotFoundError(f"categories not in {archive}: {sorted(missing)}")
    counts: dict[str, dict[str, int]] = {}
    for category, kinds in sorted(collected.items()):
        out_dir = Path(dest) / category
        out_dir.mkdir(parents=True, exist_ok=True)
        counts[category] = {}
        for kind, entries in kinds.items():
            data = "".join(f"{e}\n" for e in sorted(entries)).encode()
            (out_dir / f"{kind}.zst").write_bytes(zstandard.ZstdCompressor(level=19).compress(data))
            counts[category][kind] = len(entries)
    return counts
