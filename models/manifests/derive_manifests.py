#!/usr/bin/env python3
"""Derives the GGUF and fp8 manifests from the safetensors manifests and the converters' rules,
where the published files' headers could not be read (see README.md). No download, no dependency.

    python3 models/manifests/derive_manifests.py

Transformer (`dit-gguf-<type>.txt`), as QuantStack made its files: city96/ComfyUI-GGUF
`tools/convert.py` (original Wan names, `model.diffusion_model.` stripped; from a BF16 source:
1-D tensors, tensors of <= 1024 elements and `.modulation` in F32, other tensors BF16; the 5-D
`patch_embedding.weight` added back in F32 with five dimensions by `tools/fix_5d_tensors.py`),
then llama.cpp tag b3962 patched by `tools/lcpp.patch` (ComfyUI-GGUF commit 795e45156ece, the
patch and convert.py last changed in b1350f6f5a32). Its `llama-quantize` quantizes only names
ending in `weight` with exactly two ggml dimensions, never `patch_embedding.`, `text_embedding.`,
`time_projection.`, `time_embedding.`, `img_emb.`, `head.` or `modulation.`; its image-model type
rule (`img_tensor_get_type`, which replaces llama.cpp's own for these archs) then moves two
kinds of tensor off the file type's base type (`dit_value`, `DIT_FFN_OUT` below):
- value projections (names containing `.v.weight`: both attentions of every block), counted
  in the quantizer's order (the tensor names sorted as strings: llama.cpp's weight map orders
  by `blk.N.` first, which Wan names don't have);
- the feed-forward output (`.ffn.2.weight`).
Every K-quant row here is a multiple of 256, so no tensor falls back to F16. `F16`/`BF16` are
convert.py's own output: BF16 from a BF16 source (the rules above), F16 from ComfyUI's fp16 file
(`dit-original.txt`), where convert.py keeps every tensor in F16 (its F32 exceptions apply to
F32/BF16 sources only) and fix_5d_tensors.py still writes the 5-D weight in F32.

umT5 (`umt5-gguf-<type>.txt`, city96/umt5-xxl-encoder-gguf, arch `t5encoder`): llama.cpp
`convert_hf_to_gguf.py` (T5 encoder names, the tied embedding once as `token_embd`; 1-D tensors
F32, 2-D in the output type) then stock `llama-quantize`, whose `llama_tensor_get_type` (read in
ggerganov/llama.cpp `src/llama-quant.cpp` at 059325d9b4bf) gives, for a model without
`output.weight`, the token embedding the output tensor's type (Q6_K unless the base is Q8_0),
never quantizes `attn_rel_b.weight`, and raises `attn_v` and `ffn_down` per layer
(`umt5_value`, `umt5_ffn_down`: "more bits" on the first and last eighth and every third layer between, counted
in sorted-name order: enc.blk.0, 1, 10, 11, ...).

The derived totals match the published file sizes (QuantStack's 13 files within 0.01 GiB, as the
unsloth mirror lists them; city96's umT5 within 0.015 GB, the rest being the tokenizer in the
metadata): `models/tests/real_layouts.rs` checks every one.

fp8 (`*-fp8-*.txt`, safetensors dtypes): the blocks' 2-D linear weights in F8_E4M3, the rest
BF16 (1-D F32); "scaled" files add a 0-d F32 `<layer>.scale_weight` per fp8 weight and the
`scaled_fp8` marker (ComfyUI's `convert_old_quants` reads this layout). umT5 (ComfyUI's
`umt5_xxl_fp8_e4m3fn_scaled.safetensors`): transformers names, the embedding once
(`shared.weight`) in BF16: 6.27 GiB, the size the reference notes.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
EXCLUDED = ["patch_embedding.", "text_embedding.", "time_projection.", "time_embedding.", "img_emb.",
            "head.", "modulation."]
UMT5_NAMES = [
    ("layer.0.layer_norm.", "attn_norm."),
    ("layer.0.SelfAttention.q.", "attn_q."),
    ("layer.0.SelfAttention.k.", "attn_k."),
    ("layer.0.SelfAttention.v.", "attn_v."),
    ("layer.0.SelfAttention.o.", "attn_o."),
    ("layer.0.SelfAttention.relative_attention_bias.", "attn_rel_b."),
    ("layer.1.layer_norm.", "ffn_norm."),
    ("layer.1.DenseReluDense.wi_0.", "ffn_gate."),
    ("layer.1.DenseReluDense.wi_1.", "ffn_up."),
    ("layer.1.DenseReluDense.wo.", "ffn_down."),
]


def entries(manifest):
    for line in (HERE / manifest).read_text().splitlines():
        name, dims = line.split(" ", 1)
        yield name, [int(d) for d in dims.strip("[]").split(",") if d.strip()]


def ggml_dims(shape):
    """ggml's n_dims: the torch shape without its leading ones."""
    n = len(shape)
    while n > 1 and shape[len(shape) - n] == 1:
        n -= 1
    return n


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


