# Compile options shared by every ratrain target.
add_library(ratrain_options INTERFACE)
target_compile_options(ratrain_options INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wno-unused-parameter>)
if(OpenMP_CXX_FOUND)
  target_link_libraries(ratrain_options INTERFACE OpenMP::OpenMP_CXX)
endif()
if(RATRAIN_SANITIZE)
  target_compile_options(ratrain_options INTERFACE
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(ratrain_options INTERFACE -fsanitize=address,undefined)
endif()
