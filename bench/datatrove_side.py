"""The datatrove side of bench/datatrove_bench.py. Runs in datatrove's own venv (never toxsieve's):
it must not import toxsieve. Offline: datatrove's model and word-list downloads are answered from
the local files given on the command line; any other download is an error.

Stages (datatrove's own blocks, as FineWeb chains them):
  1  JsonlReader -> LanguageFilter (fastText LID-176) -> C4BadWordsFilter -> JsonlWriter (survivors)
     -> MinhashDedupSignature                                       tasks = shards
  2  MinhashDedupBuckets                                            tasks = bands
  3  MinhashDedupCluster                                            tasks = 1
  4  JsonlReader (survivors) -> MinhashDedupFilter -> JsonlWriter (kept)  tasks = shards
Every filter has an exclusion writer (removed documents), as toxsieve writes removed/.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.filters import c4_filters
from datatrove.pipeline.filters.c4_filters import C4BadWordsFilter
from datatrove.pipeline.filters.language_filter import LanguageFilter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils import lid as dt_lid
from datatrove.utils.hashing import HashConfig
from datatrove.utils.text import TextNormConfig
from datatrove.utils.word_tokenizers import WordTokenizer

_WORD = re.compile(r"\w+")


class _Offline:
    """Swaps a module's ``cached_asset_path_or_download`` for a resolver of local files while a
    datatrove loader runs: the LID model -> our lid.176 file; an LDNOOBW URL -> our list of that
    language. Anything else raises (no network)."""

    def __init__(self, module, lid_model: str, wordlists: str) -> None:
        self.module, self.lid_model, self.wordlists = module, lid_model, wordlists

    def resolve(self, remote_path: str, *args, **kwargs) -> str:
        if remote_path.endswith("lid.176.bin"):
            return self.lid_model
        if "LDNOOBW" in remote_path:
            path = Path(self.wordlists) / remote_path.rsplit("/", 1)[1]
            if path.is_file():
                return str(path)
        raise RuntimeError(f"offline benchmark: datatrove asked to download {remote_path}")

    def __enter__(self) -> None:
        self.saved = self.module.cached_asset_path_or_download
        self.module.cached_asset_path_or_download = self.resolve

    def __exit__(self, *exc: object) -> None:
        self.module.cached_asset_path_or_download = self.saved


class LocalFT176(dt_lid.FT176LID):
    """datatrove's FT176 LID, loading the model file we ship instead of downloading lid.176.bin."""

    def __init__(self, languages, lid_model: str) -> None:
        super().__init__(languages)
        self.lid_model = lid_model

    @property
    def model(self):
        if self._model is None:
            with _Offline(dt_lid, self.lid_model, ""):
                return dt_lid.FT176LID.model.fget(self)
        return self._model


