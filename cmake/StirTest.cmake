# stir_add_test(NAME SOURCES a.cpp ... LIBS lib ... [LABELS l ...])
# One GoogleTest binary; every TEST becomes its own ctest entry.
function(stir_add_test name)
  if(NOT STIR_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(T "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_compile_options(${name} PRIVATE ${STIR_WARNINGS})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    STIR_TESTVECTORS_DIR="${STIR_TESTVECTORS_DIR}"
    STIR_SOFTHSM_MODULE="${STIR_SOFTHSM_MODULE}"
    STIR_SKS_BINARY="$<TARGET_FILE:sks>")
  # Escaped so a list of labels reaches ctest as one LABELS value.
  string(REPLACE ";" "\\;" labels "${T_LABELS}")
  gtest_discover_tests(${name} PROPERTIES LABELS "${labels}" DISCOVERY_TIMEOUT 30)
endfunction()
