"""Model cards (README.md) written next to the weights.

The minimal card says what the model is and how to use it from both libraries; training
writes the full card (evaluation tables, hyper-parameters, training log).
"""

from __future__ import annotations

from typing import Any


def architecture(model: Any) -> str:
    """A plain-text description of the module chain, one module per line."""
    return repr(model)


def minimal_card(model: Any) -> str:
    """A short README.md with YAML front matter, architecture and usage."""
    base = getattr(model, "source", None)
    front = [
        "---",
        "library_name: sentence-transformers",
        "pipeline_tag: sentence-similarity",
        "tags:",
        "- sentence-transformers",
        "- sentence-similarity",
        "- feature-extraction",
        "- workbench",
    ]
    if base and "/" in str(base) and not str(base).startswith(("/", ".", "~")):
        front.append(f"base_model: {base}")
    front.append("---")
    body = f"""
# Sentence embedding model

Made with workbench. It maps sentences to a {model.dim}-dimensional vector space
(similarity: {model.similarity_fn_name}); inputs are truncated to {model.max_seq_length} tokens.

## Architecture

```
{architecture(model)}
```

## Usage

With workbench:

```python
from workbench import load_model
model = load_model("path/to/this/folder")
embeddings = model.encode(["The weather is lovely today.", "It's so sunny outside!"])
```

With sentence-transformers (the folder uses its layout):

```python
from sentence_transformers import SentenceTransformer
model = SentenceTransformer("path/to/this/folder")
embeddings = model.encode(["The weather is lovely today.", "It's so sunny outside!"])
```
"""
    return "\n".join(front) + "\n" + body
