"""Does a model patched with rmsnorm_triton train across two GPUs as it does on one, and faster?

A patched Llama-style model (random init) trained under DDP and under FSDP2 over NCCL equals the
same steps on one GPU; step times with and without patching.

    torchrun --nproc-per-node 2 benchmarks/train_2gpu.py            # two GPUs, NCCL
    torchrun --nproc-per-node 2 benchmarks/train_2gpu.py --cpu      # a smoke run: gloo, tiny model

Rank 0 first trains the model alone on the whole batch (the reference), then both ranks train a
fresh copy on their halves, wrapped in DistributedDataParallel, then sharded with FSDP2's
fully_shard. Passing: every loss within LOSS_TOL relative of the reference's, every parameter
within PARAM_TOL of the largest update (tests/test_distributed.py's bounds, which its docstring
derives). Then each engine's median step time, patched and with Hugging Face's RMSNorm. Rank 0
prints a table and writes the JSON to $OUT (default: the current folder). NVLink multicast stays off
(the lent machines' rule: a program that uses it can take the host's GPUs out of service).
"""

import argparse
import json
import os
import statistics
import sys
import time

for _k, _v in (("NCCL_NVLS_ENABLE", "0"), ("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1"),
               ("NVSHMEM_DISABLE_NVLS", "1")):
    os.environ[_k] = _v
if "--cpu" in sys.argv:  # CPU tensors need Triton's interpreter, chosen when Triton is imported
    os.environ["TRITON_INTERPRET"] = "1"

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import transformers  # noqa: E402
from torch.distributed.device_mesh import init_device_mesh  # noqa: E402
from torch.distributed.fsdp import fully_shard  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

import rmsnorm_triton  # noqa: E402

LOSS_TOL, PARAM_TOL = 1e-5, 1e-4
SIZES = {  # model and batch: (config, global batch, sequence)
    "gpu": (dict(vocab_size=4096, hidden_size=1024, intermediate_size=2816, num_hidden_layers=4,
                 num_attention_heads=8, num_key_value_heads=4), 8, 512),
    "cpu": (dict(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2), 4, 8),
}


def build(size, patch, dev):
    cfg, _, seq = SIZES[size]
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        **cfg, max_position_embeddings=seq, rms_norm_eps=1e-5, tie_word_embeddings=False,
        attn_implementation="eager")).to(dev)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # spread the norm weights (init: 1) so that their gradients matter
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.2 * torch.randn(p.shape, generator=g).to(dev))
    return model, (rmsnorm_triton.patch_model(model) if patch else 0)


def batch(size, dev):
    cfg, b, seq = SIZES[size]
    g = torch.Generator().manual_seed(2)
    return torch.randint(3, cfg["vocab_size"], (b, seq), generator=g).to(dev)


def train(model, ids, steps, lr, world=1):
    """SGD steps on one batch; the loss averaged over the ranks (equal tokens on each)."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss = loss.detach()
        if world > 1:
            dist.all_reduce(loss)
        losses.append(loss.item() / world)
    return losses


def step_ms(model, ids, steps, sync):
    """Median wall time of a training step (forward, backward, SGD) after 3 warm-up steps."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    times = []
    for i in range(steps + 3):
        sync()
        t0 = time.perf_counter()
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        if i >= 3:
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def full(model):
    return {k: (p.full_tensor() if hasattr(p, "full_tensor") else p).detach().clone()
            for k, p in model.named_parameters()}


