# Compiler flags shared by every target: warnings as errors, sanitizers,
# fuzzing and coverage switches.
add_compile_options(
  -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes
  -Wmissing-prototypes -Wformat=2 -Wvla -Wno-unused-parameter
  -fno-strict-aliasing -D_GNU_SOURCE)

if(TG_FUZZ AND NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "TG_FUZZ=ON needs clang: configure with -DCMAKE_C_COMPILER=clang "
                      "(Debian packages clang and libclang-rt-14-dev)")
endif()

if(TG_SANITIZE OR TG_FUZZ)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

if(TG_FUZZ)
  # Coverage feedback from the code under test (the libraries), not only
  # from the fuzz targets; only the targets link libFuzzer's main.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

if(TG_COVERAGE)
  # atomic counters: the gate's and the agent's worker threads update them
  # at once (plain increments lose counts and leave negative ones)
  add_compile_options(--coverage -O0 -fprofile-update=atomic)
  add_link_options(--coverage)
endif()
