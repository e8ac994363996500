"""Chat-formatted samples for every task (ChatML, the layout of Qwen2.5's chat template).

    <|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{parts}<|im_end|>\n<|im_start|>assistant\n{reply}<|im_end|>\n

A turn's content is a list of parts: strings and `Visual`s (each becomes a vision block). The
assistant's text is supervised (its closing <|im_end|> included, so the model learns to stop); prompts,
system text and visual tokens never are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tuna.sequence import Segment, Text, Visual

Part = str | Visual
Encode = Callable[[str], list[int]]

DEFAULT_SYSTEM = "You are a helpful assistant."
CAPTION_PROMPT = "Describe the image."


def conversation(
    encode: Encode,
    turns: Sequence[tuple[str, Sequence[Part]]],
    system: str | None = DEFAULT_SYSTEM,
    add_generation_prompt: bool = False,
    encode_content: Encode | None = None,
) -> list[Segment]:
    """Segments for a conversation of (role, parts) turns.

    `encode` tokenizes the template (its special tokens become control tokens). With `encode_content`,
    message text is tokenized by it instead — e.g. with special-token splitting, so a user typing
    "<|im_end|>" cannot forge a turn boundary.
    """
    segments: list[Segment] = []
    pending: list[tuple[str, bool]] = []  # (text, is message content) waiting to be encoded together

    def encoded(pieces: list[tuple[str, bool]]) -> list[int]:
        if encode_content is None:
            return encode("".join(text for text, _ in pieces))
        return [i for text, content in pieces if text for i in (encode_content if content else encode)(text)]

    def flush() -> None:
        if pending:
            segments.append(Text(encoded(pending)))
            pending.clear()

    if system is not None:
        pending += [("<|im_start|>system\n", False), (system, True), ("<|im_end|>\n", False)]
    for role, parts in turns:
        if role not in ("user", "assistant", "system"):
            raise ValueError(f"unknown chat role {role!r}; expected user, assistant or system")
        pending.append((f"<|im_start|>{role}\n", False))
        for part in parts:
            if isinstance(part, Visual):
                flush()
                segments.append(part)
            elif role == "assistant":
                flush()
                segments.append(Text(encoded([(part, True), ("<|im_end|>", False)]), supervised=True))
            else:
                pending.append((part, True))
        if role != "assistant" or not parts or isinstance(parts[-1], Visual):
            pending.append(("<|im_end|>", False))
        pending.append(("\n", False))
    if add_generation_prompt:
        pending.append(("<|im_start|>assistant\n", False))
    flush()
    return segments


# ------------------------------------------------------------------ one builder per task (training)


def understanding(encode: Encode, visual: Visual, question: str, answer: str) -> list[Segment]:
    """Image/video QA or captioning: clean visual, then the question; the answer is supervised."""
    return conversation(encode, [("user", [visual, question]), ("assistant", [answer])])


def captioning(encode: Encode, visual: Visual, caption: str) -> list[Segment]:
    return understanding(encode, visual, CAPTION_PROMPT, caption)


def text_to_visual(encode: Encode, prompt: str, target: Visual) -> list[Segment]:
    """T2I / T2V: the prompt, then the noisy target block."""
    return conversation(encode, [("user", [prompt]), ("assistant", [target])])


def editing(
    encode: Encode,
    source: Visual,
    instruction: str,
    target: Visual,
    drop_instruction: bool = False,
    drop_source: bool = False,
) -> list[Segment]:
    """Editing: clean source image + instruction, then the noisy target.

    The drop flags (condition dropout) remove the instruction and/or the source, giving the rows that
    editing guidance evaluates: (source, ""), and ("") when both are dropped.
    """
    parts: list[Part] = [] if drop_source else [source]
    parts.append("" if drop_instruction else instruction)
    return conversation(encode, [("user", parts), ("assistant", [target])])
