#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one go (CI has none): the suite with CUDA present
# (CUDA tests included; browser and notebook tests are left to CI), then the GPU benchmarks.
# Usage: bash scripts/gpu_checks.sh OUT_DIR   (python with torch+CUDA and the test extras on PATH)
set -uo pipefail
out="${1:?usage: gpu_checks.sh OUT_DIR}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
py="${PYTHON:-python3}"
nvidia-smi -L | tee "$out/device.txt"
"$py" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$out/device.txt"
workers=$("$py" -c "import xdist" 2>/dev/null && echo "-n 6" || echo "")
timeout 300 "$py" -m pytest -q -p no:cacheprovider $workers -rs tests \
    --ignore=tests/browser --ignore=tests/chapters/test_notebooks.py 2>&1 | tail -40 > "$out/pytest.txt"
echo "pytest rc=$?" >> "$out/pytest.txt"
timeout 180 "$py" benchmarks/bench_engine.py --device cuda --repeats 20 \
    --models efficientnet_lite0,resnet50,vgg16 --out "$out/bench_engine_cuda.md" > /dev/null 2> "$out/bench_engine.err"
timeout 60 "$py" benchmarks/bench_evaluate.py --devices cpu,cuda --copies 16 --num-workers 4 \
    --out "$out/bench_evaluate.md" > /dev/null 2> "$out/bench_evaluate.err"
timeout 120 "$py" benchmarks/bench_localization.py --device cuda --out "$out/bench_localization_cuda.md" \
    > /dev/null 2> "$out/bench_localization.err"
tail -3 "$out"/*.err
cat "$out/pytest.txt"
