"""Offline data for the probes: the default corpus, users' own files, tokenizers, packing and batch order.

Default corpus: ``pydoc_data.topics`` (the text of Python's reference manual that ``help()`` shows; English
prose with code, about 465k characters in 79 topics), which ships with every CPython install. It is
tokenised at the byte level (``ByteTokenizer``: 256 byte ids + 4 specials, vocabulary 260) and packed into
fixed-length sequences; the held-out split is a seeded set of whole topics (documents), so no passage of a
validation topic is ever trained on.

Classification (RoBERTa): ``topic_task`` asks which of the ``k`` largest pydoc topics a passage of
``passage_chars`` characters comes from; classes are balanced by subsampling, so chance accuracy is exactly
``1/k`` (stated in ``ClassificationData.chance``).

Users' own data (all read locally, nothing downloaded):
* plain text: ``.txt``/``.text``/``.md`` files (or a folder of them); documents are blank-line separated;
* C4-style JSON lines: ``.json``/``.jsonl`` and their ``.gz`` shards (``c4-train.00000-of-01024.json.gz``),
  one object per line with a string field ``"text"``; a folder of shards is read in sorted order;
* GLUE folders: ``train.tsv`` and ``dev.tsv`` (``dev_matched.tsv`` for MNLI) with the task's columns, see
  ``GLUE_TASKS``;
* a tokenizer saved in a local folder (``AutoTokenizer.from_pretrained(dir, local_files_only=True)``).

A missing path raises ``FileNotFoundError``; an empty file, an unknown suffix or a malformed row raises
``ValueError`` whose message starts with ``path:line:``.
"""
from __future__ import annotations

import gzip
import json
import math
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import torch

__all__ = [
    "ByteTokenizer", "HFTokenizer", "load_tokenizer", "default_corpus", "read_corpus", "read_text_file",
    "read_jsonl", "pack", "LMData", "lm_data", "ClassificationData", "topic_task", "GLUE_TASKS", "read_glue",
    "glue_task", "BatchOrder",
]

TEXT_SUFFIXES = (".txt", ".text", ".md")
JSON_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")


# ----------------------------------------------------------------------------------------------- tokenizers
class ByteTokenizer:
    """UTF-8 bytes as tokens: id = byte + 4; specials ``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3.

    The special ids follow RoBERTa's (so ``pad_token_id=1`` and positions start at 2, as in roberta-base).
    ``decode(encode(s)) == s`` for every string.
    """

    name = "bytes"
    offset = 4
    bos_id, pad_id, eos_id, unk_id = 0, 1, 2, 3
    cls_id, sep_id = 0, 2
    vocab_size = 260

    def encode(self, text: str) -> list[int]:
        return [b + self.offset for b in text.encode("utf-8")]

    def decode(self, ids: Iterable[int]) -> str:
        return bytes(int(i) - self.offset for i in ids if int(i) >= self.offset).decode("utf-8", errors="replace")

    def describe(self) -> dict:
        return {"tokenizer": self.name, "vocab_size": self.vocab_size}


class HFTokenizer:
    """A transformers tokenizer loaded from a local folder, behind the same small interface as ``ByteTokenizer``."""

    def __init__(self, path: str | os.PathLike):
        from transformers import AutoTokenizer

        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"{p}: tokenizer folder not found")
        if not p.is_dir():
            raise ValueError(f"{p}: a tokenizer must be a folder written by save_pretrained()")
        try:
            self.tok = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
        except Exception as exc:  # transformers raises OSError/ValueError/KeyError depending on what is missing
            raise ValueError(f"{p}: cannot load a tokenizer from this folder ({type(exc).__name__}: {exc})") from exc
        t = self.tok
        self.name = str(p)
        self.vocab_size = len(t)
        self.eos_id = t.eos_token_id if t.eos_token_id is not None else t.sep_token_id
        self.bos_id = t.bos_token_id if t.bos_token_id is not None else t.cls_token_id
        self.cls_id = t.cls_token_id if t.cls_token_id is not None else self.bos_id
        self.sep_id = t.sep_token_id if t.sep_token_id is not None else self.eos_id
        self.pad_id = t.pad_token_id if t.pad_token_id is not None else self.eos_id
        if self.eos_id is None or self.pad_id is None:
            raise ValueError(f"{p}: the tokenizer defines neither an eos/sep nor a pad token; the probes need one")

    def encode(self, text: str) -> list[int]:
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Iterable[int]) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=True)

    def describe(self) -> dict:
        return {"tokenizer": self.name, "vocab_size": self.vocab_size}


