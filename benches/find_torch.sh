# Sourced by compare.sh, peak_rss.sh and check_workloads.sh: sets `python` to an
# interpreter that imports torch (a venv at .venv-torch, ../.venv-torch, ../venv, or
# python3), or to "" when there is none, and `torch_script` to PyTorch's workload script
# (TORCH_SCRIPT overrides).
torch_script="${TORCH_SCRIPT:-benches/torch_workloads.py}"
python=""
for p in .venv-torch/bin/python ../.venv-torch/bin/python ../venv/bin/python python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c "import torch" 2>/dev/null; then python="$p"; break; fi
done
