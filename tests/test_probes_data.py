"""probes.data: tokenizers, the default corpus, packing and splits, users' files (text, JSONL, .json.gz, GLUE, a
local tokenizer folder), and the errors for missing paths, empty files and malformed rows."""
import gzip
import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from probes import data as D



# ----------------------------------------------------------------------------------------------- tokenizers
@given(st.text(max_size=200))
def test_byte_tokenizer_round_trip(text):
    tok = D.ByteTokenizer()
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert all(tok.offset <= i < tok.vocab_size for i in ids)
    assert len(ids) == len(text.encode("utf-8"))


def test_byte_tokenizer_specials_follow_roberta():
    tok = D.ByteTokenizer()
    assert (tok.bos_id, tok.pad_id, tok.eos_id, tok.vocab_size) == (0, 1, 2, 260)
    assert tok.decode([tok.bos_id, *tok.encode("hé"), tok.eos_id, tok.pad_id]) == "hé"


def _save_word_tokenizer(folder):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.train_from_iterator(["the cat sat on the mat", "a dog ran far"],
                           trainers.WordLevelTrainer(special_tokens=["<s>", "<pad>", "</s>", "<unk>"]))
    PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                            unk_token="<unk>").save_pretrained(str(folder))


def test_local_tokenizer_folder(tmp_path):
    _save_word_tokenizer(tmp_path / "tok")
    tok = D.load_tokenizer(tmp_path / "tok")
    ids = tok.encode("the cat sat")
    assert len(ids) == 3 and tok.decode(ids) == "the cat sat"
    assert (tok.bos_id, tok.pad_id, tok.eos_id) == (0, 1, 2)
    data = D.lm_data(_write(tmp_path / "c.txt", "the cat sat on the mat\n\na dog ran far\n"), tok, seq_len=4,
                     val_fraction=0.0)
    assert data.train.max() < tok.vocab_size


def test_tokenizer_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        D.load_tokenizer(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        D.load_tokenizer(tmp_path / "empty")


# ----------------------------------------------------------------------------------------------- default corpus
def test_default_corpus_packing_and_document_split():
    tok = D.ByteTokenizer()
    docs = D.default_corpus()
    assert len(docs) > 50 and sum(len(t) for _, t in docs) > 300_000
    data = D.lm_data(seq_len=128, val_fraction=0.1, seed=0)
    info = data.info
    assert info["split"] == "documents" and info["n_val_docs"] == round(0.1 * len(docs))
    assert data.train.shape[1] == data.val.shape[1] == 128
    n_tok = sum(len(tok.encode(t)) + 1 for _, t in docs)
    assert info["n_tokens"] == n_tok
    # packing keeps every token but the two tails, and each document ends with eos
    assert n_tok - 2 * 128 < (data.train.numel() + data.val.numel()) <= n_tok
    assert int((data.train == tok.eos_id).sum()) >= info["n_train_docs"] - 1
    # the split is deterministic in the seed, and differs across seeds
    assert torch.equal(D.lm_data(seq_len=128, seed=0).val, data.val)
    assert not torch.equal(D.lm_data(seq_len=128, seed=1).val[:4], data.val[:4])


def test_pack_exact():
    rows = D.pack([[5, 6, 7], [8, 9]], seq_len=3, eos_id=2)
    assert rows.tolist() == [[5, 6, 7], [2, 8, 9]]  # the trailing eos is the dropped tail


def test_batch_order_is_a_function_of_step_and_splits_across_ranks():
    order = D.BatchOrder(n=10, batch_size=4, seed=3)
    seen = torch.cat([order.indices(s) for s in range(5)])  # 20 positions = exactly two epochs
    assert sorted(seen[:10].tolist()) == list(range(10)) and sorted(seen[10:].tolist()) == list(range(10))
    again = D.BatchOrder(n=10, batch_size=4, seed=3)
    assert torch.equal(again.indices(3), order.indices(3))
    halves = torch.cat([order.indices(2, rank=0, world=2), order.indices(2, rank=1, world=2)])
    assert torch.equal(halves, order.indices(2))
    with pytest.raises(ValueError, match="divisible"):
        order.indices(0, rank=0, world=3)


def test_topic_task_is_balanced_with_stated_chance():
    task = D.topic_task(4, passage_chars=128, seed=0)
    assert task.num_labels == 4 and task.chance == 0.25
    for split in (task.train, task.val):
        counts = torch.bincount(split["labels"], minlength=4)
        assert counts.min() == counts.max() > 0
    assert task.train["input_ids"][:, 0].eq(task.tokenizer.cls_id).all()
    assert task.info["topics"][0] == "specialnames"


# ----------------------------------------------------------------------------------------------- users' files
def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_plain_text_and_folder(tmp_path):
    _write(tmp_path / "a.txt", "first doc line one\nline two\n\n\nsecond doc\n")
    _write(tmp_path / "b.md", "third doc\n")
    (tmp_path / "ignored.csv").write_text("x")
    assert D.read_text_file(tmp_path / "a.txt") == ["first doc line one\nline two", "second doc"]
    assert D.read_corpus(tmp_path) == ["first doc line one\nline two", "second doc", "third doc"]


def test_jsonl_and_gz_shards(tmp_path):
    rows = [{"text": f"document number {i} " * 5, "url": "u", "timestamp": "t"} for i in range(6)]
    body = "\n".join(json.dumps(r) for r in rows) + "\n"
    _write(tmp_path / "c4-train.00000-of-01024.json", body)
    with gzip.open(tmp_path / "c4-train.00001-of-01024.json.gz", "wt", encoding="utf-8") as fh:
        fh.write(body)
    assert D.read_jsonl(tmp_path / "c4-train.00001-of-01024.json.gz") == [r["text"] for r in rows]
    docs = D.read_corpus(tmp_path)
    assert len(docs) == 12
    data = D.lm_data(tmp_path, seq_len=16, val_fraction=0.25, seed=0)
    assert data.info["n_docs"] == 12 and data.info["n_val_docs"] == 3 and data.n_val > 0


@pytest.mark.parametrize("line, match", [
    ('{"text": "ok"', "malformed JSON"),
    ('["a list"]', "expected a JSON object"),
    ('{"content": "x"}', "no 'text' field"),
    ('{"text": 3}', "must be a string"),
])
def test_jsonl_malformed_row_names_file_and_line(tmp_path, line, match):
    f = _write(tmp_path / "shard.jsonl", '{"text": "good"}\n\n' + line + "\n")
    with pytest.raises(ValueError, match=rf"shard\.jsonl:3: .*{match}"):
        D.read_corpus(f)


def test_corrupt_gz_names_file(tmp_path):
    f = tmp_path / "bad.json.gz"
    f.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=r"bad\.json\.gz:1: cannot read"):
        D.read_jsonl(f)


