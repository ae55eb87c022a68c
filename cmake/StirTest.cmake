# stir_add_test(NAME SOURCES a.cpp ... LIBS lib ... [LABELS l ...] [TIMEOUT seconds])
# One GoogleTest binary; every TEST becomes its own ctest entry. Each entry
# has a TIMEOUT (default 60 s; integration tests that drive the built
# programs pass 120) so a hang fails fast and names itself. Sanitizer builds
# run slower: STIR_TEST_TIMEOUT_SCALE multiplies every timeout.
set(STIR_TEST_TIMEOUT_SCALE 1 CACHE STRING "Factor applied to every test's TIMEOUT")

# `seconds` (60 when empty) times STIR_TEST_TIMEOUT_SCALE, into `out`.
function(stir_test_timeout seconds out)
  if(NOT seconds)
    set(seconds 60)
  endif()
  math(EXPR scaled "${seconds} * ${STIR_TEST_TIMEOUT_SCALE}")
  set(${out} ${scaled} PARENT_SCOPE)
endfunction()

# The start of every stir_add_*test: back out when tests are not built, parse
# the arguments (TIMEOUT and LABELS, and the given keywords) into T_*, and set
# `timeout`. A macro, so that its return() leaves the calling function.
macro(stir_test_arguments one_value_keywords multi_value_keywords)
  if(NOT STIR_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(T "" "TIMEOUT;${one_value_keywords}" "LABELS;${multi_value_keywords}"
    ${ARGN})
  stir_test_timeout("${T_TIMEOUT}" timeout)
endmacro()

function(stir_add_test name)
  stir_test_arguments("" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_compile_options(${name} PRIVATE ${STIR_WARNINGS})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    STIR_TESTVECTORS_DIR="${STIR_TESTVECTORS_DIR}"
    STIR_SOFTHSM_MODULE="${STIR_SOFTHSM_MODULE}"
    STIR_SKS_BINARY="$<TARGET_FILE:sks>")
  # The labels and timeout are set by a file ctest reads after the
  # discovered tests, not through gtest_discover_tests' PROPERTIES: that
  # path splits a list of labels into separate arguments at every level of
  # quoting, so a second label and the TIMEOUT after it were silently lost
  # (ctest fell back to its 1500 s default).
  gtest_discover_tests(${name} TEST_LIST ${name}_TESTS DISCOVERY_TIMEOUT 30)
  set(properties "${CMAKE_CURRENT_BINARY_DIR}/${name}_properties.cmake")
  file(WRITE "${properties}"
    "if(DEFINED ${name}_TESTS)\n"
    "  set_tests_properties(\${${name}_TESTS} PROPERTIES\n"
    "    LABELS [==[${T_LABELS}]==] TIMEOUT ${timeout})\n"
    "endif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${properties}")
endfunction()

# stir_add_script_test(NAME COMMAND cmd arg ... [LABELS l ...] [TIMEOUT seconds]
#                      [PASS_REGULAR_EXPRESSION re])
# A test that is a script or a command rather than a GoogleTest binary,
# with the same timeout rule.
function(stir_add_script_test name)
  stir_test_arguments("PASS_REGULAR_EXPRESSION" "COMMAND" ${ARGN})
  add_test(NAME ${name} COMMAND ${T_COMMAND})
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${timeout})
  if(T_PASS_REGULAR_EXPRESSION)
    set_tests_properties(${name} PROPERTIES PASS_REGULAR_EXPRESSION "${T_PASS_REGULAR_EXPRESSION}")
  endif()
endfunction()
