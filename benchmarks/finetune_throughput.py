"""Fine-tuning throughput: llmal's training loop vs the Hugging Face Trainer, in one run.

Both train the same randomly initialised BERT (base: 12 layers, hidden 768, ~110M parameters) on
the same synthetic token data, with the same batch size, AdamW, linear warmup schedule, gradient
clipping at 1.0, bf16 autocast on GPU (fp32 on CPU) and no dataloader workers. Warmup steps are
run first and not timed. The llmal side runs `TrainStep` and `BatchPlan` from
llmal.models.training: the code FineTuneClassifier.fit runs.

Model FLOPs per step (training = forward + backward = 3x forward):
    6 * N * T  +  12 * L * d * sum_i(s_i^2)
with N the non-embedding parameters, T the non-padding tokens in the batch, L layers, d the
hidden size and s_i each sequence's length (the attention score and value products).
MFU = model FLOP/s / peak FLOP/s. Peak: 989 TFLOP/s (bf16 dense) on an H100 or H200, 312 on an
A100, --peak-tflops otherwise; on CPU without --peak-tflops the peak is a measured fp32 GEMM.

    python benchmarks/finetune_throughput.py --model-size base --batch-size 8 --steps 5
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from llmal.models.batching import collate, length_sorted_batches  # noqa: E402
from llmal.models.torch_runtime import autocast_dtype, device_description, maybe_compile, select_device  # noqa: E402
from llmal.models.training import BatchPlan, make_train_step  # noqa: E402

MODEL_SIZES = {
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, vocab_size=30522),
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=512, vocab_size=30522),
}
PEAK_TFLOPS_BF16 = {"H100": 989.0, "H200": 989.0, "A100": 312.0}
LR, WEIGHT_DECAY, WARMUP_RATIO, GRAD_CLIP = 5e-5, 0.01, 0.1, 1.0


@dataclass
class Measurement:
    loop: str
    seconds: float
    samples: int
    tokens: int
    flops: float

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def tflops(self) -> float:
        return self.flops / self.seconds / 1e12


def build_model(size: str, seed: int):
    from transformers import BertConfig, BertForSequenceClassification
    config = BertConfig(**MODEL_SIZES[size], max_position_embeddings=512, num_labels=2)
    torch.manual_seed(seed)
    return BertForSequenceClassification(config)


def synthetic_data(n: int, seq_len: int, vocab: int, *, variable: bool, seed: int):
    """Token sequences ([CLS]=101 ... [SEP]=102) of length seq_len, or uniform in
    [seq_len/4, seq_len] with --variable-lengths; random binary labels."""
    rng = np.random.default_rng(seed)
    lengths = (rng.integers(max(2, seq_len // 4), seq_len + 1, size=n) if variable
               else np.full(n, seq_len))
    seqs = []
    for length in lengths:
        ids = rng.integers(1000, vocab, size=int(length))
        ids[0], ids[-1] = 101, 102
        seqs.append(ids.astype(np.int64))
    return seqs, rng.integers(0, 2, size=n)


def non_embedding_params(model) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)


def batch_flops(lengths: np.ndarray, n_params: int, layers: int, hidden: int) -> float:
    return 6.0 * n_params * lengths.sum() + 12.0 * layers * hidden * (lengths ** 2).sum()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_llmal(args, device, seqs, labels, flops_of) -> Measurement:
    model = build_model(args.model_size, args.seed).to(device)
    forward = maybe_compile(model, args.compile)
    total = args.warmup_steps + args.steps
    step = make_train_step(forward, device=device, lr=LR, weight_decay=WEIGHT_DECAY,
                           total_steps=total, warmup_ratio=WARMUP_RATIO,
                           amp_dtype=autocast_dtype(device, "auto"), grad_clip=GRAD_CLIP)
    plan = BatchPlan(pad_id=0, device=device,
                     pad_to_multiple_of=8 if device.type == "cuda" else 1)
    batches = plan.training_batches(seqs, labels, None, batch_size=args.batch_size,
                                    rng=np.random.default_rng(args.seed))
    loss = torch.zeros((), device=device)
    for i, batch in enumerate(batches):
        if i == args.warmup_steps:
            float(loss)
            synchronize(device)
            started = time.perf_counter()
        loss = step(batch)
    float(loss)  # waits for the last step
    synchronize(device)
    seconds = time.perf_counter() - started
    flat = np.concatenate(timed_lengths(seqs, args))
    del model, forward, step
    return Measurement("llmal", seconds, len(flat), int(flat.sum()), flops_of(flat))


def timed_lengths(seqs, args) -> list[np.ndarray]:
    """Lengths of the sequences in the timed batches of the llmal run (read on the host, in
    the order BatchPlan.training_batches draws with the same seed: no device sync in the loop)."""
    order = length_sorted_batches([len(s) for s in seqs], args.batch_size,
                                  generator=np.random.default_rng(args.seed))
    return [np.array([len(seqs[p]) for p in positions])
            for positions in order[args.warmup_steps:args.warmup_steps + args.steps]]


class _TokenDataset(torch.utils.data.Dataset):
    def __init__(self, seqs, labels):
        self.seqs, self.labels = seqs, labels

    def __len__(self):
        return len(self.seqs)

    def __getitem__(self, i):
        return {"input_ids": self.seqs[i], "labels": int(self.labels[i])}


def run_trainer(args, device, seqs, labels, flops_of) -> Measurement:
    from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

    collated_lengths: list[np.ndarray] = []

    def pad_to_longest(features):  # what DataCollatorWithPadding does, on token id arrays
        batch = collate([f["input_ids"] for f in features], pad_id=0,
                        labels=np.array([f["labels"] for f in features]))
        collated_lengths.append(np.array([len(f["input_ids"]) for f in features]))
        return {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask,
                "labels": batch.labels}

    clock: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_step_begin(self, targs, state, control, **kwargs):
            if state.global_step == args.warmup_steps:
                synchronize(device)
                clock["start"] = time.perf_counter()

        def on_step_end(self, targs, state, control, **kwargs):
            if state.global_step == args.warmup_steps + args.steps:
                synchronize(device)
                clock["end"] = time.perf_counter()

    cuda = device.type == "cuda"
    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch_size,
            max_steps=args.warmup_steps + args.steps, learning_rate=LR,
            weight_decay=WEIGHT_DECAY, warmup_steps=int(np.ceil(
                WARMUP_RATIO * (args.warmup_steps + args.steps))),
            lr_scheduler_type="linear", max_grad_norm=GRAD_CLIP,
            optim="adamw_torch_fused" if cuda else "adamw_torch", bf16=cuda and
            autocast_dtype(device, "auto") is not None, use_cpu=not cuda,
            dataloader_num_workers=0, dataloader_pin_memory=cuda, torch_compile=args.compile,
            report_to="none", save_strategy="no", logging_strategy="no", disable_tqdm=True,
            seed=args.seed, remove_unused_columns=False)
        trainer = Trainer(model=build_model(args.model_size, args.seed), args=targs,
                          train_dataset=_TokenDataset(seqs, labels),
                          data_collator=pad_to_longest, callbacks=[Clock()])
        trainer.remove_callback(PrinterCallback)  # its end-of-training dict is not our table
        trainer.train()
    timed = np.concatenate(collated_lengths[args.warmup_steps:args.warmup_steps + args.steps])
    return Measurement("HF Trainer", clock["end"] - clock["start"], len(timed),
                       int(timed.sum()), flops_of(timed))


def peak_tflops(args, device) -> tuple[float | None, str]:
    if args.peak_tflops:
        return args.peak_tflops, "given by --peak-tflops"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, value in PEAK_TFLOPS_BF16.items():
            if key in name:
                return value, f"{key} bf16 dense spec"
        return None, f"unknown GPU {name!r}: pass --peak-tflops"
    if device.type == "cpu":
        return measured_gemm_tflops(), "measured fp32 GEMM on this CPU"
    return None, "n/a"


def measured_gemm_tflops(n: int = 2048, repeats: int = 8) -> float:
    """fp32 matmul throughput of this CPU, best of `repeats` (a practical peak, not a spec)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * n ** 3 / best / 1e12


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-size", choices=sorted(MODEL_SIZES), default="base")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--variable-lengths", action="store_true",
                        help="sequence lengths uniform in [seq_len/4, seq_len] instead of fixed")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30, help="timed steps")
    parser.add_argument("--warmup-steps", type=int, default=3, help="untimed steps first")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action="store_true", help="torch.compile both loops")
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--skip-trainer", action="store_true")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run both loops this many times, alternating; report the fastest")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    device = select_device(args.device)
    size = MODEL_SIZES[args.model_size]
    n = args.batch_size * (args.warmup_steps + args.steps)
    seqs, labels = synthetic_data(n, args.seq_len, size["vocab_size"],
                                  variable=args.variable_lengths, seed=args.seed)
    probe = build_model(args.model_size, args.seed)
    n_all, n_body = sum(p.numel() for p in probe.parameters()), non_embedding_params(probe)
    del probe

    def flops_of(lengths: np.ndarray) -> float:
        return batch_flops(lengths, n_body, size["num_hidden_layers"], size["hidden_size"])

    peak, peak_source = peak_tflops(args, device)
    amp = autocast_dtype(device, "auto")
    print(f"device: {device_description(device)}, torch threads {torch.get_num_threads()}, "
          f"precision {'bf16 autocast' if amp else 'fp32'}")
    print(f"model: BERT-{args.model_size}, {n_all / 1e6:.1f}M parameters "
          f"({n_body / 1e6:.1f}M non-embedding), random init")
    print(f"data: batch {args.batch_size}, seq len {args.seq_len} "
          f"({'variable' if args.variable_lengths else 'fixed'}), {args.steps} timed steps after "
          f"{args.warmup_steps} warmup steps, compile={args.compile}, "
          f"best of {args.repeats} alternating run(s)")
    print("model FLOPs/step = 6*N_nonemb*tokens + 12*layers*hidden*sum(len^2); "
          f"peak {'n/a' if peak is None else f'{peak:.3g} TFLOP/s'} ({peak_source})")

    loops = [run_llmal] + ([] if args.skip_trainer else [run_trainer])
    runs: list[list[Measurement]] = [[] for _ in loops]
    for _ in range(args.repeats):  # alternate the loops so load changes hit both alike
        for k, loop in enumerate(loops):
            runs[k].append(loop(args, device, seqs, labels, flops_of))
    results = [min(r, key=lambda m: m.seconds) for r in runs]  # best of --repeats
    print(f"\n{'loop':<12}{'samples/s':>12}{'tokens/s':>12}{'TFLOP/s':>10}{'MFU':>8}"
          f"   samples/s of each run")
    for m, all_runs in zip(results, runs):
        mfu = "n/a" if peak is None else f"{100 * m.tflops / peak:.1f}%"
        spread = ", ".join(f"{r.samples_per_s:.2f}" for r in all_runs)
        print(f"{m.loop:<12}{m.samples_per_s:>12.2f}{m.tokens_per_s:>12.0f}"
              f"{m.tflops:>10.3f}{mfu:>8}   {spread}")
    if len(results) == 2:
        print(f"\nthroughput ratio llmal / HF Trainer: "
              f"{results[0].samples_per_s / results[1].samples_per_s:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({
            "device": device_description(device), "peak_tflops": peak,
            "peak_source": peak_source, "args": {k: str(v) for k, v in vars(args).items()},
            "results": [{**asdict(m), "samples_per_s": m.samples_per_s,
                         "tokens_per_s": m.tokens_per_s, "tflops": m.tflops} for m in results],
            "all_runs": [[asdict(m) for m in r] for r in runs],
        }, indent=2))


if __name__ == "__main__":
    main()
