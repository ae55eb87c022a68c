# The layering of the project's libraries (README "Layout"), checked over
# the targets' LINK_LIBRARIES: a library may link only libraries of a lower
# layer, never one of its own layer or above. Programs, tests, benchmarks
# and fuzzers sit on top and are not listed.
#
# In the project: stir_check_layers() at the end of the top-level
# CMakeLists.txt fails the configure on a bad edge and writes the edges it
# saw to ${CMAKE_BINARY_DIR}/stir_layer_edges.txt.
# As a script (the `layering` tests):
#   cmake -DEDGES=FILE [-DEXTRA_EDGES=from:to,...] -P cmake/StirLayers.cmake
# exits non-zero naming every bad edge.
if(CMAKE_SCRIPT_MODE_FILE)
  cmake_minimum_required(VERSION 3.25)
endif()

# One entry a layer, lowest first: "LEVEL:target,target,...".
set(STIR_LAYERS
  "0:stir_base"
  "1:stir_signer,stir_toml_config"
  "2:stir_http,stir_verifier"
  "3:tn_cr_core,sks_pkcs11"
  "4:sks_config,sks_x509"
  "5:sks_rotation,dev_pki"
  "6:sks_server")

function(stir_layer_of target out)
  set(layer "")
  foreach(entry IN LISTS STIR_LAYERS)
    string(REGEX REPLACE "[:,]" ";" entry "${entry}")
    list(POP_FRONT entry level)
    if(target IN_LIST entry)
      set(layer ${level})
    endif()
  endforeach()
  set(${out} "${layer}" PARENT_SCOPE)
endfunction()

# `edges`: a list of "from:to". Sets `out` to the bad ones, one message each.
function(stir_layer_violations edges out)
  set(bad "")
  foreach(edge IN LISTS edges)
    string(REPLACE ":" ";" pair "${edge}")
    list(GET pair 0 from)
    list(GET pair 1 to)
    stir_layer_of(${from} from_layer)
    stir_layer_of(${to} to_layer)
    if(NOT from_layer STREQUAL "" AND NOT to_layer STREQUAL "" AND
       NOT to_layer LESS from_layer)
      list(APPEND bad "${from} (layer ${from_layer}) links ${to} (layer ${to_layer})")
    endif()
  endforeach()
  set(${out} "${bad}" PARENT_SCOPE)
endfunction()

function(stir_check_layers)
  set(edges "")
  foreach(entry IN LISTS STIR_LAYERS)
    string(REGEX REPLACE "[:,]" ";" entry "${entry}")
    list(POP_FRONT entry level)
    foreach(target IN LISTS entry)
      if(NOT TARGET ${target})
        message(FATAL_ERROR "cmake/StirLayers.cmake lists ${target}, which is not a target")
      endif()
      get_target_property(links ${target} LINK_LIBRARIES)
      foreach(link IN LISTS links)
        if(TARGET ${link} AND NOT link MATCHES "::")
          list(APPEND edges "${target}:${link}")
        endif()
      endforeach()
    endforeach()
  endforeach()
  string(REPLACE ";" "\n" lines "${edges}")
  file(WRITE "${CMAKE_BINARY_DIR}/stir_layer_edges.txt" "${lines}\n")
  stir_layer_violations("${edges}" bad)
  if(bad)
    string(REPLACE ";" "\n  " bad "${bad}")
    message(FATAL_ERROR "A library links one of its own layer or above (cmake/StirLayers.cmake):\n  ${bad}")
  endif()
endfunction()

if(CMAKE_SCRIPT_MODE_FILE)
  file(STRINGS "${EDGES}" edges)
  if(EXTRA_EDGES)
    string(REPLACE "," ";" extra "${EXTRA_EDGES}")
    list(APPEND edges ${extra})
  endif()
  stir_layer_violations("${edges}" bad)
  if(bad)
    string(REPLACE ";" "\n  " bad "${bad}")
    message(FATAL_ERROR "layering broken:\n  ${bad}")
  endif()
  list(LENGTH edges count)
  message(STATUS "layering holds: ${count} links between the project's libraries")
endif()
