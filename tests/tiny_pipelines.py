"""Tiny diffusers pipelines with random weights, built from configuration and saved to a
folder, so tests and benches load them through the real loading code with nothing
downloaded. Recipes: /work/shared/reference/DIFFUSERS-TINY.md (sizes from diffusers' own
test fixtures; the tokenizers are written here instead of fetched from the hub).

Importing this module imports torch: import it only where a pipeline is built.
"""

import json
import os
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # before diffusers and transformers are imported

import torch  # noqa: E402
from diffusers.utils import logging as diffusers_logging  # noqa: E402
from transformers.utils import logging as transformers_logging  # noqa: E402

diffusers_logging.disable_progress_bar()
transformers_logging.disable_progress_bar()

# Image sizes and frame counts the tiny pipelines are built for.
IMAGE_SIZE = 32
VIDEO_SIZE = 16
VIDEO_FRAMES = 9  # Wan needs 4k + 1 frames
# Both text encoders are tiny; pipelines would otherwise pad to hundreds of tokens.
MAX_SEQUENCE_LENGTH = 16
_WORDS = ("cat", "dog", "red", "blue", "a", "the", "circle", "square", "in", "of")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte-to-symbol table, which CLIP's byte-level BPE is built on."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes), strict=True))


def clip_tokenizer(folder: Path):  # type: ignore[no-untyped-def]
    """A CLIP tokenizer: every byte symbol (with and without ``</w>``), a few merges."""
    from transformers import CLIPTokenizer

    symbols = list(_bytes_to_unicode().values())
    merges = [("t", "h"), ("th", "e</w>"), ("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>")]
    vocab_list = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({s: i for i, s in enumerate(vocab_list)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    return CLIPTokenizer.from_pretrained(folder, model_max_length=77, local_files_only=True)


def t5_tokenizer():  # type: ignore[no-untyped-def]
    """A T5 unigram tokenizer: pad, eos, unk, a few words, then characters for the rest."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(f"▁{w}", -2.0) for w in _WORDS] + [("▁", -3.0)]
    chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'-"
    pieces += [(c, -5.0) for c in chars]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=64)


def build_sd(folder: Path) -> Path:
    """A tiny Stable Diffusion text-to-image pipeline saved in ``folder``."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = clip_tokenizer(Path(scratch))
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        norm_num_groups=2,
        sample_size=IMAGE_SIZE // 2,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
    )
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=[4, 8],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=2,
    )
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            vocab_size=len(tokenizer),
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)  # type: ignore[attr-defined]  # diffusers' lazy modules
    return folder


def build_wan(folder: Path) -> Path:
    """A tiny Wan text-to-video pipeline saved in ``folder``."""
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    tokenizer = t5_tokenizer()
    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],  # sic: the real keyword
    )
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    torch.manual_seed(0)
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(tokenizer),
            d_model=32,
            d_ff=37,
            d_kv=8,
            num_heads=4,
            num_layers=2,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    )
    pipe = WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
    )
    pipe.save_pretrained(folder)  # type: ignore[attr-defined]  # diffusers' lazy modules
    return folder


def image_params(folder: Path, **overrides: object) -> dict[str, object]:
    """Backend parameters of a system that uses the tiny text-to-image pipeline."""
    params: dict[str, object] = {
        "model": str(folder),
        "steps": 2,
        "guidance": 5.0,
        "width": IMAGE_SIZE,
        "height": IMAGE_SIZE,
        "batch_size": 4,
    }
    return {**params, **overrides}


def video_params(folder: Path, **overrides: object) -> dict[str, object]:
    """Backend parameters of a system that uses the tiny text-to-video pipeline."""
    params: dict[str, object] = {
        "model": str(folder),
        "steps": 2,
        "guidance": 5.0,
        "width": VIDEO_SIZE,
        "height": VIDEO_SIZE,
        "frames": VIDEO_FRAMES,
        "fps": 8,
        "max_sequence_length": MAX_SEQUENCE_LENGTH,
        "batch_size": 2,
    }
    return {**params, **overrides}
