#!/usr/bin/env python3
"""Side-by-side benchmark: the reference implementation (diffusers / transformers) timed on the
same stages, shapes and device as `t2v bench`, with random weights (no download).

    t2v bench --device cuda --dtype bf16 --json ours.json
    python scripts/bench_reference.py --device cuda --dtype bf16 --ours ours.json

prints the reference's table, and with --ours the per-stage ratio (reference seconds / ours:
above 1 means we are faster). --model-size tiny --device cpu runs the small configuration that
`t2v bench` uses on CPUs. Needs torch, diffusers and transformers; no network.
"""
import argparse
import json
import statistics
import time

import torch


def tiny_configs():
    dit = dict(num_attention_heads=4, attention_head_dim=32, text_dim=64, ffn_dim=256, num_layers=2)
    vae = dict(base_dim=16, decoder_base_dim=32)
    umt5 = dict(vocab_size=1024, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4)
    return dit, vae, umt5


def real_configs():
    dit = dict(num_attention_heads=24, attention_head_dim=128, text_dim=4096, ffn_dim=14336, num_layers=30)
    vae = dict(base_dim=160, decoder_base_dim=256)
    umt5 = dict(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64)
    return dit, vae, umt5


def timed(fn, device, repeats):
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()
    fn()
    sync()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def dit_flops(cfg, tokens, text_len=512):
    d = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    f, layers = cfg["ffn_dim"], cfg["num_layers"]
    temb = 2 * (256 * d + d * d + d * 6 * d)
    return tokens * layers * (12 * d * d + 4 * d * f) + tokens * temb + layers * 4 * tokens * tokens * d + layers * 4 * tokens * text_len * d