class LocalLanguageFilter(LanguageFilter):
    def __init__(self, lid_model: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = LocalFT176(self.languages, lid_model)


class LocalC4BadWordsFilter(C4BadWordsFilter):
    """datatrove's C4 badwords filter reading the LDNOOBW lists toxsieve ships.

    datatrove 0.6.0's ``_get_badwords`` reuses its ``lang`` argument as the loop variable of the
    allowlist loop, so for every language it builds the CJK (no word boundary) pattern, caches it
    under "zh" and rebuilds it for every non-Chinese document: "ass" matches inside "class" and
    about 60% of English documents are removed. With ``fixed`` (the default here) the list is loaded
    once per language and non-CJK terms need word boundaries, the C4 rule it means to apply;
    ``--badwords-as-shipped`` runs datatrove's own method."""

    def __init__(self, wordlists: str, fixed: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.wordlists = wordlists
        self.fixed = fixed

    def _get_badwords(self, lang: str):
        if not self.fixed:
            with _Offline(c4_filters, "", self.wordlists):
                return super()._get_badwords(lang)
        if lang not in self._badwords_regex:
            path = Path(self.wordlists) / lang
            if lang not in c4_filters._BADWORDS_LANGS or not path.is_file():
                if self.fail_on_missing_language:
                    raise ValueError(f"no badwords list for {lang!r}")
                return None
            terms = {line.strip() for line in path.read_text(encoding="utf-8").splitlines()} - {""}
            terms -= c4_filters._BADWORDS_ALLOWLIST.get(lang, set())
            alternation = "|".join(re.escape(t) for t in sorted(terms))
            self._badwords_regex[lang] = re.compile(
                alternation if lang in ("ja", "th", "zh") else rf"(?:\W|^)({alternation})(?:\W|$)")
        return self._badwords_regex[lang]


class WordTokens(WordTokenizer):
    """Lower-cased ``\\w+`` words: the tokens toxsieve's word shingles are made of (datatrove's
    default English tokenizer is NLTK's, which needs punkt data from the network)."""

    def word_tokenize(self, text: str) -> list[str]:
        return _WORD.findall(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return [line for line in text.split("\n") if line.strip()]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _WORD.finditer(text)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--input", required=True, help="folder of *.jsonl.gz shards")
    ap.add_argument("--output", required=True)
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--lid-model", required=True)
    ap.add_argument("--wordlists", required=True)
    ap.add_argument("--language-threshold", type=float, default=0.5)
    ap.add_argument("--bands", type=int, default=17)
    ap.add_argument("--rows", type=int, default=15)
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--badwords-as-shipped", action="store_true",
                    help="run datatrove 0.6.0's own (buggy) C4BadWordsFilter._get_badwords")
    args = ap.parse_args()

    out = Path(args.output)
    shards = len(list(Path(args.input).glob("*.jsonl.gz")))
    minhash = MinhashConfig(
        n_grams=args.ngram, num_buckets=args.bands, hashes_per_bucket=args.rows, seed=1,
        # toxsieve shingles lower-cased \w+ words of its normalised text: no other normalisation
        norm_config=TextNormConfig(lowercase=True, norm_whitespace=True, remove_punctuation=False,
                                   norm_unicode_diacritics=False, norm_numbers=False),
        hash_config=HashConfig(precision=64, hash_fc="xxhash"),
    )

    def removed(name: str) -> JsonlWriter:
        return JsonlWriter(str(out / "removed" / name))

    timings = {}
    steps = [
        ("filter+signatures", [
            JsonlReader(args.input, glob_pattern="*.jsonl.gz", text_key="text", id_key="id"),
            LocalLanguageFilter(args.lid_model, languages=None, language_threshold=args.language_threshold,
                                exclusion_writer=removed("language")),
            LocalC4BadWordsFilter(args.wordlists, fixed=not args.badwords_as_shipped, fail_on_missing_language=False,
                                  exclusion_writer=removed("badwords")),
            JsonlWriter(str(out / "filtered")),
            MinhashDedupSignature(str(out / "minhash" / "signatures"), config=minhash, language=WordTokens()),
        ], shards),
        ("buckets", [MinhashDedupBuckets(str(out / "minhash" / "signatures"), str(out / "minhash" / "buckets"),
                                         config=minhash)], args.bands),
        ("cluster", [MinhashDedupCluster(str(out / "minhash" / "buckets"), str(out / "minhash" / "remove_ids"),
                                         config=minhash)], 1),
        ("dedup filter+write", [
            JsonlReader(str(out / "filtered"), glob_pattern="*.jsonl.gz"),
            MinhashDedupFilter(str(out / "minhash" / "remove_ids"), exclusion_writer=removed("minhash")),
            JsonlWriter(str(out / "kept")),
        ], shards),
    ]
    for name, pipeline, tasks in steps:
        started = time.perf_counter()
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=min(args.workers, tasks),
                              logging_dir=str(out / "logs" / name.replace(" ", "_").replace("+", "_"))).run()
        timings[name] = round(time.perf_counter() - started, 3)
        print(f"datatrove step {name}: {timings[name]}s", flush=True)
    (out / "timings.json").write_text(__import__("json").dumps(timings, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
