#!/usr/bin/env python3
"""Derives the GGUF and fp8 manifests from the safetensors manifests and the converters' rules,
where the published files' headers could not be read (see README.md). No download, no dependency.

    python3 models/manifests/derive_manifests.py

Transformer (`dit-gguf-<type>.txt`): city96/ComfyUI-GGUF `tools/convert.py` (original Wan names,
`model.diffusion_model.` stripped; from a BF16 source: 1-D tensors, tensors of <= 1024 elements
and `.modulation` in F32, other tensors BF16; the 5-D `patch_embedding.weight` added back in F32
with five dimensions by `tools/fix_5d_tensors.py`), then its patched `llama-quantize`
(`tools/lcpp.patch`): only names ending in `weight` with two or more dimensions are quantized,
never `patch_embedding.`, `text_embedding.`, `time_projection.`, `time_embedding.` or `head.`.
A uniform type is derived (Q8_0, Q6_K: their totals match the published sizes); the
`Q4_0` and `_K_M`/`_K_S` files mix types per tensor (llama-quantize rules), not derived here.

umT5 (`umt5-gguf-q8_0.txt`): llama.cpp `convert_hf_to_gguf.py` (T5 encoder names, the tied
embedding once as `token_embd`; 1-D tensors F32, 2-D F16) then `llama-quantize`, which never
quantizes `attn_rel_b.weight`.

fp8 (`*-fp8-*.txt`, safetensors dtypes): the blocks' 2-D linear weights in F8_E4M3, the rest
BF16 (1-D F32); "scaled" files add a 0-d F32 `<layer>.scale_weight` per fp8 weight and the
`scaled_fp8` marker (ComfyUI's `convert_old_quants` reads this layout). umT5 (ComfyUI's
`umt5_xxl_fp8_e4m3fn_scaled.safetensors`): transformers names, the embedding once
(`shared.weight`) in BF16: 6.27 GiB, the size the reference notes.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
EXCLUDED = ["patch_embedding.", "text_embedding.", "time_projection.", "time_embedding.", "head."]
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


def transformer(qtype):
    out = []
    for name, shape in entries("dit-original.txt"):
        if len(shape) > 4:
            t = "F32"
        elif len(shape) == 1 or numel(shape) <= 1024 or ".modulation" in name:
            t = "F32"
        else:
            t = "BF16"
        if name.endswith("weight") and len(shape) <= 4 and ggml_dims(shape) >= 2 \
                and not any(e in name for e in EXCLUDED):
            t = qtype
        out.append(f"{name} {shape} {t}")
    return out


def umt5(qtype):
    out = []
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
        elif "attn_rel_b" in gguf:
            t = "F16"
        else:
            t = qtype
        out.append(f"{gguf} {shape} {t}")
    return out


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
    for q in ["Q8_0", "Q6_K"]:
        (HERE / f"dit-gguf-{q.lower()}.txt").write_text("\n".join(transformer(q)) + "\n")
    (HERE / "umt5-gguf-q8_0.txt").write_text("\n".join(umt5("Q8_0")) + "\n")
