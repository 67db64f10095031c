# BLAKE3's reference C implementation, compiled from the sources Debian ships
# in librust-blake3-dev (the Rust crate builds the same C and assembly files;
# Debian 12 has no C library package for BLAKE3). scripts/setup.sh installs
# the package. Static, so the daemon has no run-time dependency on it.
#
# Why BLAKE3: the image checksum covers every uncompressed byte of a
# checkpoint; measured on the dev VM, SHA-256 (OpenSSL, SHA-NI) costs
# 1.2 CPU-s per GiB and BLAKE3 (AVX-512) 0.16 CPU-s per GiB.
file(GLOB _blake3_dirs LIST_DIRECTORIES true "/usr/share/cargo/registry/blake3-*/c")
list(SORT _blake3_dirs COMPARE NATURAL ORDER DESCENDING)
set(BLAKE3_C_DIR "" CACHE PATH "BLAKE3 C sources (blake3.h, blake3.c, ...)")
if(NOT BLAKE3_C_DIR AND _blake3_dirs)
  list(GET _blake3_dirs 0 _dir)
  set(BLAKE3_C_DIR "${_dir}" CACHE PATH "BLAKE3 C sources (blake3.h, blake3.c, ...)" FORCE)
endif()
if(NOT EXISTS "${BLAKE3_C_DIR}/blake3.h")
  message(FATAL_ERROR "BLAKE3 C sources not found: install librust-blake3-dev (scripts/setup.sh), "
                      "or set BLAKE3_C_DIR to a directory holding blake3.h and blake3.c")
endif()
message(STATUS "BLAKE3 C sources: ${BLAKE3_C_DIR}")

set(_b3 "${BLAKE3_C_DIR}")
add_library(ckptd_blake3 STATIC ${_b3}/blake3.c ${_b3}/blake3_dispatch.c ${_b3}/blake3_portable.c)
target_include_directories(ckptd_blake3 SYSTEM PUBLIC ${_b3})
set_target_properties(ckptd_blake3 PROPERTIES C_STANDARD 99 POSITION_INDEPENDENT_CODE ON)
target_compile_options(ckptd_blake3 PRIVATE -O3 -w)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  # Runtime dispatch picks SSE2 / SSE4.1 / AVX2 / AVX-512 by CPUID.
  enable_language(ASM)
  target_sources(ckptd_blake3 PRIVATE
    ${_b3}/blake3_sse2_x86-64_unix.S ${_b3}/blake3_sse41_x86-64_unix.S
    ${_b3}/blake3_avx2_x86-64_unix.S ${_b3}/blake3_avx512_x86-64_unix.S)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
  target_sources(ckptd_blake3 PRIVATE ${_b3}/blake3_neon.c)
  target_compile_definitions(ckptd_blake3 PRIVATE BLAKE3_USE_NEON=1)
else()
  target_compile_definitions(ckptd_blake3 PRIVATE
    BLAKE3_NO_SSE2 BLAKE3_NO_SSE41 BLAKE3_NO_AVX2 BLAKE3_NO_AVX512)
endif()
