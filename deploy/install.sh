#!/bin/sh
# Install Verbatim into a new virtual environment: torch's CPU build first, so that nothing
# pulls a CUDA build (gigabytes, unused), then the project from PROJECT_DIR.
#
#   deploy/install.sh VENV [PROJECT_DIR]     (PROJECT_DIR: default, the directory above this script)
#
# TORCH_INDEX_URL: where torch comes from (default: PyTorch's CPU-only index); set it empty to
# use pip's configured indexes (a mirror or wheel directory that holds the +cpu build).
# The Dockerfile runs this script; `make test-deploy` runs it on a clean venv.
set -eu

venv=${1:?usage: deploy/install.sh VENV [PROJECT_DIR]}
project=${2:-$(cd "$(dirname "$0")/.." && pwd)}
torch_index=${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}
pip_install="$venv/bin/python -m pip install --quiet --disable-pip-version-check"

python3 -m venv "$venv"
if [ -n "$torch_index" ]; then
    $pip_install --index-url "$torch_index" torch==2.13.0
else
    $pip_install torch==2.13.0
fi
# A CUDA build is refused here, before the project's install could build on it.
"$venv/bin/python" -c 'import sys, torch; sys.exit(torch.version.cuda is not None and "deploy/install.sh: got a CUDA build of torch; set TORCH_INDEX_URL to a CPU-only index")'
$pip_install "$project"
