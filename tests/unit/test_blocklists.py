"""URL/domain blocklists, URL words and word lists: matching rules, policy, evidence."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
import zstandard

from toxsieve.pipelines.document import Document
from toxsieve.pipelines.stages import BY_NAME
from toxsieve.pipelines.stages.apply import run_stage
from toxsieve.pipelines.stages.blocklists import (
    UrlBlocklist,
    WordBlocklist,
    host_candidates,
    import_ut1_archive,
    url_host,
)
from toxsieve.pipelines.stages.url_blocklist import UrlBlocklistConfig
from toxsieve.pipelines.stages.word_blocklist import WordBlocklistConfig, WordPolicyConfig


def apply_url_blocklist(doc: Document, blocklist: UrlBlocklist, cfg: UrlBlocklistConfig | None = None) -> Document:
    """The declared url_blocklist stage on one document, with ``blocklist`` as what its ``load`` returns."""
    return run_stage(BY_NAME["url_blocklist"], doc, cfg or UrlBlocklistConfig(), blocklist)


def apply_word_blocklist(doc: Document, words: WordBlocklist, cfg: WordBlocklistConfig) -> Document:
    """The declared word_blocklist stage on one document, with ``words`` as what its ``load`` returns."""
    return run_stage(BY_NAME["word_blocklist"], doc, cfg, words)


def _signal(doc: Document, column: str) -> object:
    return dict(doc.signals)[column]


@pytest.fixture
def ut1_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TOXSIEVE_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "ut1"
    (root / "adult").mkdir(parents=True)
    (root / "phishing").mkdir()
    (root / "adult" / "domains").write_text("# comment\nbad.example\nWWW.Shouty.Example\n10.1.2.3\nxn--bcher-kva.example\n")
    (root / "adult" / "urls").write_text("host.example/private/area\n")
    (root / "phishing" / "domains.zst").write_bytes(zstandard.ZstdCompressor().compress(b"phish.example\n"))
    return root


def _doc(url: str | None = None, text: str = "", language: str | None = "en") -> Document:
    return Document("d1", "mem://x", 0, "warc", url=url, text=text, language=language)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://Example.COM/path", "example.com"),
        ("https://user:secret@sub.example.com:8443/x?y#z", "sub.example.com"),
        ("http://example.com./", "example.com"),
        ("example.com/no/scheme", "example.com"),
        ("http://www.example.com/", "example.com"),
        ("http://www.example/", "www.example"),  # "www." is only dropped where a domain remains
        ("http://bücher.example/", "xn--bcher-kva.example"),
        ("http://[2001:db8::1]:80/", "2001:db8::1"),
        ("http://192.168.0.1:8080/", "192.168.0.1"),
        ("http://[unclosed/", None),
    ],
)
def test_url_host_normalisation(url: str, host: str | None) -> None:
    assert url_host(url) == host


def test_host_candidates_walk_parent_domains_but_not_the_tld() -> None:
    assert host_candidates("a.b.example.com") == ["a.b.example.com", "b.example.com", "example.com"]
    assert host_candidates("10.1.2.3") == ["10.1.2.3"]
    assert host_candidates("localhost") == ["localhost"]


@pytest.mark.parametrize(
    ("url", "entry", "category"),
    [
        ("http://bad.example/", "bad.example", "adult"),
        ("https://deep.sub.bad.example:8080/page", "bad.example", "adult"),
        ("http://user@BAD.EXAMPLE./", "bad.example", "adult"),
        ("http://shouty.example/", "shouty.example", "adult"),  # list entry had WWW. and capitals
        ("http://10.1.2.3/x", "10.1.2.3", "adult"),
        ("http://bücher.example/", "xn--bcher-kva.example", "adult"),  # IDN vs punycode entry
        ("http://www.host.example/private/area/page.html?q=1", "host.example/private/area", "adult"),
        ("http://phish.example/login", "phish.example", "phishing"),
    ],
)
def test_blocked_urls_record_category_and_entry(ut1_dir: Path, url: str, entry: str, category: str) -> None:
    blocklist = UrlBlocklist.load([str(ut1_dir)])
    match = blocklist.match(url)
    assert match is not None and (match.entry, match.category) == (entry, category)
    doc = apply_url_blocklist(Document("d1", "mem://x", 0, "warc", url=url, html=b"<p>page</p>"), blocklist)
    assert doc.removal is not None and doc.removal.reason.value == "url_blocklisted"
    assert _signal(doc, "url_blocklist_entry") == entry and _signal(doc, "url_blocklist_category") == category
    assert doc.removal.matched == (entry,) and _signal(doc, "url_blocklist_flag") == "url_blocklisted"
    assert doc.html is None  # a removed page is never parsed


def test_annotate_mode_records_the_match_and_keeps_the_page(ut1_dir: Path) -> None:
    blocklist = UrlBlocklist.load([str(ut1_dir)])
    doc = apply_url_blocklist(_doc("http://bad.example/"), blocklist, UrlBlocklistConfig(mode="annotate"))
    assert doc.removal is None
    assert _signal(doc, "url_blocklist_flag") == "url_blocklisted" and _signal(doc, "url_blocklist_entry") == "bad.example"


@pytest.mark.parametrize("url", ["http://notbad.example/", "http://bad.example.org/", "http://10.1.2.4/",
                                 "http://host.example/private", "http://host.example/private/areas", None, ""])
def test_similar_but_unlisted_urls_pass(ut1_dir: Path, url: str | None) -> None:
    blocklist = UrlBlocklist.load([str(ut1_dir)])
    assert blocklist.match(url) is None
    doc = apply_url_blocklist(_doc(url), blocklist)
    assert doc.removal is None
    assert _signal(doc, "url_blocklist_entry") is None and _signal(doc, "url_blocklist_flag") is None


def test_allowlist_wins_over_the_blocklist_for_the_domain_and_its_subdomains(ut1_dir: Path) -> None:
    blocklist = UrlBlocklist.load([str(ut1_dir)], allow=["sub.bad.example"])
    assert blocklist.match("http://sub.bad.example/") is None
    assert blocklist.match("http://x.sub.bad.example/") is None
    assert blocklist.match("http://other.bad.example/") is not None


def test_categories_can_be_selected_and_missing_ones_are_an_error(ut1_dir: Path) -> None:
    only_phishing = UrlBlocklist.load([str(ut1_dir)], categories=["phishing"])
    assert only_phishing.match("http://bad.example/") is None
    assert only_phishing.match("http://phish.example/") is not None
    with pytest.raises(FileNotFoundError, match="gambling"):
        UrlBlocklist.load([str(ut1_dir)], categories=["gambling"])


def test_banned_words_in_urls_follow_the_hard_soft_and_subword_rules(ut1_dir: Path) -> None:
    blocklist = UrlBlocklist.load([str(ut1_dir)], url_words_dir="builtin:url_words")
    hard = blocklist.match("http://example.com/free-porn-videos")
    assert hard is not None and hard.reason == "url_banned_word" and "porn" in hard.words
    assert blocklist.match("http://example.com/anatomy/anus") is None  # one soft word is not enough
    soft = blocklist.match("http://example.com/anus-asshole")
    assert soft is not None and set(soft.words) == {"anus", "asshole"}
    assert blocklist.match("https://en.wikipedia.org/wiki/Sex_education") is None
    doc = apply_url_blocklist(_doc("http://example.com/free-porn-videos"), blocklist)
    assert doc.removal is not None and doc.removal.reason.value == "url_banned_word"
    assert "porn" in _signal(doc, "url_banned_words") and _signal(doc, "url_blocklist_category") is None


def test_shipped_ut1_list_blocks_known_domains_offline() -> None:
    blocklist = UrlBlocklist.load(["builtin:ut1"])
    assert len(blocklist.domains) > 4_000_000
    assert blocklist.match("https://www.0-1avsex.com/index.html") is not None
    assert blocklist.match("https://www.wikipedia.org/") is None


def test_import_ut1_archive_reads_members_without_extracting(tmp_path: Path) -> None:
    src = tmp_path / "src" / "blacklists"
    for cat, domains in (("adult", "a.example\nb.example\na.example\n"), ("gambling", "g.example\n")):
        (src / cat).mkdir(parents=True)
        (src / cat / "domains").write_text(domains)
    archive = tmp_path / "blacklists.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="blacklists")
    counts = import_ut1_archive(archive, tmp_path / "dest", ["adult"])
    assert counts == {"adult": {"domains": 2, "urls": 0}}
    assert not (tmp_path / "dest" / "gambling").exists()
    blocklist = UrlBlocklist.load([str(tmp_path / "dest")])
    assert blocklist.match("http://x.b.example/") is not None
    with pytest.raises(FileNotFoundError):
        import_ut1_archive(archive, tmp_path / "dest2", ["dating"])


# --- word lists -------------------------------------------------------------------


@pytest.fixture(scope="module")
def words() -> WordBlocklist:
    return WordBlocklist.load(["builtin:ldnoobw"])


def test_word_boundaries_in_space_delimited_languages(words: WordBlocklist) -> None:
    clean = words.scan("A classic assessment of the Scunthorpe glass bass passage.", "en")
    assert clean is not None and clean.n_matches == 0
    hit = words.scan("What the FUCK. Fuck!", "en")
    assert hit is not None and hit.terms == {"fuck": 2} and hit.n_tokens == 4


def test_multi_word_entries_match_as_one_term(words: WordBlocklist) -> None:
    m = words.scan("he mentioned two girls one cup and 2 girls 1 cup", "en")
    assert m is not None and "2 girls 1 cup" in m.terms


def test_cjk_and_thai_match_as_substrings_without_one_character_entries(words: WordBlocklist) -> None:
    zh = words.scan("他妈的这是中文", "zh")
    assert zh is not None and zh.terms == {"他妈的": 1}  # leftmost-longest: not 他妈 and 妈的 too
    ordinary = words.scan("这种可能性很大，牛奶很好喝。", "zh")  # 性 and 奶 inside ordinary words
    assert ordinary is not None and ordinary.n_matches == 0
    ja = words.scan("これはセックスの話です", "ja")
    assert ja is not None and ja.n_matches >= 1


def test_language_routing_uses_the_documents_language(words: WordBlocklist) -> None:
    text = "Scheiße, verdammte Scheiße"
    german = words.scan(text, "de")
    assert german is not None and german.n_matches >= 1
    english = words.scan(text, "en")
    assert english is not None and english.n_matches == 0
    assert words.scan(text, "xx") is None and words.scan(text, None) is None
    assert "tl" in words.languages  # LDNOOBW 'fil' is LID-176's 'tl'


ISOLATED = (
    "Our clinic offers confidential advice on sex education and contraception for teenagers and parents. "
    + "Appointments are free, and the nurses can also talk about vaccinations, nutrition and sleep. " * 10
    + "Leaflets on sexual health are available in the waiting room in several languages."
)
DENSE = "fuck shit bitch asshole cunt " * 4


def test_default_policy_keeps_an_isolated_mention_and_removes_a_dense_document(words: WordBlocklist) -> None:
    cfg = WordBlocklistConfig()
    kept = apply_word_blocklist(_doc(text=ISOLATED), words, cfg)
    assert kept.removal is None
    assert _signal(kept, "blocklist_match_count") >= 1  # annotated all the same
    assert "sex" in _signal(kept, "blocklist_terms")
    assert _signal(kept, "word_blocklist_flag") is None
    removed = apply_word_blocklist(_doc(text=DENSE), words, cfg)
    assert removed.removal is not None and removed.removal.reason.value == "word_blocklist"
    assert set(removed.removal.matched) >= {"fuck", "shit", "bitch"}
    assert removed.removal.detail and "distinct" in removed.removal.detail


def test_c4_preset_removes_on_any_match_and_annotate_mode_removes_nothing(words: WordBlocklist) -> None:
    assert apply_word_blocklist(_doc(text=ISOLATED), words, WordBlocklistConfig(preset="c4")).removal is not None
    annotated = apply_word_blocklist(_doc(text=DENSE), words, WordBlocklistConfig(mode="annotate"))
    assert annotated.removal is None and _signal(annotated, "blocklist_match_count") == 20
    assert _signal(annotated, "word_blocklist_flag") == "word_blocklist"  # what filter mode would remove


def test_per_language_policy_overrides_the_default(words: WordBlocklist) -> None:
    strict_en = WordBlocklistConfig(per_language={"en": WordPolicyConfig(min_distinct_terms=1)})
    assert apply_word_blocklist(_doc(text=ISOLATED), words, strict_en).removal is not None
    assert apply_word_blocklist(_doc(text=ISOLATED, language="de"), words, strict_en).removal is None


def test_extra_terms_from_config_are_matched() -> None:
    custom = WordBlocklist.load(["builtin:ldnoobw"], extra={"en": ("frobnicate",)})
    m = custom.scan("Please frobnicate the widget.", "en")
    assert m is not None and m.terms == {"frobnicate": 1}


def test_a_single_match_never_removes_under_the_default_policy(words: WordBlocklist) -> None:
    doc = apply_word_blocklist(_doc(text="Sex."), words, WordBlocklistConfig())
    assert doc.removal is None and _signal(doc, "blocklist_match_fraction") == 1.0