# The file type's base type (llama-quantize's `ftype` -> default type).
BASE = {
    "Q8_0": "Q8_0", "Q6_K": "Q6_K", "Q5_K_M": "Q5_K", "Q5_K_S": "Q5_K", "Q5_1": "Q5_1",
    "Q5_0": "Q5_0", "Q4_K_M": "Q4_K", "Q4_K_S": "Q4_K", "Q4_1": "Q4_1", "Q4_0": "Q4_0",
    "Q3_K_M": "Q3_K", "Q3_K_S": "Q3_K", "Q2_K": "Q2_K",
}


def dit_value(ftype, i):
    """The image rule's type for the i-th value projection (None: the base type)."""
    if ftype == "Q2_K":
        return "Q3_K"
    if ftype == "Q3_K_M":
        return "Q5_K" if i < 2 else "Q4_K"
    if ftype in ("Q4_K_M", "Q5_K_M"):
        return "Q6_K"
    if ftype == "Q4_K_S" and i < 4:
        return "Q5_K"
    return None


DIT_FFN_OUT = {"Q3_K_M": "Q4_K", "Q4_K_S": "Q5_K", "Q4_K_M": "Q6_K", "Q5_K_M": "Q6_K",
               "Q4_0": "Q4_1", "Q5_0": "Q5_1"}


def more_bits(i, n):
    """llama.cpp's layers that get more bits: first and last eighth, every third between."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def umt5_value(ftype, i, n):
    if ftype == "Q2_K":
        return "Q3_K"  # n_gqa 1
    if ftype == "Q3_K_M":
        return "Q5_K" if i < 2 else "Q4_K"
    if ftype in ("Q4_K_M", "Q5_K_M") and more_bits(i, n):
        return "Q6_K"
    if ftype == "Q4_K_S" and i < 4:
        return "Q5_K"
    return None


def umt5_ffn_down(ftype, i, n):
    if ftype == "Q2_K":
        return "Q3_K"
    if ftype == "Q3_K_M":
        return "Q5_K" if i < n // 16 else "Q4_K"
    if ftype in ("Q4_K_M", "Q5_K_M") and more_bits(i, n):
        return "Q6_K"
    if ftype == "Q4_K_S" and i < n // 8:
        return "Q5_K"
    return None


def mix(rows, ftype, rule):
    """Applies `rule(name, counters)` to the quantized rows (those in the base type), in the
    quantizer's order: the names sorted as strings. `rows` are [name, shape, type] lists."""
    counters = {}
    for row in sorted(rows, key=lambda r: r[0]):
        if row[2] == BASE[ftype]:
            row[2] = rule(row[0], counters) or row[2]
    return [f"{n} {s} {t}" for n, s, t in rows]


def count(counters, key):
    i = counters.get(key, 0)
    counters[key] = i + 1
    return i


