# Warnings and sanitizers as INTERFACE targets: every coupond target links
# coupond::options; generated and third-party code does not get our warnings.
add_library(coupond_options INTERFACE)
add_library(coupond::options ALIAS coupond_options)

target_compile_options(coupond_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
  -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough)
if(COUPOND_WERROR)
  target_compile_options(coupond_options INTERFACE -Werror)
endif()

if(COUPOND_FUZZ)
  # libFuzzer needs clang. Every object gets ASan and UBSan (same reason as below); the
  # libraries the fuzz targets reach also get libFuzzer's coverage instrumentation
  # (-fsanitize=fuzzer-no-link, added in fuzz/CMakeLists.txt), and only the fuzz targets link
  # libFuzzer's main (-fsanitize=fuzzer). Tests, tools and the benchmarks are left without
  # coverage: nothing reads it there, and it made their compile about 30% slower.
  # UBSan does not recover, so a UB report aborts and the fuzzer saves the input.
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "COUPOND_FUZZ needs clang (e.g. cmake --preset asan); "
                        "CMAKE_CXX_COMPILER_ID is ${CMAKE_CXX_COMPILER_ID}")
  endif()
  if(COUPOND_SANITIZERS)
    message(FATAL_ERROR "COUPOND_FUZZ chooses its own sanitizers; leave COUPOND_SANITIZERS empty")
  endif()
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
  set(COUPOND_SANITIZED ON)
elseif(COUPOND_SANITIZERS)
  # Applied globally so that every object (generated proto code included) is instrumented
  # consistently; mixing instrumented and plain objects gives false ODR/container reports.
  add_compile_options(-fsanitize=${COUPOND_SANITIZERS} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${COUPOND_SANITIZERS})
  set(COUPOND_SANITIZED ON)
endif()
# COUPOND_SANITIZED: ON in a build under the sanitizers (COUPOND_FUZZ or COUPOND_SANITIZERS),
# for the few tests that only make sense, or only fit the time, outside one.
