# cmake/aarch64-linux-gnu.cmake - cross-compile weft for aarch64 Linux with
# Debian's cross toolchain, and run the test binaries under qemu-user.
#
#   Debian packages: gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
#   cmake -S . -B build/aarch64 \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#   ctest --test-dir build/aarch64 -L unit     (see .ci/aarch64)
#
# The cross sysroot is Debian's multiarch-cross layout, /usr/aarch64-linux-gnu
# (headers in include/, libc and the dynamic loader in lib/). qemu-aarch64
# gets the same directory with -L so the binaries find ld-linux-aarch64.so.1
# and libc there.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(WEFT_CROSS_TRIPLE aarch64-linux-gnu)
set(WEFT_CROSS_ROOT /usr/${WEFT_CROSS_TRIPLE})

set(CMAKE_C_COMPILER ${WEFT_CROSS_TRIPLE}-gcc)
set(CMAKE_ASM_COMPILER ${WEFT_CROSS_TRIPLE}-gcc)
set(CMAKE_AR ${WEFT_CROSS_TRIPLE}-ar CACHE FILEPATH "")
set(CMAKE_RANLIB ${WEFT_CROSS_TRIPLE}-ranlib CACHE FILEPATH "")
set(CMAKE_STRIP ${WEFT_CROSS_TRIPLE}-strip CACHE FILEPATH "")

# Look for libraries and headers (jemalloc, if enabled) in the target's
# tree only; programs (code generators) come from the host.
set(CMAKE_FIND_ROOT_PATH ${WEFT_CROSS_ROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# add_test(COMMAND <target>) runs through this, so ctest executes the
# aarch64 test programs under user-mode emulation.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L ${WEFT_CROSS_ROOT})
