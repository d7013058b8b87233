#!/usr/bin/env bash
# ansible-test must run from a path ending in ansible_collections/<ns>/<name>,
# so copy the collection's files (tracked, or new and not ignored; not the
# sandbox platform, which is an application of its own) into such a
# tree and run sanity there. Tests for Python versions this machine lacks are
# skipped by ansible-test itself; the ignore file stays empty.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON_VERSION=${PYTHON_VERSION:-3.11}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/aiagents/runbooks
mkdir -p "$dest"
cd "$ROOT"
git ls-files -z --cached --others --exclude-standard \
  | grep -zvE '^(\.collections|sandbox)/' \
  | xargs -0 -I{} cp --parents -P {} "$dest"/ 2>/dev/null || true
cd "$dest"
# ansible-test seeds each sanity venv with a get-pip.py from a host we cannot
# reach; give it our stand-in under the name it looks for.
pip_version=$(python3 - <<'PY'
import pathlib, re, ansible_test
source = pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py"
print(re.search(r"pip='([0-9.]+)'", source.read_text()).group(1))
PY
)
mkdir -p "$HOME/.ansible/test/cache"
cp "$ROOT/scripts/ansible_test_get_pip.py" "$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
# ansible-test wants a git repo to list files the way the project does.
git init -q && git add -A && git -c user.email=ci@localhost -c user.name=ci commit -qm sanity
exec ansible-test sanity --color no --venv --python "$PYTHON_VERSION" "$@"
