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

if(COUPOND_SANITIZERS)
  # Applied globally so that every object (generated proto code included) is instrumented
  # consistently; mixing instrumented and plain objects gives false ODR/container reports.
  add_compile_options(-fsanitize=${COUPOND_SANITIZERS} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${COUPOND_SANITIZERS})
endif()