def compare(got, ref, init):
    """(worst loss difference relative to the reference's, worst parameter difference as a share
    of the largest update)."""
    loss = max(abs(a - b) / abs(b) for a, b in zip(got["losses"], ref["losses"]))
    update = max((ref["params"][k] - init[k]).abs().max().item() for k in init)
    param = max((got["params"][k] - ref["params"][k]).abs().max().item() for k in init) / update
    return loss, param, update


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cpu", action="store_true", help="gloo on the CPU, a tiny model (smoke run)")
    p.add_argument("--steps", type=int, default=5, help="training steps compared")
    p.add_argument("--time-steps", type=int, default=20, help="steps timed per engine and norm")
    p.add_argument("--lr", type=float, default=0.2)
    args = p.parse_args()
    size = "cpu" if args.cpu else "gpu"
    dist.init_process_group("gloo" if args.cpu else "nccl")
    rank, world = dist.get_rank(), dist.get_world_size()
    if args.cpu:
        dev, sync = torch.device("cpu"), (lambda: None)
        torch.set_num_threads(1)
    else:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(dev)
        sync = torch.cuda.synchronize
    ids = batch(size, dev)
    rows = slice(rank * ids.shape[0] // world, (rank + 1) * ids.shape[0] // world)
    out = dict(world=world, device=str(torch.cuda.get_device_name(dev)) if not args.cpu else "cpu",
               torch=torch.__version__, transformers=transformers.__version__,
               triton=__import__("triton").__version__, model=SIZES[size][0],
               batch=list(ids.shape), steps=args.steps, lr=args.lr)

    model, n = build(size, True, dev)
    init = {k: v.detach().clone() for k, v in model.named_parameters()}
    ref = None
    if rank == 0:  # the reference: one process, the whole batch
        ref = dict(losses=train(model, ids, args.steps, args.lr), params=full(model))
    del model
    dist.barrier()

    results = {}
    model, n = build(size, True, dev)
    ddp = DistributedDataParallel(model, device_ids=None if args.cpu else [dev.index])
    results["ddp"] = dict(losses=train(ddp, ids[rows], args.steps, args.lr, world),
                          params=full(model), patched=n)
    del ddp, model

    model, n = build(size, True, dev)
    mesh = init_device_mesh(dev.type, (world,))
    for layer in model.model.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    results["fsdp2"] = dict(losses=train(model, ids[rows], args.steps, args.lr, world),
                            params=full(model), patched=n,
                            sharded=all(hasattr(q, "full_tensor") for q in model.parameters()))
    del model

    times = {}
    for patch in (True, False):
        model, _ = build(size, patch, dev)
        if rank == 0:
            times[("one GPU" if not args.cpu else "one process", patch)] = step_ms(
                model, ids, args.time_steps, sync)
        dist.barrier()
        ddp = DistributedDataParallel(model, device_ids=None if args.cpu else [dev.index])
        times[("ddp", patch)] = step_ms(ddp, ids[rows], args.time_steps, sync)
        del ddp, model
        model, _ = build(size, patch, dev)
        for layer in model.model.layers:
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        times[("fsdp2", patch)] = step_ms(model, ids[rows], args.time_steps, sync)
        del model

    ok = True
    if rank == 0:
        print(f"{world} ranks on {out['device']}, torch {out['torch']}, triton {out['triton']}, "
              f"transformers {out['transformers']}; batch {tuple(ids.shape)}, {args.steps} steps")
        print(f"reference losses: {' '.join(f'{v:.6f}' for v in ref['losses'])}")
        for eng, got in results.items():
            loss, param, update = compare(got, ref, init)
            norms = 2 * SIZES[size][0]["num_hidden_layers"] + 1  # two a layer, one at the end
            good = loss <= LOSS_TOL and param <= PARAM_TOL and got["patched"] == norms
            ok &= good
            out[eng] = dict(losses=got["losses"], loss_rel_diff=loss, param_diff_of_update=param,
                            largest_update=update, patched=got["patched"], ok=good)
            print(f"{eng:>6}: losses {' '.join(f'{v:.6f}' for v in got['losses'])}; worst loss "
                  f"diff {loss:.2e} (bound {LOSS_TOL}), worst parameter diff {param:.2e} of the "
                  f"largest update {update:.3g} (bound {PARAM_TOL}), {got['patched']} norms "
                  f"patched{'' if good else '  FAIL'}")
        print(f"{'engine':>10} {'patched ms':>11} {'HF norm ms':>11}   median step time")
        out["step_ms"] = {}
        for eng in dict.fromkeys(e for e, _ in times):
            a, b = times[(eng, True)], times[(eng, False)]
            out["step_ms"][eng] = dict(patched=a, hf=b)
            print(f"{eng:>10} {a:11.2f} {b:11.2f}")
        folder = os.environ.get("OUT") or "."
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"train-2gpu-{size}.json"), "w") as f:
            json.dump(out, f, indent=1)
        print("ALL OK" if ok else "FAILED")
    dist.destroy_process_group()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