def main():
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-size", choices=["real", "tiny"], default=None)
    ap.add_argument("--size", action="append", default=[], help="WIDTHxHEIGHTxFRAMES (repeatable)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", choices=["f32", "bf16", "f16"], default="bf16")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--ours", help="JSON written by `t2v bench --json`, to print ratios")
    ap.add_argument("--json", help="write the reference report here")
    args = ap.parse_args()

    device = torch.device(args.device)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[args.dtype]
    model_size = args.model_size or ("real" if device.type == "cuda" else "tiny")
    dit_cfg, vae_cfg, umt5_cfg = real_configs() if model_size == "real" else tiny_configs()
    sizes = args.size or (["832x480x121", "1280x704x121"] if model_size == "real" else ["256x160x17"])
    torch.manual_seed(0)
    rows = []

    # Models are built on the device: initialising ~10B random parameters on the CPU takes minutes.
    with torch.no_grad(), device:
        text = UMT5EncoderModel(UMT5Config(feed_forward_proj="gated-gelu", is_encoder_decoder=False, **umt5_cfg))
        text = text.to(device=device, dtype=torch.float32 if dtype == torch.float16 else dtype).eval()
        ids = (torch.arange(args.prompt_tokens, device=device) % 100 + 3).unsqueeze(0)
        mask = torch.ones_like(ids)
        rows.append(dict(size=f"{args.prompt_tokens} tokens", stage="text encoding",
                         seconds=timed(lambda: text(ids, mask), device, args.repeats), flops=None))
        del text

        dit = WanTransformer3DModel(patch_size=(1, 2, 2), in_channels=48, out_channels=48, freq_dim=256,
                                    cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6,
                                    rope_max_seq_len=1024, **dit_cfg).to(device=device, dtype=dtype).eval()
        ctx = torch.randn(1, 512, dit_cfg["text_dim"], device=device, dtype=dtype)
        for size in sizes:
            w, h, f = (int(v) for v in size.split("x"))
            lat = torch.randn(1, 48, (f - 1) // 4 + 1, h // 16, w // 16, device=device, dtype=dtype)
            tokens = lat.shape[2] * (h // 32) * (w // 32)
            ts = torch.full((1, tokens), 500.0, device=device)
            seconds = timed(lambda: dit(hidden_states=lat, timestep=ts, encoder_hidden_states=ctx, return_dict=False), device, args.repeats)
            flops = dit_flops(dit_cfg, tokens)
            rows.append(dict(size=size, stage="transformer step (no CFG)", seconds=seconds, flops=flops))
            rows.append(dict(size=size, stage="transformer step (CFG)", seconds=2 * seconds, flops=2 * flops))
            heads, hd = dit_cfg["num_attention_heads"], dit_cfg["attention_head_dim"]
            q, k, v = torch.randn(3, 1, heads, tokens, hd, device=device, dtype=dtype)
            attn = timed(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v), device, args.repeats)
            rows.append(dict(size=size, stage="self-attention, one block", seconds=attn,
                             flops=4 * tokens * tokens * heads * hd))
            del q, k, v
        del dit

        vae = AutoencoderKLWan(z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                               temperal_downsample=[False, True, True], dropout=0.0, is_residual=True,
                               in_channels=12, out_channels=12, patch_size=2, scale_factor_spatial=16,
                               scale_factor_temporal=4, **vae_cfg)
        vae = vae.to(device=device, dtype=torch.float32 if (device.type == "cpu" and dtype == torch.bfloat16) else dtype).eval()
        vdtype = next(vae.parameters()).dtype
        for size in sizes:
            w, h, f = (int(v) for v in size.split("x"))
            lf = (f - 1) // 4 + 1
            z = torch.randn(1, 48, lf, h // 16, w // 16, device=device, dtype=vdtype)
            two = timed(lambda: vae.decode(z[:, :, : min(2, lf)]), device, args.repeats)
            first = timed(lambda: vae.decode(z[:, :, :1]), device, args.repeats)
            rows.append(dict(size=size, stage="VAE decode, one 4-frame chunk", seconds=max(0.0, two - first), flops=None))
            rows.append(dict(size=size, stage="VAE decode, whole clip", seconds=timed(lambda: vae.decode(z), device, 1), flops=None))

        # The pipeline's peak: all three models resident, a prompt encoded, one CFG step, the
        # whole clip decoded (diffusers' WanPipeline keeps them all on the device by default).
        generation_peaks = {}
        if device.type == "cuda":
            text = UMT5EncoderModel(UMT5Config(feed_forward_proj="gated-gelu", is_encoder_decoder=False, **umt5_cfg))
            text = text.to(device=device, dtype=torch.float32 if dtype == torch.float16 else dtype).eval()
            dit = WanTransformer3DModel(patch_size=(1, 2, 2), in_channels=48, out_channels=48, freq_dim=256,
                                        cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6,
                                        rope_max_seq_len=1024, **dit_cfg).to(device=device, dtype=dtype).eval()
            for size in sizes:
                w, h, f = (int(v) for v in size.split("x"))
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                start = time.perf_counter()
                emb = text(ids, mask).last_hidden_state.to(dtype)
                ctx = torch.cat([emb, emb.new_zeros(1, 512 - emb.shape[1], emb.shape[2])], 1)
                lat = torch.randn(1, 48, (f - 1) // 4 + 1, h // 16, w // 16, device=device, dtype=dtype)
                ts = torch.full((1, lat.shape[2] * (h // 32) * (w // 32)), 500.0, device=device)
                cond = dit(hidden_states=lat, timestep=ts, encoder_hidden_states=ctx, return_dict=False)[0]
                uncond = dit(hidden_states=lat, timestep=ts, encoder_hidden_states=ctx, return_dict=False)[0]
                vae.decode((uncond + 5 * (cond - uncond)).to(vdtype))
                torch.cuda.synchronize()
                rows.append(dict(size=size, stage="generation: encode, 1 CFG step, decode",
                                 seconds=time.perf_counter() - start, flops=None))
                generation_peaks[size] = dict(allocated=torch.cuda.max_memory_allocated(),
                                              reserved=torch.cuda.max_memory_reserved())

    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    report = dict(device=str(device), dtype=args.dtype, model=model_size, rows=rows, peak_memory_bytes=peak,
                  generation_peak_memory=generation_peaks, torch=torch.__version__)
    ours = {}
    if args.ours:
        with open(args.ours) as fh:
            ours = {(r["size"], r["stage"]): r["seconds"] for r in json.load(fh)["rows"]}
    print(f"reference on {device}, {args.dtype}, {model_size} model")
    print(f"{'size':<18} {'stage':<32} {'seconds':>10} {'TFLOP/s':>10} {'ratio':>8}")
    for r in rows:
        tf = f"{r['flops'] / r['seconds'] / 1e12:.4f}" if r["flops"] and r["seconds"] > 0 else "-"
        mine = ours.get((r["size"], r["stage"]))
        ratio = f"{r['seconds'] / mine:.2f}" if mine else "-"
        print(f"{r['size']:<18} {r['stage']:<32} {r['seconds']:>10.4f} {tf:>10} {ratio:>8}")
    if peak:
        print(f"peak allocated device memory: {peak / 2**30:.2f} GiB")
    for size, p in generation_peaks.items():
        print(f"whole generation at {size} (all models resident): {p['allocated'] / 2**30:.2f} GiB allocated, "
              f"{p['reserved'] / 2**30:.2f} GiB reserved by torch")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
