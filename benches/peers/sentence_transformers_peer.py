"""The sentence-transformers peer for benches/embedding_throughput.rs.

Embeds the bench's texts with sentence-transformers on PyTorch (CPU, 2
threads), loading the same all-MiniLM-L6-v2 folder as the Rust embedder,
offline.

Run: python sentence_transformers_peer.py TEXTS.json
TEXTS.json: {"model_dir": ..., "batches": [1, 8, ...], "min_seconds": 3.0,
             "sets": {"short": [...], "long": [...]}}

For each set and batch size: one warm-up batch, then batches of `batch`
texts (text i is texts[i % len(texts)]) until `min_seconds` have passed.
Prints one JSON line per cell:
  {"set", "batch", "n", "seconds", "sentences_per_s", "tokens_per_s"}
(`n` texts in `seconds`; the Rust side embeds the same `n` texts), then
{"peak_rss_bytes", "versions"}. Tokens: word pieces without special tokens,
capped at the model's window less [CLS]/[SEP] (as the Rust embedder truncates).
"""

import json
import os
import resource
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import sentence_transformers  # noqa: E402
import transformers  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    torch.set_num_threads(int(spec.get("threads", 2)))
    model = SentenceTransformer(spec["model_dir"], device="cpu")
    model.eval()
    tokenizer = model.tokenizer
    window = model.max_seq_length - 2  # [CLS] and [SEP]
    min_seconds = float(spec["min_seconds"])

    for set_name, texts in spec["sets"].items():
        counts = [
            min(len(ids), window)
            for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]
        ]
        for batch in spec["batches"]:

            def take(start: int) -> list[str]:
                return [texts[(start + k) % len(texts)] for k in range(batch)]

            with torch.inference_mode():
                model.encode(take(0), batch_size=batch, normalize_embeddings=True)
                n = 0
                started = time.perf_counter()
                while True:
                    model.encode(take(n), batch_size=batch, normalize_embeddings=True)
                    n += batch
                    elapsed = time.perf_counter() - started
                    if elapsed >= min_seconds:
                        break
            tokens = sum(counts[i % len(texts)] for i in range(n))
            print(
                json.dumps(
                    {
                        "set": set_name,
                        "batch": batch,
                        "n": n,
                        "seconds": elapsed,
                        "sentences_per_s": n / elapsed,
                        "tokens_per_s": tokens / elapsed,
                    }
                ),
                flush=True,
            )

    # ru_maxrss is in KiB on Linux.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    versions = {
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps({"peak_rss_bytes": peak, "versions": versions}), flush=True)


if __name__ == "__main__":
    main()
