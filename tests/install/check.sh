#!/usr/bin/env bash
# tests/install/check.sh - prove that `cmake --install` of a build tree gives
# a usable weft: install into a scratch prefix, then build and run a small
# program outside the tree (tests/install/consumer) against that prefix
#   1. with CMake: find_package(weft REQUIRED), weft::sched (and
#      weft::sched_static),
#   2. with pkg-config: cc $(pkg-config --cflags --libs weft).
#
# usage: check.sh BUILD_DIR WORK_DIR
# Environment (set by tests/install/CMakeLists.txt):
#   CMAKE          cmake to use (default: cmake)
#   CC             C compiler for the pkg-config build (default: cc)
#   WEFT_CFLAGS    extra compile+link flags the consumer needs to match the
#                  build (the sanitizer flags in asan/tsan builds)
set -euo pipefail

if (($# != 2)); then
  echo "usage: $0 BUILD_DIR WORK_DIR" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
work=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cmake=${CMAKE:-cmake}
cc=${CC:-cc}
read -r -a extra <<<"${WEFT_CFLAGS:-}"

say() { printf 'install-test: %s\n' "$*"; }
run() { printf 'install-test: $ %s\n' "$*"; "$@"; }

rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
prefix=$work/prefix

say "1. install the build tree $build into $prefix"
run "$cmake" --install "$build" --prefix "$prefix"
for f in include/weft/sched.h lib/cmake/weft/weftConfig.cmake lib/pkgconfig/weft.pc; do
  [[ -e $prefix/$f ]] || { say "FAIL: $prefix/$f was not installed"; exit 1; }
done

say "2. CMake consumer: find_package(weft REQUIRED) with CMAKE_PREFIX_PATH=$prefix"
# Nothing but the scratch prefix may satisfy find_package: no package
# registry, no system weft.
run "$cmake" -S "$here/consumer" -B "$work/consumer-build" \
  -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_C_FLAGS="${extra[*]}" \
  -DCMAKE_EXE_LINKER_FLAGS="${extra[*]}"
found=$(sed -n 's/^weft_DIR:PATH=//p' "$work/consumer-build/CMakeCache.txt")
if [[ $found != "$prefix/lib/cmake/weft" && $found != "$prefix"/lib*/cmake/weft ]]; then
  say "FAIL: find_package(weft) found $found, not the scratch prefix"
  exit 1
fi
say "   found weft at $found"
run "$cmake" --build "$work/consumer-build"
# weft::sched is the shared library: CMake's RPATH points the program at
# $prefix/lib, so it runs without LD_LIBRARY_PATH.
run "$work/consumer-build/consumer"
run "$work/consumer-build/consumer_static"

say "3. pkg-config consumer: PKG_CONFIG_PATH=$prefix/lib/pkgconfig"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
pc_flags=$(pkg-config --cflags --libs weft)
say "   pkg-config --cflags --libs weft: $pc_flags"
pc_prefix=$(pkg-config --variable=prefix weft)
if [[ $pc_prefix != "$prefix" && $(cd "$pc_prefix" 2>/dev/null && pwd -P) != $(cd "$prefix" && pwd -P) ]]; then
  say "FAIL: the installed weft.pc says prefix=$pc_prefix, but it was installed under $prefix:"
  say "      weft.pc bakes in CMAKE_INSTALL_PREFIX at configure time, so"
  say "      'cmake --install --prefix' elsewhere leaves it pointing at the wrong place"
  say "      (fix: make cmake/weft.pc.in relative to \${pcfiledir})"
  exit 1
fi
# shellcheck disable=SC2086 # pkg-config's output is meant to be split
run "$cc" "${extra[@]}" -Wall -Wextra -Werror -o "$work/consumer-pc" "$here/consumer/main.c" $pc_flags
LD_LIBRARY_PATH=$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} run "$work/consumer-pc"

say "ok: installed weft works through find_package and pkg-config"
