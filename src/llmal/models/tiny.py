"""A tiny randomly initialised BERT with a tokenizer trained on the fly, for offline tests.

`make_tiny_bert(dir, texts)` writes a directory that `AutoTokenizer` and
`AutoModelForSequenceClassification` load like any Hugging Face checkpoint, so an encoder config
`{kind: transformer, model: <dir>}` exercises the real fine-tuning path without a download.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_wordpiece_tokenizer(texts: Iterable[str], *, vocab_size: int):
    """A BERT-style (lower-casing, WordPiece) fast tokenizer built from `texts`, deterministically:
    the special tokens, every character (alone and as a ##continuation), then the most frequent
    words (ties by the word) up to `vocab_size`; rarer words split into characters. (The
    `tokenizers` WordPiece trainer breaks frequency ties in hash order, so two builds from the
    same texts could differ, and with them every test number.)"""
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({c for w in counts for c in w})
    vocab = list(SPECIAL_TOKENS) + chars + [f"##{c}" for c in chars]
    known = set(vocab)
    for word, _ in sorted(counts.items(), key=lambda wc: (-wc[1], wc[0])):
        if len(vocab) >= vocab_size:
            break
        if word not in known:
            vocab.append(word)
            known.add(word)
    backend = Tokenizer(models.WordPiece({t: n for n, t in enumerate(vocab)}, unk_token="[UNK]"))
    backend.normalizer = normalizer
    backend.pre_tokenizer = pre_tokenizer
    backend.decoder = decoders.WordPiece()
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]",
                                   pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
                                   mask_token="[MASK]", model_max_length=512)


def make_tiny_bert(path: Path, texts: list[str], *, vocab_size: int = 500, hidden: int = 32,
                   layers: int = 2, heads: int = 2, max_positions: int = 512,
                   seed: int = 0) -> Path:
    """Save a random-init BERT encoder (no head: the classifier adds one) and its tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    if not texts:
        raise ValueError("make_tiny_bert needs some texts to train its tokenizer on")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = train_wordpiece_tokenizer(texts, vocab_size=vocab_size)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=4 * hidden,
                        max_position_embeddings=max_positions,
                        pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
