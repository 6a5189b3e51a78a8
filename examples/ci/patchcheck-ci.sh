#!/usr/bin/env bash
# patchcheck for a kernel packaging repository, for any CI (Jenkins, Buildbot, Zuul, cron...).
# Run from the repository's top folder: examples/ci/patchcheck-ci.sh (copy it into the repo).
#
# It installs the system tools the tree needs (apt-get or dnf, only what is missing), installs
# patchcheck into a venv, builds the source package if need be, fetches the fix series (and
# goes on offline when that fails), writes patchcheck.xml (JUnit) and patchcheck.html, and
# exits with patchcheck's code: 0 fine, 1 a fix at PATCHCHECK_MIN_SEVERITY or above is missing,
# 2 bad input, 3 a fix series could not be obtained. The reports are written in every case.
#
# Settings (environment):
#   PATCHCHECK_PIP_SPEC      where patchcheck comes from: a pinned git URL
#                            ("git+https://example.org/kernel/patchcheck.git@v0.1.0"), a wheel
#                            file, or "patchcheck==0.1.0" from your package index (required)
#   PATCHCHECK_TREE          path or glob, first match checked (default SRPMS/*.src.rpm). When
#                            nothing matches: *.src.rpm is built with rpmbuild -bs from
#                            PATCHCHECK_SPEC (default kernel.spec) and the sources beside it;
#                            *.dsc with dpkg-source -b from debian/ and the *.orig.tar.* tarball
#   PATCHCHECK_FAIL_ON       verdicts that fail (default backportable,conflicting,partially-present)
#   PATCHCHECK_MIN_SEVERITY  only bugs this severe or worse fail (default critical)
#   PATCHCHECK_VENV          the venv patchcheck goes into (default .patchcheck-venv; keep it
#                            between runs to skip the install)
#   PATCHCHECK_CACHE_DIR     fetched series (default .patchcheck-cache; a committed cache/
#                            folder is used offline instead)
#   PATCHCHECK_BUGS_DIR, PATCHCHECK_LORE_URL   as for patchcheck itself
set -euo pipefail

: "${PATCHCHECK_PIP_SPEC:?set PATCHCHECK_PIP_SPEC to a pinned git URL, a wheel or patchcheck==VERSION}"
PATCHCHECK_TREE=${PATCHCHECK_TREE:-SRPMS/*.src.rpm}
PATCHCHECK_SPEC=${PATCHCHECK_SPEC:-kernel.spec}
PATCHCHECK_FAIL_ON=${PATCHCHECK_FAIL_ON:-backportable,conflicting,partially-present}
PATCHCHECK_MIN_SEVERITY=${PATCHCHECK_MIN_SEVERITY:-critical}
venv=${PATCHCHECK_VENV:-.patchcheck-venv}

# 1. System tools: command:apt-package:dnf-package, installed only when the command is missing.
need="git:git:git patch:patch:patch"
case "$PATCHCHECK_TREE" in
  *.src.rpm) need="$need rpm:rpm:rpm rpmbuild:rpm:rpm-build rpm2cpio:rpm2cpio:rpm cpio:cpio:cpio" ;;
  *.dsc) need="$need dpkg-source:dpkg-dev:dpkg-dev xz:xz-utils:xz" ;;
  *.zst) need="$need zstd:zstd:zstd" ;;
esac
apt="" dnf=""
for t in $need; do
  IFS=: read -r cmd apt_pkg dnf_pkg <<<"$t"
  command -v "$cmd" >/dev/null || { apt="$apt $apt_pkg"; dnf="$dnf $dnf_pkg"; }
done
if [ -n "$apt" ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  if command -v apt-get >/dev/null; then
    $sudo apt-get update -qq
    # shellcheck disable=SC2086  # one word per package
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $apt >/dev/null
  elif command -v dnf >/dev/null; then
    # shellcheck disable=SC2086
    $sudo dnf install -y -q $dnf
  else
    echo "patchcheck-ci: please install:$apt (Debian/Ubuntu) or:$dnf (Fedora/RHEL)" >&2
    exit 2
  fi
fi

# 2. patchcheck, in its own venv (system Pythons refuse pip installs: PEP 668).
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet "$PATCHCHECK_PIP_SPEC"
pc="$venv/bin/patchcheck"
"$pc" doctor

# 3. The tree: the first match of PATCHCHECK_TREE, built from this repository if need be.
first() { for f in $PATCHCHECK_TREE; do [ -e "$f" ] && { echo "$f"; break; }; done; true; }
tree=$(first)
if [ -z "$tree" ]; then
  out=$(dirname "$PATCHCHECK_TREE")
  mkdir -p "$out"
  case "$PATCHCHECK_TREE" in
    *.src.rpm)
      rpmbuild -bs --quiet --define "_sourcedir $PWD/$(dirname "$PATCHCHECK_SPEC")" \
        --define "_srcrpmdir $PWD/$out" "$PATCHCHECK_SPEC" ;;
    *.dsc)
      rm -rf "$out/src" && mkdir "$out/src"
      tar -xf ./*.orig.tar.* -C "$out/src" --strip-components=1
      cp -r debian "$out/src/" && cp ./*.orig.tar.* "$out/"
      (cd "$out" && dpkg-source -b src >/dev/null) ;;
  esac
  tree=$(first)
fi
tree=${tree:-$PATCHCHECK_TREE}  # a name from trees.toml
echo "patchcheck-ci: tree $tree"

# 4. Fix series: a committed cache/ is used offline as is; otherwise fetch, and when that fails
# (lore unreachable, a series gone) go on offline: the rest is reported as `error`, exit 3.
offline=()
if [ -d cache ] && [ -z "${PATCHCHECK_CACHE_DIR:-}" ]; then
  offline=(--offline)
else
  export PATCHCHECK_CACHE_DIR=${PATCHCHECK_CACHE_DIR:-$PWD/.patchcheck-cache}
  "$pc" fetch --all --quiet || { echo "patchcheck-ci: some fix series could not be fetched" >&2; offline=(--offline); }
fi

# 5. Reports, then the gate (the JUnit run's exit code; the HTML run has the same inputs).
audit() { "$pc" audit --tree "$tree" --all "${offline[@]}" --quiet \
  --fail-on "$PATCHCHECK_FAIL_ON" --min-severity "$PATCHCHECK_MIN_SEVERITY" "$@"; }
rc=0
audit --format junit -o patchcheck.xml || rc=$?
audit --format html -o patchcheck.html || true
echo "patchcheck-ci: exit $rc (0 ok, 1 a fix is missing, 2 bad input, 3 a fix series not obtained)"
exit "$rc"
