#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter: first on PATH, then under pyenv.
# Exits 1 with advice when none is found.
set -u
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; }
for cand in python3.12 python3.13 python3 python; do
  p=$(command -v "$cand" 2>/dev/null) || continue
  # pyenv shims fail for versions that are not selected: check that it really runs
  if ok "$p"; then echo "$p"; exit 0; fi
done
roots=()
command -v pyenv >/dev/null 2>&1 && roots+=("$(pyenv root 2>/dev/null)")
roots+=("${PYENV_ROOT:-$HOME/.pyenv}" /root/.pyenv /opt/pyenv)
for r in "${roots[@]}"; do
  [ -d "$r/versions" ] || continue
  for p in $(ls -d "$r"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -V); do
    if ok "$p"; then echo "$p"; exit 0; fi
  done
done
echo "No Python >= 3.12 found (looked on PATH and under pyenv)." >&2
echo "Install one, e.g. 'apt-get install python3.12 python3.12-venv' or 'pyenv install 3.12'." >&2
exit 1