def test_missing_empty_and_unknown(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        D.read_corpus(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match=r"empty\.txt:1: empty file"):
        D.read_corpus(_write(tmp_path / "empty.txt", "\n  \n"))
    with pytest.raises(ValueError, match=r"e\.jsonl:1: empty file"):
        D.read_corpus(_write(tmp_path / "e.jsonl", ""))
    with pytest.raises(ValueError, match="unknown corpus format"):
        D.read_corpus(_write(tmp_path / "x.csv", "a,b"))
    (tmp_path / "sub").mkdir()
    with pytest.raises(ValueError, match="holds no"):
        D.read_corpus(tmp_path / "sub")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nfine\n\xff\xfe\n")
    with pytest.raises(ValueError, match=r"bad\.txt:3: not valid UTF-8"):
        D.read_corpus(bad)


# ----------------------------------------------------------------------------------------------- GLUE
GLUE_FILES = {
    "rte": ("index\tsentence1\tsentence2\tlabel\n", "{i}\tA man walks {i}.\tA person moves.\t{y}\n",
            ("entailment", "not_entailment")),
    "qnli": ("index\tquestion\tsentence\tlabel\n", "{i}\tWho walks {i}?\tA man walks.\t{y}\n",
             ("entailment", "not_entailment")),
    "sst-2": ("sentence\tlabel\n", "a fine film number {i} \t{y}\n", ("0", "1")),
    "mrpc": ("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n", "{y}\t1{i}\t2{i}\tHe said {i}.\tHe stated {i}.\n",
             ("0", "1")),
    "cola": ("", "gj04\t{y}\t\tThe book {i} was read.\n", ("0", "1")),
}


def _glue_folder(root, task, n_train=6, n_dev=4, dev_name="dev.tsv"):
    header, row, labels = GLUE_FILES[task]
    root.mkdir(parents=True, exist_ok=True)
    for name, n in (("train.tsv", n_train), (dev_name, n_dev)):
        _write(root / name, header + "".join(row.format(i=i, y=labels[i % 2 if i < n - 1 else 0]) for i in range(n)))
    return root


@pytest.mark.parametrize("task", sorted(GLUE_FILES))
def test_glue_layouts(tmp_path, task):
    folder = _glue_folder(tmp_path / task, task)
    rows = D.read_glue(folder / "train.tsv", task)
    assert len(rows) == 6 and {r[2] for r in rows} == {0, 1}
    pair = task in ("rte", "qnli", "mrpc")
    assert (rows[0][1] is not None) == pair
    data = D.glue_task(folder, task, max_len=24)
    assert data.num_labels == 2 and data.n_train == 6 and data.n_val == 4
    assert data.chance == 0.75  # dev labels 0,1,0,0: majority class
    ids = data.train["input_ids"]
    assert ids.shape[1] <= 24 and ids[:, 0].eq(0).all()
    if pair:  # <s> a </s></s> b </s>
        row = ids[0][data.train["attention_mask"][0].bool()].tolist()
        assert [row[i] for i in range(len(row)) if row[i] == 2][:2] == [2, 2]


def test_glue_malformed_rows_name_file_and_line(tmp_path):
    folder = _glue_folder(tmp_path / "rte", "rte")
    text = (folder / "train.tsv").read_text().splitlines()
    text[3] = "3\tonly two columns"
    _write(folder / "train.tsv", "\n".join(text) + "\n")
    with pytest.raises(ValueError, match=r"train\.tsv:4: expected 4 tab-separated columns"):
        D.glue_task(folder, "rte")
    text[3] = "3\ta\tb\tmaybe"
    _write(folder / "train.tsv", "\n".join(text) + "\n")
    with pytest.raises(ValueError, match=r"train\.tsv:4: label 'maybe' is not one of"):
        D.glue_task(folder, "RTE")
    _write(folder / "train.tsv", "idx\tsentence1\tlabel\n")
    with pytest.raises(ValueError, match=r"train\.tsv:1: header lacks column 'sentence2'"):
        D.glue_task(folder, "rte")
    _write(folder / "train.tsv", "")
    with pytest.raises(ValueError, match=r"train\.tsv:1: empty file"):
        D.glue_task(folder, "rte")
    (folder / "dev.tsv").unlink()
    with pytest.raises(FileNotFoundError, match="dev.tsv"):
        D.read_glue(folder / "dev.tsv", "rte")
    with pytest.raises(ValueError, match="unknown GLUE task"):
        D.glue_task(folder, "stsb")
