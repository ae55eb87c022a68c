# Included from the top-level CMakeLists.txt when STIR_FUZZ is on, before any
# library is defined: every project library is built with libFuzzer's
# coverage instrumentation and ASan + UBSan; fuzz/CMakeLists.txt links the
# fuzzer main into each target. Added as directory options, so a separate
# sanitizer option only appends its own flags.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "STIR_FUZZ needs clang (libFuzzer): configure with CC=clang-14 CXX=clang++-14")
endif()
# -fno-sanitize=function: clang 14's function-type check cannot be emitted
# for Boost.Asio's inline functions ("Cannot represent a difference across
# sections"); every other UBSan check stays on.
# -fno-sanitize-recover=all: any UBSan report ends the run (a fuzz input or
# a test), as in STIR_SANITIZE builds. The coverage instrumentation costs
# the test binaries little, so CI's clang job runs the tests on this build.
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize=function
  -fno-sanitize-recover=all -fno-omit-frame-pointer)
add_link_options(-fsanitize=address,undefined)
