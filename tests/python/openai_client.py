"""The official OpenAI Python client against the vector-worker's
OpenAI-compatible embeddings endpoint.

Usage: openai_client.py BASE_URL TEXT...  (OPENAI_API_KEY: the worker's
EMBED_API_KEY, when it has one)
Prints one JSON line: {"model", "dimensions", "count", "first": [first 8 values], "prompt_tokens"}.
"""

import json
import os
import sys

from openai import OpenAI


def main() -> int:
    base_url, texts = sys.argv[1], sys.argv[2:]
    client = OpenAI(base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY", "not-needed"))
    # The gateway keeps its own model name; the worker answers with its model.
    response = client.embeddings.create(model="text-embedding-3-small", input=texts)
    print(json.dumps({
        "model": response.model,
        "dimensions": len(response.data[0].embedding),
        "count": len(response.data),
        "first": response.data[0].embedding[:8],
        "prompt_tokens": response.usage.prompt_tokens,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
