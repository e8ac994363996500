import pytest
import torch

from tuna import prompts
from tuna.model.masks import dense_mask
from tuna.sequence import IGNORE, Text, Visual, build_batch, latent_grid, pack


def image(h=32, w=32, frames=1):
    return Visual(pixels=torch.rand(3, frames, h, w) * 2 - 1)


def test_t2i_layout(tiny_cfg):
    tok = tiny_cfg.tokens
    sample = [Text([10, 11, 12]), Visual(pixels=torch.zeros(3, 1, 32, 48), noisy=True)]
    batch = build_batch([sample], tok, tiny_cfg.vae)
    (block,) = batch.blocks
    assert block.grid == (1, 2, 3) and block.noisy and block.start == 4
    ids = batch.input_ids[0].tolist()
    assert ids[:4] == [10, 11, 12, tok.vision_start_id]
    assert ids[4:11] == [tok.image_pad_id] * 7 and ids[11] == tok.vision_end_id
    assert batch.layout.block_ids[0].tolist() == [0] * 4 + [1] * 7 + [0]
    # 3D positions: text 0..3, timestep token 4, visual tokens 5 + (f, h, w), then text after max
    pos = batch.position_ids[:, 0]
    assert pos[:, :5].tolist() == [[0, 1, 2, 3, 4]] * 3
    assert pos[:, 5].tolist() == [5, 5, 5] and pos[:, 10].tolist() == [5, 6, 7]
    assert pos[:, 11].tolist() == [8, 8, 8]
    assert (batch.targets == IGNORE).all()


def test_supervised_targets_are_shifted(tiny_cfg):
    batch = build_batch(
        [[Text([7, 8]), image(), Text([20, 21], supervised=True)]], tiny_cfg.tokens, tiny_cfg.vae
    )
    ids, targets = batch.input_ids[0], batch.targets[0]
    sup = (targets != IGNORE).nonzero().flatten().tolist()
    assert [targets[i].item() for i in sup] == [20, 21]
    assert [ids[i + 1].item() for i in sup] == [20, 21]  # each target is the next token


def test_several_images_and_video(tiny_cfg):
    sample = [
        Text([9]),
        image(),
        Text([9]),
        image(32, 64, frames=5),
        Text([9]),
        Visual(pixels=torch.zeros(3, 1, 16, 16), noisy=True),
    ]
    batch = build_batch([sample], tiny_cfg.tokens, tiny_cfg.vae)
    assert [b.grid for b in batch.blocks] == [(1, 2, 2), (2, 2, 4), (1, 1, 1)]
    assert [b.noisy for b in batch.blocks] == [False, False, True]
    assert sorted(set(batch.layout.block_ids[0].tolist())) == [0, 1, 2, 3]


def test_packing_isolates_samples_and_restarts_positions(tiny_cfg):
    samples = [[Text([1, 2, 3])], [Text([4, 5]), image()], [Text([6] * 9)]]
    batch = build_batch(samples, tiny_cfg.tokens, tiny_cfg.vae, pack_len=16)
    assert batch.input_ids.shape[0] == 2
    sid = batch.layout.sample_ids
    for r in range(2):
        for s in sid[r].unique().tolist():
            if s < 0:
                continue
            pos = batch.position_ids[0, r][sid[r] == s]
            assert pos[0] == 0  # positions restart per sample
    mask = dense_mask(batch.layout)
    assert not (mask & (sid[:, :, None] != sid[:, None, :])).any()


def test_pack_first_fit():
    assert pack([5, 3, 4, 2], 8) == [[0, 1], [2, 3]]
    with pytest.raises(ValueError, match="more than the packing length"):
        pack([9], 8)


@pytest.mark.parametrize(
    "pixels, message",
    [
        (torch.zeros(4, 1, 32, 32), "3 RGB channels"),
        (torch.zeros(3, 1, 40, 32), "multiples of 16"),
        (torch.zeros(3, 6, 32, 32), "1 \\+ 4k frames"),
    ],
)
def test_bad_visuals(tiny_cfg, pixels, message):
    with pytest.raises(ValueError, match=message):
        latent_grid(Visual(pixels=pixels), tiny_cfg.vae)


def test_empty_inputs(tiny_cfg):
    with pytest.raises(ValueError, match="empty"):
        build_batch([[Text([])]], tiny_cfg.tokens, tiny_cfg.vae)
    with pytest.raises(ValueError, match="at least one segment"):
        build_batch([[]], tiny_cfg.tokens, tiny_cfg.vae)


def test_chat_prompts_supervise_only_answers(tiny_cfg, byte_tokenizer):
    encode = lambda s: byte_tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
    sample = prompts.understanding(encode, image(), "What colour?", "red")
    batch = build_batch([sample], tiny_cfg.tokens, tiny_cfg.vae)
    sup = batch.targets[0][batch.targets[0] != IGNORE].tolist()
    assert byte_tokenizer.decode(sup) == "red<|im_end|>"
    text = byte_tokenizer.decode(batch.input_ids[0][batch.layout.block_ids[0] == 0].tolist())
    assert text.startswith(
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|>"
    )
    # the prompt format equals the tokenizer's own chat template on text-only turns
    chat = prompts.conversation(encode, [("user", ["hi"])], add_generation_prompt=True)
    ids = [i for seg in chat for i in seg.ids]
    assert (
        ids
        == byte_tokenizer.apply_chat_template(
            [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=True
        )["input_ids"]
    )
