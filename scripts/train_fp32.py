"""Train a zoo model's FP32 weights exactly as `autochip compress` trains its FP32 model (seed,
learning rate, Adam with cosine decay, batch order), and save an autochip FP32 checkpoint right
after training, without the compress command's int8 conversion and integer evaluation.

    python scripts/train_fp32.py resnet8_fashion --epochs 5 --out models/resnet8_fashion.fp32.pt

(`models/lenet5_fashion.fp32.pt` came from `autochip compress lenet5_fashion --method quant
--bits 8/8 --data fashion-mnist --fp32-epochs 20 --epochs 0 --batch-size 128 --seed 0 --out
lenet5.pt`, which writes `lenet5.fp32.pt` with the same loop.)
"""

from __future__ import annotations

import argparse
import time

import torch

from autochip.commands.compress import FP32_LR
from autochip.compress.checkpoint import save_checkpoint
from autochip.compress.data import load_data
from autochip.compress.train import TrainConfig, evaluate, seed_everything, train
from autochip.ir import load_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="zoo name or .py file")
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="checkpoint .pt")
    args = p.parse_args()
    torch.set_num_threads(1)
    seed_everything(args.seed)
    loaded = load_model(args.model)
    data = load_data(args.data, tuple(loaded.example_input.shape[1:]))
    t = time.time()
    cfg = TrainConfig(epochs=args.epochs, lr=FP32_LR, batch_size=args.batch_size, seed=args.seed)
    train(loaded.model, data, cfg, desc="fp32")
    acc = evaluate(loaded.model.eval(), data.x_test, data.y_test)
    meta = {"method": "fp32", "accuracy": acc, "data": args.data, "epochs": args.epochs}
    save_checkpoint(args.out, args.model, None, loaded.model, {**meta, "seed": args.seed})
    print(f"{args.model}: {args.epochs} epochs, test accuracy {acc:.4f}, {time.time() - t:.0f} s")


if __name__ == "__main__":
    main()