def load_tokenizer(path: str | os.PathLike | None = None):
    """``ByteTokenizer()`` when ``path`` is None, else the tokenizer saved in the local folder ``path``."""
    return ByteTokenizer() if path is None else HFTokenizer(path)


# ----------------------------------------------------------------------------------------------- corpora
def default_corpus() -> list[tuple[str, str]]:
    """The ``pydoc_data.topics`` corpus as (topic, text) pairs in sorted topic order."""
    from pydoc_data.topics import topics

    return sorted(topics.items())


def _missing(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")


def read_text_file(path: str | os.PathLike) -> list[str]:
    """Documents of a plain text file: blank-line separated blocks (a file without blank lines is one document)."""
    path = Path(path)
    _missing(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ValueError(f"{path}:{line}: not valid UTF-8 ({exc.reason})") from exc
    docs, block = [], []
    for line in text.splitlines():
        if line.strip():
            block.append(line)
        elif block:
            docs.append("\n".join(block))
            block = []
    if block:
        docs.append("\n".join(block))
    if not docs:
        raise ValueError(f"{path}:1: empty file (no text)")
    return docs


def read_jsonl(path: str | os.PathLike, field_name: str = "text") -> list[str]:
    """Documents of a C4-style JSON-lines file or ``.gz`` shard: the string field ``field_name`` of each line."""
    path = Path(path)
    _missing(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    docs = []
    lineno = 0
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{lineno}: malformed JSON ({exc.msg} at column {exc.colno})") from None
                if not isinstance(row, dict):
                    raise ValueError(f"{path}:{lineno}: expected a JSON object per line, got {type(row).__name__}")
                if field_name not in row:
                    raise ValueError(f"{path}:{lineno}: no {field_name!r} field (keys: {sorted(row)[:8]})")
                text = row[field_name]
                if not isinstance(text, str):
                    raise ValueError(f"{path}:{lineno}: field {field_name!r} must be a string, "
                                     f"got {type(text).__name__}")
                if text.strip():
                    docs.append(text)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}:{lineno + 1}: cannot read ({type(exc).__name__}: {exc})") from exc
    if not docs:
        raise ValueError(f"{path}:1: empty file (no documents with a non-empty {field_name!r})")
    return docs


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(JSON_SUFFIXES):
        return "jsonl"
    if name.endswith(TEXT_SUFFIXES):
        return "text"
    return None


def read_corpus(path: str | os.PathLike) -> list[str]:
    """Documents from a text file, a JSON-lines file/shard, or a folder of them (read in sorted name order)."""
    path = Path(path)
    _missing(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and _kind(p))
        if not files:
            raise ValueError(f"{path}: folder holds no {'/'.join(TEXT_SUFFIXES + JSON_SUFFIXES)} files")
    else:
        if _kind(path) is None:
            raise ValueError(f"{path}: unknown corpus format; use one of {', '.join(TEXT_SUFFIXES + JSON_SUFFIXES)}")
        files = [path]
    docs: list[str] = []
    for f in files:
        docs.extend(read_jsonl(f) if _kind(f) == "jsonl" else read_text_file(f))
    return docs


# ----------------------------------------------------------------------------------------------- packing
def pack(docs: Sequence[Sequence[int]], seq_len: int, eos_id: int) -> torch.Tensor:
    """Concatenate documents, each followed by ``eos_id``, and cut into rows of ``seq_len`` (the tail is dropped)."""
    if seq_len < 2:
        raise ValueError(f"seq_len must be >= 2, got {seq_len}")
    stream: list[int] = []
    for d in docs:
        stream.extend(d)
        stream.append(eos_id)
    n = len(stream) // seq_len
    return torch.tensor(stream[: n * seq_len], dtype=torch.long).view(n, seq_len)


class BatchOrder:
    """Which examples make up global batch ``step``: a pure function of (seed, step), so resuming needs only the step.

    Example position ``p = step * batch_size + j`` lies in epoch ``p // n``; each epoch is a fresh permutation of
    ``range(n)`` drawn from a generator seeded with ``(seed, epoch)``. Under DDP rank ``r`` of ``w`` takes the
    ``r``-th contiguous slice of the global batch.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0):
        if n < 1:
            raise ValueError("BatchOrder: the training split is empty")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perms = {epoch: torch.randperm(self.n, generator=g)}
        return self._perms[epoch]

    def indices(self, step: int, rank: int = 0, world: int = 1) -> torch.Tensor:
        if self.batch_size % world:
            raise ValueError(f"global batch {self.batch_size} is not divisible by world size {world}")
        per = self.batch_size // world
        out = []
        for p in range(step * self.batch_size + rank * per, step * self.batch_size + (rank + 1) * per):
            out.append(int(self._perm(p // self.n)[p % self.n]))
        return torch.tensor(out, dtype=torch.long)

    def epoch(self, step: int) -> float:
        return step * self.batch_size / self.n


# ----------------------------------------------------------------------------------------------- LM data
@dataclass
class LMData:
    """Packed language-modelling data: ``train`` and ``val`` are (N, seq_len) LongTensors."""
    train: torch.Tensor
    val: torch.Tensor
    tokenizer: object
    info: dict = field(default_factory=dict)

    task = "lm"

    @property
    def n_train(self) -> int:
        return self.train.shape[0]

    def train_batch(self, idx: torch.Tensor) -> dict:
        x = self.train[idx]
        return {"input_ids": x, "labels": x}

    def val_batch(self, idx: torch.Tensor) -> dict:
        x = self.val[idx]
        return {"input_ids": x, "labels": x}

    @property
    def n_val(self) -> int:
        return self.val.shape[0]


def _doc_split(n_docs: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n_docs, generator=g).tolist()
    n_val = max(1, round(val_fraction * n_docs)) if n_docs >= 2 and val_fraction > 0 else 0
    return sorted(perm[n_val:]), sorted(perm[:n_val])


def lm_data(path: str | os.PathLike | None = None, tokenizer=None, *, seq_len: int = 128,
            val_fraction: float = 0.1, seed: int = 0, max_docs: int | None = None) -> LMData:
    """Tokenise, split by document (seeded) and pack the default corpus (``path=None``) or the user's files.

    With a single document, or when the validation documents are shorter than one sequence, the last
    ``val_fraction`` of the packed training rows is held out instead (stated in ``info["split"]``).
    """
    tok = tokenizer if tokenizer is not None else ByteTokenizer()
    if path is None:
        docs = [text for _, text in default_corpus()]
        source = "pydoc_data.topics"
    else:
        docs = read_corpus(path)
        source = str(path)
    if max_docs:
        docs = docs[:max_docs]
    ids = [tok.encode(d) for d in docs]
    tr_docs, va_docs = _doc_split(len(ids), val_fraction, seed)
    train = pack([ids[i] for i in tr_docs], seq_len, tok.eos_id)
    val = pack([ids[i] for i in va_docs], seq_len, tok.eos_id)
    split = "documents"
    if val_fraction > 0 and val.shape[0] == 0:
        allrows = pack(ids, seq_len, tok.eos_id)
        n_val = max(1, math.ceil(val_fraction * allrows.shape[0]))
        train, val, split = allrows[:-n_val], allrows[-n_val:], "tail-rows"
    if train.shape[0] == 0:
        raise ValueError(f"{source}: fewer than seq_len={seq_len} tokens of training text")
    info = {"source": source, "n_docs": len(docs), "n_train_docs": len(tr_docs), "n_val_docs": len(va_docs),
            "split": split, "seq_len": seq_len, "n_train_seqs": int(train.shape[0]),
            "n_val_seqs": int(val.shape[0]), "n_tokens": int(sum(len(i) + 1 for i in ids)), **tok.describe()}
    return LMData(train, val, tok, info)


# ----------------------------------------------------------------------------------------------- classification
@dataclass
class ClassificationData:
    """Tokenised sentence(-pair) classification data; tensors are (N, L) with right padding."""
    train: dict
    val: dict
    labels: list
    chance: float
    tokenizer: object
    info: dict = field(default_factory=dict)

    task = "classification"

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @property
    def n_train(self) -> int:
        return self.train["labels"].shape[0]

    @property
    def n_val(self) -> int:
        return self.val["labels"].shape[0]

    def train_batch(self, idx: torch.Tensor) -> dict:
        return {k: v[idx] for k, v in self.train.items()}

    def val_batch(self, idx: torch.Tensor) -> dict:
        return {k: v[idx] for k, v in self.val.items()}


def encode_examples(examples: Sequence[tuple], tok, max_len: int) -> dict:
    """RoBERTa layout ``<s> a </s></s> b </s>`` (``<s> a </s>`` for single sentences), longest-first truncation."""
    rows, labels = [], []
    for ex in examples:
        a, b, y = ex
        ia, ib = tok.encode(a), (tok.encode(b) if b is not None else None)
        budget = max_len - (4 if ib is not None else 2)
        if ib is None:
            ia = ia[:budget]
            ids = [tok.cls_id, *ia, tok.sep_id]
        else:
            while len(ia) + len(ib) > budget:
                if len(ia) >= len(ib):
                    ia = ia[:-1]
                else:
                    ib = ib[:-1]
            ids = [tok.cls_id, *ia, tok.sep_id, tok.sep_id, *ib, tok.sep_id]
        rows.append(ids)
        labels.append(y)
    L = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), L), tok.pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), L), dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": torch.tensor(labels, dtype=torch.long)}


def topic_task(num_topics: int = 4, *, passage_chars: int = 128, val_fraction: float = 0.2, seed: int = 0,
               tokenizer=None, max_len: int | None = None) -> ClassificationData:
    """Which of the ``num_topics`` largest ``pydoc_data.topics`` entries a passage comes from (balanced; chance 1/k).

    Each topic is cut into non-overlapping passages of ``passage_chars`` characters (whitespace-normalised,
    the short tail dropped); every class is subsampled to the smallest class's count with a seeded generator;
    the validation split takes ``val_fraction`` of each class.
    """
    tok = tokenizer if tokenizer is not None else ByteTokenizer()
    topics = sorted(default_corpus(), key=lambda kv: (-len(kv[1]), kv[0]))[:num_topics]
    if num_topics < 2 or len(topics) < num_topics:
        raise ValueError(f"num_topics must be in [2, {len(default_corpus())}], got {num_topics}")
    per_class = []
    for _, text in topics:
        flat = " ".join(text.split())
        per_class.append([flat[i: i + passage_chars] for i in range(0, len(flat) - passage_chars + 1, passage_chars)])
    n = min(len(p) for p in per_class)
    n_val = max(1, round(val_fraction * n))
    g = torch.Generator().manual_seed(seed)
    train, val = [], []
    for label, passages in enumerate(per_class):
        pick = torch.randperm(len(passages), generator=g)[:n].tolist()
        val += [(passages[i], None, label) for i in pick[:n_val]]
        train += [(passages[i], None, label) for i in pick[n_val:]]
    max_len = max_len or (len(tok.encode("x" * passage_chars)) * 4 + 2)
    info = {"source": "pydoc_data.topics", "task": "topic", "topics": [k for k, _ in topics],
            "passage_chars": passage_chars, "per_class": n, "n_train": len(train), "n_val": len(val),
            **tok.describe()}
    return ClassificationData(encode_examples(train, tok, max_len), encode_examples(val, tok, max_len),
                              [k for k, _ in topics], 1.0 / num_topics, tok, info)


# ----------------------------------------------------------------------------------------------- GLUE
@dataclass(frozen=True)
class GlueLayout:
    text_a: str | int
    text_b: str | int | None
    label: str | int
    labels: tuple
    header: bool = True
    n_columns: int | None = None   # for header-less files
    dev: str = "dev.tsv"
    metric: str = "accuracy"


GLUE_TASKS: dict[str, GlueLayout] = {
    "rte": GlueLayout("sentence1", "sentence2", "label", ("entailment", "not_entailment")),
    "qnli": GlueLayout("question", "sentence", "label", ("entailment", "not_entailment")),
    "wnli": GlueLayout("sentence1", "sentence2", "label", ("0", "1")),
    "sst-2": GlueLayout("sentence", None, "label", ("0", "1")),
    "mrpc": GlueLayout("#1 String", "#2 String", "Quality", ("0", "1"), metric="f1"),
    "qqp": GlueLayout("question1", "question2", "is_duplicate", ("0", "1"), metric="f1"),
    "mnli": GlueLayout("sentence1", "sentence2", "gold_label", ("contradiction", "entailment", "neutral"),
                       dev="dev_matched.tsv"),
    # CoLA's files have no header: source, label, original label, sentence.
    "cola": GlueLayout(3, None, 1, ("0", "1"), header=False, n_columns=4, metric="mcc"),
}
_GLUE_ALIASES = {"sst2": "sst-2", "sst": "sst-2", "mnli-m": "mnli"}


def _glue_layout(task: str) -> tuple[str, GlueLayout]:
    key = _GLUE_ALIASES.get(task.lower(), task.lower())
    if key not in GLUE_TASKS:
        raise ValueError(f"unknown GLUE task {task!r}; supported: {', '.join(GLUE_TASKS)} "
                         "(STS-B is a regression task and is not supported)")
    return key, GLUE_TASKS[key]


def read_glue(path: str | os.PathLike, task: str) -> list[tuple[str, str | None, int]]:
    """Rows ``(text_a, text_b or None, label index)`` of one GLUE TSV file laid out as ``GLUE_TASKS[task]``."""
    path = Path(path)
    _missing(path)
    _, lay = _glue_layout(task)
    out = []
    with open(path, encoding="utf-8", newline="") as fh:
        lines = fh.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [ln.rstrip("\r") for ln in lines]
    if not lines:
        raise ValueError(f"{path}:1: empty file")
    start = 0
    if lay.header:
        header = lines[0].split("\t")
        cols = {}
        for key in (lay.text_a, lay.text_b, lay.label):
            if key is None:
                continue
            if key not in header:
                raise ValueError(f"{path}:1: header lacks column {key!r} needed by {task} (header: {header})")
            cols[key] = header.index(key)
        n_cols = len(header)
        ia, ib, il = cols[lay.text_a], cols.get(lay.text_b), cols[lay.label]
        start = 1
    else:
        n_cols, ia, ib, il = lay.n_columns, lay.text_a, lay.text_b, lay.label
    for lineno, line in enumerate(lines[start:], start + 1):
        if not line.strip():
            continue
        f = line.split("\t")
        if len(f) != n_cols:
            raise ValueError(f"{path}:{lineno}: expected {n_cols} tab-separated columns for {task}, got {len(f)}")
        y = f[il].strip()
        if y not in lay.labels:
            raise ValueError(f"{path}:{lineno}: label {y!r} is not one of {list(lay.labels)}")
        out.append((f[ia], f[ib] if ib is not None else None, lay.labels.index(y)))
    if not out:
        raise ValueError(f"{path}:{start + 1}: no data rows")
    return out


def glue_task(folder: str | os.PathLike, task: str, *, tokenizer=None, max_len: int = 128,
              max_train: int | None = None) -> ClassificationData:
    """A GLUE task from a local folder holding ``train.tsv`` and ``dev.tsv`` (``dev_matched.tsv`` for MNLI).

    ``chance`` is the majority-class accuracy on the dev split.
    """
    folder = Path(folder)
    _missing(folder)
    key, lay = _glue_layout(task)
    tok = tokenizer if tokenizer is not None else ByteTokenizer()
    train = read_glue(folder / "train.tsv", key)
    dev = read_glue(folder / lay.dev, key)
    if max_train:
        train = train[:max_train]
    counts = [sum(1 for r in dev if r[2] == c) for c in range(len(lay.labels))]
    info = {"source": str(folder), "task": key, "metric": lay.metric, "n_train": len(train), "n_val": len(dev),
            "max_len": max_len, **tok.describe()}
    return ClassificationData(encode_examples(train, tok, max_len), encode_examples(dev, tok, max_len),
                              list(lay.labels), max(counts) / len(dev), tok, info)
