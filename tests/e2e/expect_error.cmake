# Runs a command that must fail cleanly: exit status exactly 1 (not a crash or a
# signal) and a message on stderr matching EXPECT (a regex).
# Usage: cmake -DEXPECT=<regex> [-DCORRUPT_FILE=<path>] [-DBINARY_TOKENS=<path>]
#              -P expect_error.cmake -- <command> [args...]
# CORRUPT_FILE: write garbage to that path first (a "corrupt HDF5 file").
# BINARY_TOKENS: write a small .bin token stream whose ids are all 0x4141 = 16705.
set(cmd "")
set(seen_separator FALSE)
foreach(i RANGE ${CMAKE_ARGC})
  if(seen_separator AND DEFINED CMAKE_ARGV${i})
    list(APPEND cmd "${CMAKE_ARGV${i}}")
  elseif("${CMAKE_ARGV${i}}" STREQUAL "--")
    set(seen_separator TRUE)
  endif()
endforeach()
if(DEFINED CORRUPT_FILE)
  file(WRITE "${CORRUPT_FILE}" "this is not an HDF5 file, just bytes that look like one\n")
endif()
if(DEFINED BINARY_TOKENS)
  string(REPEAT "AA" 64 tokens)
  file(WRITE "${BINARY_TOKENS}" "${tokens}")
endif()
execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message(STATUS "exit status: ${rc}\nstderr: ${err}")
if(NOT rc STREQUAL "1")
  message(FATAL_ERROR "expected exit status 1, got '${rc}'")
endif()
if(NOT err MATCHES "${EXPECT}")
  message(FATAL_ERROR "stderr does not match '${EXPECT}'")
endif()