def transformer(ftype):
    rows = []
    for name, shape in entries("dit-original.txt"):
        if ftype == "F16":
            t = "F32" if len(shape) > 4 else "F16"
        elif len(shape) > 4:
            t = "F32"
        elif len(shape) == 1 or numel(shape) <= 1024 or ".modulation" in name:
            t = "F32"
        else:
            t = "BF16"
        if ftype in BASE and name.endswith("weight") and len(shape) <= 4 \
                and ggml_dims(shape) == 2 and not any(e in name for e in EXCLUDED):
            t = BASE[ftype]
        rows.append([name, shape, t])

    def rule(name, counters):
        if ".v.weight" in name:
            return dit_value(ftype, count(counters, "v"))
        if ".ffn.2.weight" in name:
            return DIT_FFN_OUT.get(ftype)
        return None

    return mix(rows, ftype, rule) if ftype in BASE else [f"{n} {s} {t}" for n, s, t in rows]


def umt5(ftype):
    rows = []
    for name, shape in entries("umt5-transformers.txt"):
        if name == "encoder.embed_tokens.weight":
            continue
        if name == "shared.weight":
            gguf = "token_embd.weight"
        elif name == "encoder.final_layer_norm.weight":
            gguf = "enc.output_norm.weight"
        else:
            rest = name.removeprefix("encoder.block.")
            i, rest = rest.split(".", 1)
            part = next(to + rest[len(frm):] for frm, to in UMT5_NAMES if rest.startswith(frm))
            gguf = f"enc.blk.{i}.{part}"
        if len(shape) == 1:
            t = "F32"
        elif ftype in ("F32", "F16"):
            t = ftype
        elif "attn_rel_b" in gguf:
            t = "F16"
        else:
            t = BASE[ftype]
        rows.append([gguf, shape, t])
    if ftype not in BASE:
        return [f"{n} {s} {t}" for n, s, t in rows]
    layers = sum(1 for r in rows if r[0].endswith("attn_v.weight"))

    def rule(name, counters):
        if name == "token_embd.weight":  # no output.weight: the output tensor's rule
            return None if BASE[ftype] == "Q8_0" else "Q6_K"
        if "attn_v.weight" in name:
            return umt5_value(ftype, count(counters, "v"), layers)
        if "ffn_down" in name:
            return umt5_ffn_down(ftype, count(counters, "down"), layers)
        return None

    return mix(rows, ftype, rule)


DIT_TYPES = ["Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_1",
             "Q4_0", "Q3_K_M", "Q3_K_S", "Q2_K", "F16", "BF16"]
UMT5_TYPES = ["F32", "F16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q4_K_M", "Q4_K_S", "Q3_K_M",
              "Q3_K_S"]


def fp8(manifest, fp8_weight, scaled, skip=()):
    out = []
    for name, shape in entries(manifest):
        if name in skip:
            continue
        if fp8_weight(name, shape):
            out.append(f"{name} {shape} F8_E4M3")
            if scaled:
                out.append(f"{name[: -len('weight')]}scale_weight [] F32")
        else:
            out.append(f"{name} {shape} {'F32' if len(shape) == 1 else 'BF16'}")
    if scaled:
        out.append("scaled_fp8 [0] F8_E4M3")
    return out


def dit_linear(name, shape):
    return name.startswith("blocks.") and name.endswith(".weight") and len(shape) == 2


def umt5_linear(name, shape):
    return name.startswith("encoder.block.") and len(shape) == 2 and "relative_attention_bias" not in name


if __name__ == "__main__":
    (HERE / "dit-fp8-scaled.txt").write_text("\n".join(fp8("dit-original.txt", dit_linear, True)) + "\n")
    (HERE / "dit-fp8-e4m3fn.txt").write_text("\n".join(fp8("dit-original.txt", dit_linear, False)) + "\n")
    (HERE / "umt5-fp8-scaled.txt").write_text(
        "\n".join(fp8("umt5-transformers.txt", umt5_linear, True, skip=("encoder.embed_tokens.weight",))) + "\n"
    )
    for q in DIT_TYPES:
        (HERE / f"dit-gguf-{q.lower()}.txt").write_text("\n".join(transformer(q)) + "\n")
    for q in UMT5_TYPES:
        (HERE / f"umt5-gguf-{q.lower()}.txt").write_text("\n".join(umt5(q)) + "\n")
