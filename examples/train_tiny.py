"""Train a small Llama-style model (random init) whose RMSNorms run rmsnorm_triton's kernel.

    python examples/train_tiny.py                         # 2 layers, hidden 64, CPU or GPU
    python examples/train_tiny.py --preset 100m           # ~110M parameters, bf16, seq 1024
    python examples/train_tiny.py --preset 100m --no-patch    # the same with HF's own RMSNorm

Random tokens, AdamW, next-token loss. Prints the loss and the step time of every step (a tqdm
bar when tqdm is installed), then one summary line to compare runs:
    steps N, mean step ms X, patched True/False, modules replaced K
The mean leaves out the first --warmup steps: Triton compiles each kernel at its first call.
On the CPU the kernels run through Triton's interpreter: keep the model tiny there.
"""

import argparse
import os
import statistics
import time

PRESETS = {  # name: config; command-line options given explicitly win
    "tiny": dict(hidden=64, layers=2, intermediate=128, heads=4, vocab=256, seq=32, batch=2,
                 dtype="float32"),
    "100m": dict(hidden=768, layers=12, intermediate=2048, heads=12, vocab=32000, seq=1024,
                 batch=8, dtype="bfloat16"),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2, help="first steps left out of the mean")
    p.add_argument("--hidden", type=int)
    p.add_argument("--layers", type=int)
    p.add_argument("--intermediate", type=int)
    p.add_argument("--heads", type=int)
    p.add_argument("--vocab", type=int)
    p.add_argument("--seq", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--device", default="auto", help="auto (cuda if there is one), cpu, cuda[:i]")
    p.add_argument("--no-patch", action="store_true", help="keep Hugging Face's RMSNorm")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def progress(steps):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=steps, unit="step")


def main():
    args = parse_args()
    if args.device == "cpu":
        # Triton fixes interpreted vs compiled at import; CPU tensors need the interpreter
        # even on a machine with a GPU.
        os.environ.setdefault("TRITON_INTERPRET", "1")
    import torch
    import transformers

    import rmsnorm_triton

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else "cpu" if args.device == "auto" else args.device)
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(args.seed)
    cfg = transformers.LlamaConfig(
        vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
        num_hidden_layers=args.layers, num_attention_heads=args.heads,
        num_key_value_heads=args.heads, max_position_embeddings=args.seq,
        tie_word_embeddings=True, use_cache=False)
    model = transformers.LlamaForCausalLM(cfg).to(device=device, dtype=dtype).train()
    replaced = 0 if args.no_patch else rmsnorm_triton.patch_model(model)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"Llama-style model: {n_params / 1e6:.1f}M parameters, hidden {args.hidden}, "
          f"{args.layers} layers, vocab {args.vocab}, batch {args.batch} x seq {args.seq}, "
          f"{args.dtype} on {device}; RMSNorm: "
          + (f"rmsnorm_triton ({replaced} modules replaced)" if replaced else "Hugging Face's"))

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    # every batch made up front: no random generation inside the timed steps
    g = torch.Generator().manual_seed(args.seed + 1)
    batches = [torch.randint(0, args.vocab, (args.batch, args.seq), generator=g).to(device)
               for _ in range(min(args.steps, 8))]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    bar = progress(args.steps)
    times = []
    for step in range(args.steps):
        ids = batches[step % len(batches)]
        sync()
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        ms = (time.perf_counter() - t0) * 1e3
        times.append(ms)
        if bar is not None:
            bar.set_postfix(loss=f"{loss.item():.4f}", ms=f"{ms:.1f}")
            bar.update()
        else:
            print(f"step {step + 1}/{args.steps}  loss {loss.item():.4f}  {ms:.1f} ms", flush=True)
    if bar is not None:
        bar.close()

    timed = times[args.warmup:] or times
    print(f"loss {loss.item():.4f}; step time median {statistics.median(timed):.1f} ms over "
          f"steps {len(times) - len(timed) + 1}..{len(times)}")
    print(f"steps {args.steps}, mean step ms {statistics.fmean(timed):.2f}, "
          f"patched {not args.no_patch}, modules replaced {replaced}")


if __name__ == "__main__":
    main()
